//! `patrol shadow report` (built by the shadow helper).

#[derive(clap::Args, Debug)]
pub struct ShadowArgs {}

pub async fn shadow(args: ShadowArgs) -> u8 {
    eprintln!("patrol shadow is not built yet ({args:?})");
    super::EXIT_FAILED
}
