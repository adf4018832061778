//! `patrol playbook history [--playbook NAME] [--status S] [--limit N] [--format table|json]` and
//! `patrol playbook show RUN_ID [--format json|markdown]`: the audit trail from the store.
//!
//! OWNER: audit helper.

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {}

pub async fn history(args: HistoryArgs) -> u8 {
    let _ = args;
    super::EXIT_INVALID
}

pub async fn show(args: ShowArgs) -> u8 {
    let _ = args;
    super::EXIT_INVALID
}
