//! `patrol bench detect` (built by the detect helper).

#[derive(clap::Args, Debug)]
pub struct DetectBenchArgs {}

pub async fn run(args: DetectBenchArgs) -> u8 {
    eprintln!("patrol bench detect is not built yet ({args:?})");
    crate::cli::EXIT_FAILED
}
