//! `patrol demo` (being implemented).

pub async fn run(_args: crate::cli::DemoArgs) -> u8 {
    unimplemented!()
}
