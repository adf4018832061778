//! `patrol playbook run NAME|FILE [--playbooks DIR] [--rules DIR] [--param k=v]… [--dry-run]
//! [--yes] [--approval-timeout D] [--format table|json]`.
//!
//! Exit codes: 0 every step ok (or skipped, planned, tolerated), 1 a step failed (after its
//! rollback; a denied or timed-out approval fails its step), 2 invalid input (the playbook, the
//! rules, parameters), 3 refused by a guardrail (playbooks disabled, the lock held, the rate limit reached).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Subcommand, ValueEnum};

use super::{DEFAULT_STORE, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::config::RuleSet;
use crate::playbook::guard::{AnnouncedStoreApprover, StoreApprover, TerminalApprover};
use crate::playbook::runner::{Request, Runner};
use crate::playbook::{
    Approver, PlaybookRun, PreApproved, RunStatus, StepStatus, find_playbook, read_playbook,
};
use crate::store::Store;

/// Exit code of a run refused by a guardrail.
pub const EXIT_REFUSED: u8 = 3;

#[derive(clap::Args, Debug)]
pub struct PlaybookArgs {
    #[command(subcommand)]
    pub command: PlaybookCommand,
}

#[derive(Subcommand, Debug)]
pub enum PlaybookCommand {
    /// Run a playbook now.
    Run(PlaybookRunArgs),
    /// Past runs from the store, newest first.
    History(super::playbook_audit::HistoryArgs),
    /// One run with its steps (JSON or the Markdown report).
    Show(super::playbook_audit::ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct PlaybookRunArgs {
    /// A playbook's `name:` (looked up in --playbooks) or its file.
    pub playbook: String,
    /// Where playbooks are looked up by name.
    #[arg(long, value_name = "DIR", default_value = "playbooks")]
    pub playbooks: PathBuf,
    /// Rules directory, file or consul://HOST:PORT/PREFIX the checks and targets come from
    /// (default: rules/ when it exists).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// A parameter (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = super::parse_tag)]
    pub params: Vec<(String, String)>,
    /// Render every step, run only those without side effects, print what the others would do.
    #[arg(long)]
    pub dry_run: bool,
    /// Approve the steps marked `approve: true`. Without it they are asked for: on the
    /// terminal, or else through the approval API of a daemon sharing the store (the link goes
    /// to the rules' `playbooks.notify` receivers and is printed on stderr).
    #[arg(long)]
    pub yes: bool,
    /// How long an approval waits for its decision (default: the playbook's `approval_timeout`,
    /// else the rules' `playbooks.approval_timeout`, 15m).
    #[arg(long, value_name = "DURATION", value_parser = crate::config::duration::parse)]
    pub approval_timeout: Option<std::time::Duration>,
    #[arg(long, value_enum, default_value_t = PlaybookFormat::Table)]
    pub format: PlaybookFormat,
    /// Store holding the audit trail, locks and rate limits (shared with the daemon).
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Base URL of patrol as people reach it (links in messages).
    #[arg(
        long,
        env = "PATROL_EXTERNAL_URL",
        default_value = "http://127.0.0.1:9464"
    )]
    pub external_url: String,
    /// Also write the run report to DIR/<playbook>-<id>.json and .md.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlaybookFormat {
    Table,
    Json,
}

pub async fn playbook(args: PlaybookArgs) -> u8 {
    match args.command {
        PlaybookCommand::Run(a) => run(a).await,
        PlaybookCommand::History(a) => super::playbook_audit::history(a).await,
        PlaybookCommand::Show(a) => super::playbook_audit::show(a).await,
    }
}

async fn run(args: PlaybookRunArgs) -> u8 {
    let request = match prepare(&args).await {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}");
            return EXIT_INVALID;
        }
    };
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol playbook: {e}; nothing was run");
            return EXIT_INVALID;
        }
    };
    let approver = approver(&args, &request, &store);
    let runner = Runner {
        store,
        approver: Some(approver),
        external_url: args.external_url.clone(),
    };
    let record = runner.execute(request).await;
    if let Some(dir) = &args.report_dir
        && let Err(e) = super::playbook_audit::write_reports(dir, &record, &args.external_url)
    {
        eprintln!("patrol playbook: {e}");
    }
    match args.format {
        PlaybookFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&record).unwrap_or_default()
        ),
        PlaybookFormat::Table => print_table(&record),
    }
    match record.status {
        RunStatus::Succeeded => EXIT_OK,
        RunStatus::Refused => EXIT_REFUSED,
        RunStatus::Running | RunStatus::Failed | RunStatus::RolledBack => EXIT_FAILED,
    }
}

/// Who approves: `--yes` approves everything; else the person at the terminal; else whoever
/// gets the approval link (the run waits for a daemon's approval API sharing the store).
fn approver(args: &PlaybookRunArgs, request: &Request, store: &Store) -> Arc<dyn Approver> {
    if args.yes {
        return Arc::new(PreApproved(format!("cli:{} (--yes)", current_user())));
    }
    if TerminalApprover::available() {
        return Arc::new(TerminalApprover {
            user: current_user(),
        });
    }
    Arc::new(AnnouncedStoreApprover(StoreApprover {
        store: store.clone(),
        rules: request.playbook.rules.clone(),
        external_url: args.external_url.clone(),
    }))
}

/// Who runs the command (recorded as the starter and, with `--yes`, the approver).
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The playbook and how to run it, or the message saying why nothing can run.
async fn prepare(args: &PlaybookRunArgs) -> Result<Request, String> {
    let file = find_playbook(&args.playbook, &args.playbooks)
        .map_err(|e| format!("patrol playbook: {e}"))?;
    let rules = load_rules(args.rules.as_deref()).await?;
    let mut playbook = read_playbook(&file, &rules).map_err(|problems| {
        let mut text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        text.push(format!(
            "{} problem(s) in the playbook; nothing was run",
            problems.len()
        ));
        text.join("\n")
    })?;
    let params = playbook
        .resolve_params(&args.params)
        .map_err(|e| format!("patrol playbook: {e}; nothing was run"))?;
    if let Some(timeout) = args.approval_timeout {
        playbook.approval_timeout = timeout;
    }
    Ok(Request {
        playbook: Arc::new(playbook),
        params,
        trigger: serde_json::Value::Null,
        dry_run: args.dry_run,
        started_by: format!("cli:{}", current_user()),
        run_id: None,
    })
}

/// The rules of `--rules` (a directory, a file or consul://…), or of `rules/` when it exists, or
/// none.
async fn load_rules(path: Option<&Path>) -> Result<RuleSet, String> {
    crate::config::source::load_optional(path)
        .await
        .map_err(|problems| {
            let mut text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            text.push(format!(
                "{} problem(s) in the rules; nothing was run",
                problems.len()
            ));
            text.join("\n")
        })
}

fn print_table(record: &PlaybookRun) {
    let mode = if record.dry_run { " (dry run)" } else { "" };
    println!("playbook {}{mode}", record.playbook);
    for step in &record.steps {
        let status = match step.status {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
            StepStatus::Planned => "would run",
        };
        let phase = if step.phase == "rollback" {
            "rollback "
        } else {
            ""
        };
        println!(
            "  {phase}{:<24} {:<10} {:>8.0}ms  {}",
            step.name, status, step.duration_ms, step.description
        );
        if let Some(e) = &step.error {
            println!("      {e}");
        }
    }
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Running | RunStatus::Failed => "FAILED",
        RunStatus::RolledBack => "FAILED, rolled back",
        RunStatus::Refused => "REFUSED",
    };
    println!("{status}");
    if let Some(e) = &record.error {
        println!("  {e}");
    }
}
