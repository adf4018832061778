//! The command line: `patrol validate | run | schema | demo`. Exit codes: 0 all good, 1 a check
//! failed, 2 invalid input or usage.

mod alert;
pub mod detect;
pub mod drill;
pub(crate) mod output;
pub mod playbook;
mod playbook_audit;
mod report;
mod run;
pub mod shadow;
mod silence;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code when every enforced check passed.
pub const EXIT_OK: u8 = 0;
/// Exit code when an enforced check is `crit` or `error`.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for invalid rule files or usage.
pub const EXIT_INVALID: u8 = 2;

pub const DEFAULT_STORE: &str = "sqlite://patrol.db";

#[derive(Parser, Debug)]
#[command(
    name = "patrol",
    version,
    about = "Scheduled inspections, dynamic baselines and chaos drills for SRE teams"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check rule files and report every problem as file:line:col.
    Validate(ValidateArgs),
    /// Run checks once, update baselines, store and print the results.
    Run(RunArgs),
    /// Print the JSON Schema of rule files (for yaml-language-server).
    Schema,
    /// Start demo targets on loopback, learn baselines, inject an anomaly and catch it.
    Demo(DemoArgs),
    /// Benchmarks anyone can rerun: `patrol bench schedule --checks 10000`.
    Bench(crate::bench::BenchArgs),
    /// Alerting tools: `patrol alert test RECEIVER` sends a test notification now.
    Alert(alert::AlertArgs),
    /// Run checks and suites on their schedules, serve the API, /metrics and live events.
    Daemon(crate::daemon::DaemonArgs),
    /// Silences in the store: `patrol silence add | list | expire`.
    Silence(silence::SilenceArgs),
    /// Run a chaos drill: steady state, workload, faults on a timeline, verify, report.
    Drill(drill::DrillArgs),
    /// Remediation playbooks: `patrol playbook run NAME [--param k=v] [--dry-run] [--yes]`.
    Playbook(playbook::PlaybookArgs),
    /// Regenerate a run's reports (HTML, Markdown, JSON, JUnit XML) from the store.
    Report(report::ReportArgs),
    /// Score CSV series offline (`timestamp,value` → `timestamp,anomaly_score`), online row by row,
    /// exactly as live checks are judged.
    Detect(detect::DetectArgs),
    /// Shadow rules: `patrol shadow report [--since 48h]` — what each `mode: shadow` check would
    /// have alerted.
    Shadow(shadow::ShadowArgs),
    /// The built-in stress child of `stress` faults (started by drills, bounded by `--seconds`).
    #[command(name = "__stress", hide = true)]
    Stress(crate::chaos::fault::stress_child::StressArgs),
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Rule files or directories (default: rules/), or one consul://HOST:PORT/PREFIX.
    pub paths: Vec<PathBuf>,
    /// Rules source instead of PATHs: a directory or consul://HOST:PORT/PREFIX (token in
    /// CONSUL_HTTP_TOKEN), as `run` and `daemon` take it.
    #[arg(
        long,
        value_name = "DIR|consul://HOST:PORT/PREFIX",
        conflicts_with = "paths"
    )]
    pub rules: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Also connect to every target.
    #[arg(long)]
    pub online: bool,
    /// Playbook directory to check against the rules (default: the rules' `playbooks.dir`,
    /// else `playbooks/` when it exists).
    #[arg(long, value_name = "DIR")]
    pub playbooks: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Rules directory, file, or consul://HOST:PORT/PREFIX (token in CONSUL_HTTP_TOKEN).
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
    /// Run only this check (repeatable).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
    /// Run the checks a suite selects, as one run (see `suites:`).
    #[arg(long, value_name = "NAME", conflicts_with = "checks")]
    pub suite: Option<String>,
    /// Run only checks with this label (repeatable, all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    #[arg(long, value_enum, default_value_t = RunFormat::Table)]
    pub format: RunFormat,
    /// Where results and baselines are kept.
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Checks running at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Checks running at once against one target.
    #[arg(long, default_value_t = 4)]
    pub per_target: usize,
    /// Also write the run's reports here: `<suite>-<timestamp>.{html,md,json,xml}`.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunFormat {
    Table,
    /// JSON Lines: one object per result.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the demo keeps its results (default: a temporary SQLite file).
    #[arg(long)]
    pub store: Option<String>,
    /// Rounds of normal traffic before the anomaly.
    #[arg(long, default_value_t = 25)]
    pub rounds: u32,
    #[command(subcommand)]
    pub part: Option<DemoPart>,
}

/// Parts of the demo run on their own.
#[derive(Subcommand, Debug)]
pub enum DemoPart {
    /// A short chaos drill against a built-in 3-node SSE cluster: a node killed and restarted,
    /// subscribers resuming with Last-Event-ID, the report printed.
    Drill(DemoDrillArgs),
    /// One node of the demo SSE cluster (started by the cluster and by drills).
    #[command(hide = true)]
    SseNode(crate::demo::sse_cluster::SseNodeArgs),
}

#[derive(clap::Args, Debug)]
pub struct DemoDrillArgs {
    /// SSE subscribers listening through the fault proxy.
    #[arg(long, default_value_t = 200)]
    pub subscribers: u32,
    /// Where the fault journal and the drill run are kept (default: a temporary SQLite file).
    #[arg(long)]
    pub store: Option<String>,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patrol: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let code = rt.block_on(dispatch(cli.command));
    ExitCode::from(code)
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Validate(a) => validate::validate(a).await,
        Command::Run(a) => run::run(a).await,
        Command::Schema => {
            let schema = crate::config::schema::rule_file_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            EXIT_OK
        }
        Command::Demo(mut a) => match a.part.take() {
            Some(DemoPart::SseNode(node)) => crate::demo::sse_cluster::run_node(node).await,
            Some(DemoPart::Drill(d)) => crate::demo::drill::run(d).await,
            None => crate::demo::run(a).await,
        },
        Command::Bench(a) => crate::bench::run(a).await,
        Command::Alert(a) => alert::alert(a).await,
        Command::Daemon(a) => crate::daemon::run(a).await,
        Command::Silence(a) => silence::silence(a).await,
        Command::Drill(a) => drill::drill(a).await,
        Command::Playbook(a) => playbook::playbook(a).await,
        Command::Report(a) => report::report(a).await,
        Command::Detect(a) => detect::detect(a).await,
        Command::Shadow(a) => shadow::shadow(a).await,
        Command::Stress(a) => crate::chaos::fault::stress_child::run(&a),
    }
}

/// Logs go to stderr; `RUST_LOG` sets the level (default: warnings). Every log line passes through
/// the secret redactor: libraries log URLs and errors that may contain substituted credentials.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr(Vec::new()))
        .try_init();
}

/// Collects one log event and writes it, redacted, to stderr when the event is complete.
struct RedactingStderr(Vec<u8>);

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            crate::secrets::redact(&text).as_bytes(),
        );
    }
}
