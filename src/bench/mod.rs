//! `patrol bench schedule`: can the daemon keep 10,000 checks a minute on time, and at what cost?
//!
//! It starts an HTTP server on 127.0.0.1 in this process, writes N http checks `every: 1m` with
//! `jitter: 1m` (so N fires spread over each minute), and runs them for the window twice, each
//! time in a fresh child process: once on patrol's scheduler (the daemon's path: scheduler,
//! shared limits, the engine's `execute_check`) and once on a named peer, the naive "one tokio
//! task with a `tokio::time::interval` per check". Each side reports runs, lateness p50/p99/max,
//! CPU time (getrusage) and peak RSS (VmHWM) of its own process; the table ends with the ratios.
//! Bounded: each side stops planning at the end of the window and gets a grace period to finish.

pub mod detect;
mod report;
mod server;
mod sides;
mod sse;
mod usage;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use sides::{LatenessMs, Side, SideOptions, SideReport, run_side};
pub use usage::{CpuTime, Memory};

use crate::cli::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// How long runs started inside the window may take to finish after it.
const GRACE: Duration = Duration::from_secs(30);

/// Time a side's process may take beyond window and grace (start-up, loading the rules).
const SIDE_OVERHEAD: Duration = Duration::from_secs(300);

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Schedule N http checks per interval against a local server, on patrol's scheduler and on a
    /// naive peer (a tokio task + interval per check); report lateness, CPU and peak RSS.
    Schedule(ScheduleArgs),
    /// One side of `bench schedule` in its own process (started by `bench schedule`).
    #[command(hide = true)]
    ScheduleSide(SideArgs),
    /// Hold N SSE subscribers with the drill swarm and with a Node.js `eventsource` swarm;
    /// report subscribers held, memory per subscriber and events/s.
    Sse(sse::SseBenchArgs),
    /// Detection quality (precision, recall, F1, delay, ranking) and speed of every baseline
    /// method on the evaluation set in eval/detect, against a Zabbix-style seasonal average.
    Detect(detect::DetectBenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {
    /// Checks, each firing once per --every.
    #[arg(long, default_value_t = 10_000)]
    pub checks: usize,
    /// How long each side runs.
    #[arg(long, default_value = "60s", value_parser = crate::config::duration::parse)]
    pub duration: Duration,
    /// Interval of every check; its jitter is the same, so fires spread over the interval.
    #[arg(long, default_value = "1m", value_parser = crate::config::duration::parse)]
    pub every: Duration,
    /// Checks measuring at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Checks measuring at once against one target (all bench checks share one).
    #[arg(long, default_value_t = 4)]
    pub per_target: usize,
    /// Run only this side (repeatable; default: both).
    #[arg(long = "side", value_enum)]
    pub sides: Vec<Side>,
    /// Print each side's report as a JSON line instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SideArgs {
    #[arg(long, value_enum)]
    pub side: Side,
    #[arg(long)]
    pub rules: PathBuf,
    #[arg(long, value_parser = crate::config::duration::parse)]
    pub duration: Duration,
    #[arg(long)]
    pub concurrency: usize,
    #[arg(long)]
    pub per_target: usize,
}

pub async fn run(args: BenchArgs) -> u8 {
    match args.which {
        BenchCommand::Schedule(a) => schedule(a).await,
        BenchCommand::ScheduleSide(a) => side_process(a).await,
        BenchCommand::Sse(a) => sse::run(a).await,
        BenchCommand::Detect(a) => detect::run(a).await,
    }
}

async fn schedule(args: ScheduleArgs) -> u8 {
    if let Err(e) = check_args(&args) {
        eprintln!("patrol bench schedule: {e}");
        return EXIT_INVALID;
    }
    match compare(&args).await {
        Ok(reports) => {
            let all_good = reports.iter().all(|r| r.failed == 0 && r.drained);
            if all_good { EXIT_OK } else { EXIT_FAILED }
        }
        Err(e) => {
            eprintln!("patrol bench schedule: {e}");
            EXIT_FAILED
        }
    }
}

fn check_args(args: &ScheduleArgs) -> Result<(), String> {
    if args.checks == 0 || args.checks > 1_000_000 {
        return Err("--checks must be between 1 and 1000000".into());
    }
    if args.duration.is_zero() || args.every.is_zero() {
        return Err("--duration and --every must be longer than zero".into());
    }
    if args.duration > Duration::from_secs(3600) {
        return Err("--duration is at most 1h".into());
    }
    Ok(())
}

/// Runs the sides one after the other against one server and prints the comparison.
async fn compare(args: &ScheduleArgs) -> Result<Vec<SideReport>, String> {
    let port = server::start()
        .await
        .map_err(|e| format!("cannot start the bench server on 127.0.0.1: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let rules = write_rules_file(dir.path(), port, args.checks, args.every)
        .map_err(|e| format!("cannot write the bench rules: {e}"))?;
    let sides = if args.sides.is_empty() {
        vec![Side::Patrol, Side::Naive]
    } else {
        args.sides.clone()
    };
    let load_before = usage::load_average();
    let mut reports = Vec::new();
    for side in sides {
        eprintln!(
            "bench: {} for {}…",
            side.label(),
            crate::config::duration::format(args.duration)
        );
        reports.push(run_child(side, &rules, args).await?);
    }
    let context = report::Context {
        checks: args.checks,
        every: args.every,
        window: args.duration,
        concurrency: args.concurrency,
        per_target: args.per_target,
        port,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        load_after: usage::load_average(),
    };
    if args.json {
        for r in &reports {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
    } else {
        print!("{}", report::render(&context, &reports));
    }
    Ok(reports)
}

/// Runs one side in a child process (`patrol bench schedule-side …`) and reads its report.
async fn run_child(side: Side, rules: &Path, args: &ScheduleArgs) -> Result<SideReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find patrol's binary: {e}"))?;
    let side_name = serde_json::to_value(side)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let child = tokio::process::Command::new(exe)
        .args(["bench", "schedule-side", "--side", &side_name, "--rules"])
        .arg(rules)
        .args(["--duration", &format!("{}ms", args.duration.as_millis())])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--per-target", &args.per_target.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the {side_name} side: {e}"))?;
    let limit = args.duration + GRACE + SIDE_OVERHEAD;
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .map_err(|_| format!("the {side_name} side did not finish within {limit:?}"))?
        .map_err(|e| format!("the {side_name} side failed: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|e| {
        format!(
            "the {side_name} side exited with {} without a report ({e})",
            out.status
        )
    })
}

/// The child's part: load the rules, run the side, print its report as one JSON line.
async fn side_process(args: SideArgs) -> u8 {
    let rules = match crate::config::load(std::slice::from_ref(&args.rules)) {
        Ok(r) => r,
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            return EXIT_INVALID;
        }
    };
    let opts = SideOptions {
        window: args.duration,
        concurrency: args.concurrency,
        per_target: args.per_target,
        grace: GRACE,
    };
    let report = run_side(args.side, &rules, &opts).await;
    match serde_json::to_string(&report) {
        Ok(json) => {
            println!("{json}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cannot encode the report: {e}");
            EXIT_FAILED
        }
    }
}

/// Writes the bench rules (one target, `checks` http checks every `every` with jitter `every`)
/// to `dir/rules/bench.yaml` and returns the rules directory.
fn write_rules_file(
    dir: &Path,
    port: u16,
    checks: usize,
    every: Duration,
) -> std::io::Result<PathBuf> {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules)?;
    std::fs::write(rules.join("bench.yaml"), rules_yaml(port, checks, every))?;
    Ok(rules)
}

fn rules_yaml(port: u16, checks: usize, every: Duration) -> String {
    let every = format!("{}ms", every.as_millis());
    let mut y =
        format!("targets:\n  bench: {{kind: http, url: \"http://127.0.0.1:{port}\"}}\nchecks:\n");
    for i in 0..checks {
        y.push_str(&format!(
            "  - {{name: c{i}, kind: http, target: bench, every: {every}, jitter: {every}, request: {{path: /health/{i}}}, expect: {{status: 200}}}}\n"
        ));
    }
    y
}

/// Writes and loads the bench rules (for tests running a side in-process).
#[cfg(test)]
fn write_rules(
    dir: &Path,
    port: u16,
    checks: usize,
    every: Duration,
) -> Result<crate::config::RuleSet, String> {
    let path = write_rules_file(dir, port, checks, every).map_err(|e| e.to_string())?;
    crate::config::load(&[path]).map_err(|d| format!("{d:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_rules_load_with_the_real_loader() {
        let dir = tempfile::tempdir().unwrap();
        let rules = write_rules(dir.path(), 9, 25, Duration::from_secs(60)).unwrap();
        assert_eq!(rules.checks.len(), 25);
        let c = &rules.checks[7].common;
        assert_eq!(c.name, "c7");
        assert_eq!(c.every, Some(Duration::from_secs(60)));
        assert_eq!(c.jitter, Some(Duration::from_secs(60)));
    }

    #[test]
    fn arguments_are_bounded() {
        let args = |checks, secs| ScheduleArgs {
            checks,
            duration: Duration::from_secs(secs),
            every: Duration::from_secs(60),
            concurrency: 32,
            per_target: 4,
            sides: vec![],
            json: false,
        };
        assert!(check_args(&args(10_000, 60)).is_ok());
        assert!(check_args(&args(0, 60)).is_err());
        assert!(check_args(&args(10, 0)).is_err());
        assert!(check_args(&args(10, 7200)).is_err());
    }
}
