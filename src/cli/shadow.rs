//! `patrol shadow report [--since 48h] [--store URL] [--rules DIR] [--format table|json|markdown]`:
//! what every `mode: shadow` check would have alerted over a window, read from the store (see
//! [`crate::report::shadow`]). With `--rules`, configured shadow checks without results are
//! listed too, checks are marked when they are no longer shadow (`enforce`) or gone (`unknown`),
//! and `alert.failure_threshold` decides what would have fired.
//!
//! Exit codes: 0 the report was printed, 1 the store could not be read, 2 invalid arguments,
//! rules or store URL.

use std::path::PathBuf;

use chrono::Utc;
use clap::ValueEnum;

use super::{DEFAULT_STORE, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::config;
use crate::report::shadow::{DEFAULT_SINCE, ShadowReport, parse_since};
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ShadowArgs {
    #[command(subcommand)]
    pub command: ShadowCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ShadowCommand {
    /// Per shadow check: evaluations, would-be alerts (warn, crit, error), flaps, alerts that
    /// would have fired, and the first and last would-be alerts.
    Report(ShadowReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ShadowReportArgs {
    /// Start of the window: a duration back from now (48h, 7d) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = DEFAULT_SINCE)]
    pub since: String,
    /// Where the results are kept.
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Rules directory, file or consul://HOST:PORT/PREFIX: also list shadow checks without
    /// results, mark checks no longer in shadow mode, and honour their alert.failure_threshold.
    #[arg(long, value_name = "DIR|consul://HOST:PORT/PREFIX")]
    pub rules: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ShadowFormat::Table)]
    pub format: ShadowFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShadowFormat {
    /// For people: one row per check, then the first and last would-be alerts.
    Table,
    /// `{since, until, checks: [...]}`, as `GET /api/v1/shadow` answers.
    Json,
    Markdown,
}

pub async fn shadow(args: ShadowArgs) -> u8 {
    match args.command {
        ShadowCommand::Report(a) => report(a).await,
    }
}

async fn report(args: ShadowReportArgs) -> u8 {
    let until = Utc::now();
    let since = match parse_since(&args.since, until) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("patrol shadow report: --since: {message}");
            return EXIT_INVALID;
        }
    };
    let rules = match &args.rules {
        None => None,
        Some(path) => match config::source::load_optional(Some(path)).await {
            Ok(r) => Some(r),
            Err(problems) => {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!(
                    "patrol shadow report: {} problem(s) in the rules",
                    problems.len()
                );
                return EXIT_INVALID;
            }
        },
    };
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol shadow report: {e}");
            return EXIT_INVALID;
        }
    };
    let report = match ShadowReport::from_store(&store, since, until, rules.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("patrol shadow report: {e}");
            return EXIT_FAILED;
        }
    };
    let text = match args.format {
        ShadowFormat::Table => report.to_text(),
        ShadowFormat::Json => report.to_json() + "\n",
        ShadowFormat::Markdown => report.to_markdown(),
    };
    print!("{text}");
    EXIT_OK
}
