//! `patrol playbook history [--playbook NAME] [--status S] [--since 24h] [--limit N]
//! [--format table|json]` and `patrol playbook show RUN_ID [--format markdown|json]`: the audit
//! trail from the store (the one `patrol playbook run` and the daemon write), and
//! `--report-dir` of `patrol playbook run`.
//!
//! Exit codes: 0 shown, 1 no such run, 2 invalid input or the store cannot be read.

use std::path::Path;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};

use super::{DEFAULT_STORE, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::playbook::{PlaybookRun, RunStatus, report};
use crate::store::{RunFilter, Store};

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Only runs of this playbook.
    #[arg(long, value_name = "NAME")]
    pub playbook: Option<String>,
    /// Only runs that ended so: running, succeeded, failed, rolled_back, refused.
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<RunStatus>,
    /// Only runs started this long ago or later (`24h`, `7d`) or since an RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many runs (newest first).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Store holding the audit trail (shared with the daemon).
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The run's id (see `patrol playbook history`).
    pub run_id: String,
    /// Store holding the audit trail (shared with the daemon).
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// `markdown`: the run report; `json`: the stored run with every step.
    #[arg(long, value_enum, default_value_t = ShowFormat::Markdown)]
    pub format: ShowFormat,
    /// Base URL of patrol as people reach it (the report's links).
    #[arg(
        long,
        env = "PATROL_EXTERNAL_URL",
        default_value = "http://127.0.0.1:9464"
    )]
    pub external_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Markdown,
    Json,
}

pub async fn history(args: HistoryArgs) -> u8 {
    let Some(store) = open(&args.store).await else {
        return EXIT_INVALID;
    };
    let filter = RunFilter {
        playbook: args.playbook.clone(),
        status: args.status,
        since: args.since,
        limit: args.limit,
    };
    let runs = match store.playbook_runs(&filter).await {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("patrol playbook history: {e}");
            return EXIT_INVALID;
        }
    };
    match args.format {
        HistoryFormat::Json => println!("{}", pretty(&runs)),
        HistoryFormat::Table if runs.is_empty() => println!("no playbook runs"),
        HistoryFormat::Table => print!("{}", history_table(&runs)),
    }
    EXIT_OK
}

pub async fn show(args: ShowArgs) -> u8 {
    let Some(store) = open(&args.store).await else {
        return EXIT_INVALID;
    };
    let run = match store.playbook_run(&args.run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            eprintln!(
                "patrol playbook show: no playbook run {:?} in the store (see `patrol playbook history`)",
                args.run_id
            );
            return EXIT_FAILED;
        }
        Err(e) => {
            eprintln!("patrol playbook show: {e}");
            return EXIT_INVALID;
        }
    };
    match args.format {
        ShowFormat::Json => println!("{}", pretty(&run)),
        ShowFormat::Markdown => print!("{}", report::markdown(&run, &args.external_url)),
    }
    EXIT_OK
}

/// Writes `DIR/<playbook>-<id>.json` and `.md` (`patrol playbook run --report-dir DIR`); the
/// paths written, or why not.
pub fn write_reports(
    dir: &Path,
    run: &PlaybookRun,
    external_url: &str,
) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create report directory {}: {e}", dir.display()))?;
    let stem = format!("{}-{}", file_safe(&run.playbook), file_safe(&run.id));
    let json = pretty(&report::json_linked(run, external_url));
    let markdown = report::markdown(run, external_url);
    let mut written = Vec::new();
    for (ext, text) in [("json", json + "\n"), ("md", markdown)] {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write report {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

async fn open(url: &str) -> Option<Store> {
    match Store::open(url).await {
        Ok(store) => Some(store),
        Err(e) => {
            eprintln!("patrol playbook: {e}");
            None
        }
    }
}

fn history_table(runs: &[PlaybookRun]) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header([
            "STARTED (UTC)",
            "PLAYBOOK",
            "STATUS",
            "DURATION",
            "STARTED BY",
            "ID",
            "ERROR",
        ]);
    for run in runs {
        let status = if run.dry_run {
            format!("{} (dry run)", run.status.as_str())
        } else {
            run.status.as_str().to_string()
        };
        let duration = run
            .ended_at
            .and_then(|end| (end - run.started_at).num_microseconds())
            .map_or("-".to_string(), |us| {
                report::format_duration(us.max(0) as f64 / 1000.0)
            });
        t.add_row(vec![
            run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            run.playbook.clone(),
            status,
            duration,
            run.started_by.clone(),
            run.id.clone(),
            run.error.as_deref().map_or(String::new(), |e| short(e, 80)),
        ]);
    }
    format!("{t}\n")
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// At most `max` characters of `text` on one line.
fn short(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max).collect();
    cut.push('…');
    cut
}

/// A name usable in a file name: anything but letters, digits, `-`, `_` and `.` becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::parse(text).ok_or_else(|| {
        format!("{text:?} is not a run status: running, succeeded, failed, rolled_back or refused")
    })
}

/// An RFC 3339 time, or a duration back from now.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago = crate::config::duration::parse(text).map_err(|_| {
        format!("{text:?} is neither a duration (24h) nor an RFC 3339 time (2026-05-01T00:00:00Z)")
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| format!("{text:?} is too far back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let day = parse_since("24h").unwrap();
        assert!(
            (Utc::now() - day - chrono::Duration::hours(24))
                .num_seconds()
                .abs()
                < 5
        );
        assert_eq!(
            parse_since("2026-05-01T00:00:00Z").unwrap().to_rfc3339(),
            "2026-05-01T00:00:00+00:00"
        );
        assert!(parse_since("yesterday").unwrap_err().contains("yesterday"));
    }

    #[test]
    fn statuses_and_file_names() {
        assert_eq!(parse_status("rolled_back").unwrap(), RunStatus::RolledBack);
        assert!(parse_status("ok").is_err());
        assert_eq!(file_safe("fix/api v2"), "fix_api_v2");
    }
}
