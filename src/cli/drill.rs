//! `patrol drill FILE [--rules DIR] [--dry-run] [--report-dir reports] [--format table|json]
//! [--store URL]` and `patrol drill --recover`.
//!
//! Exit codes: 0 passed, 1 the steady state or a verification failed, 2 invalid input (the drill,
//! the rules, a failed preflight), 3 aborted (everything was rolled back).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;

use super::{DEFAULT_STORE, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::chaos::drill::{
    Drill, DrillReport, DrillStatus, Interrupt, RunSettings, read_drill, run_drill,
};
use crate::chaos::fault::{DrillRunRecord, FaultContext, recover};
use crate::config::RuleSet;
use crate::store::Store;

/// Exit code of a drill that was aborted (and rolled back).
pub const EXIT_ABORTED: u8 = 3;

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// The drill file (`kind: drill`).
    #[arg(required_unless_present = "recover")]
    pub file: Option<PathBuf>,
    /// Rules directory, file or consul://HOST:PORT/PREFIX the steady-state checks come from
    /// (default: rules/ when it exists).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Print the plan (faults with their blast radius, abort rules, verification) and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Reports go to DIR/drills/<name>-<timestamp>.json and .md.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub report_dir: PathBuf,
    #[arg(long, value_enum, default_value_t = DrillFormat::Table)]
    pub format: DrillFormat,
    /// Where the fault journal and drill runs are kept.
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Revert every fault the journal still holds as active (after patrol was killed), then exit.
    #[arg(long, conflicts_with_all = ["dry_run", "file"])]
    pub recover: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DrillFormat {
    Table,
    Json,
}

pub async fn drill(args: DrillArgs) -> u8 {
    if args.recover {
        return recover_journal(&args).await;
    }
    let Some(file) = args.file.clone() else {
        eprintln!("patrol drill: give a drill file (or --recover)");
        return EXIT_INVALID;
    };
    let rules = match load_rules(args.rules.as_deref()).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let drill = match read_drill(&file, &rules) {
        Ok(d) => Arc::new(d),
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "{} problem(s) in the drill; nothing was run",
                problems.len()
            );
            return EXIT_INVALID;
        }
    };
    if args.dry_run {
        print_plan(&drill, args.format, true);
        return EXIT_OK;
    }
    // From here on SIGINT/SIGTERM revert everything and report the drill aborted.
    let interrupt = Interrupt::new();
    if let Err(e) = interrupt.on_signals() {
        eprintln!("patrol drill: cannot watch for signals, so a Ctrl-C could not roll back: {e}");
        return EXIT_INVALID;
    }
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_INVALID;
        }
    };
    print_plan(&drill, args.format, false);
    let report = match run_guarded(drill.clone(), store.clone(), interrupt).await {
        Ok(r) => r,
        Err((code, message)) => {
            eprintln!("patrol drill: {message}");
            return code;
        }
    };
    deliver(&report, &args, &store).await;
    match report.status {
        DrillStatus::Passed => EXIT_OK,
        DrillStatus::Failed => EXIT_FAILED,
        DrillStatus::Aborted => EXIT_ABORTED,
    }
}

/// The rules of `--rules` (a directory, a file or consul://…), or of `rules/` when it exists, or
/// none.
async fn load_rules(path: Option<&Path>) -> Result<RuleSet, u8> {
    crate::config::source::load_optional(path)
        .await
        .map_err(|problems| {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "{} problem(s) in the rules; nothing was run",
                problems.len()
            );
            EXIT_INVALID
        })
}

/// Runs the drill in its own task so that even a panic of the runner ends in a rollback: the
/// journal is then swept like `--recover` does.
async fn run_guarded(
    drill: Arc<Drill>,
    store: Store,
    interrupt: Interrupt,
) -> Result<DrillReport, (u8, String)> {
    let settings = RunSettings {
        store: store.clone(),
        live: true,
        interrupt,
    };
    let task_drill = drill.clone();
    let joined = tokio::spawn(async move { run_drill(&task_drill, &settings).await }).await;
    match joined {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(why)) => Err((EXIT_INVALID, why)),
        Err(e) => {
            let ctx = FaultContext {
                rules: drill.rules.clone(),
                proxies: Default::default(),
                base_dir: drill
                    .file
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            let swept = match recover(&store, &ctx).await {
                Ok(outcomes) => outcomes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  "),
                Err(se) => {
                    format!("the journal cannot be read ({se}); run `patrol drill --recover`")
                }
            };
            Err((
                EXIT_ABORTED,
                format!("the drill runner failed ({e}); reverted from the journal:\n  {swept}"),
            ))
        }
    }
}

/// Writes the report files, stores the run and prints the report.
async fn deliver(report: &DrillReport, args: &DrillArgs, store: &Store) {
    match report.write(&args.report_dir) {
        Ok((json, md, html)) => eprintln!(
            "report: {}, {} and {}",
            json.display(),
            md.display(),
            html.display()
        ),
        Err(e) => eprintln!(
            "patrol drill: cannot write the report into {}: {e}",
            args.report_dir.display()
        ),
    }
    let record = DrillRunRecord {
        id: report.run_id.clone(),
        drill: report.name.clone(),
        status: report.status.as_str().to_string(),
        started_at: report.started_at,
        finished_at: Some(report.finished_at),
        report: serde_json::to_value(report).unwrap_or_default(),
    };
    if let Err(e) = store.save_drill_run(&record).await {
        eprintln!("patrol drill: the run is not stored for trends: {e}");
    }
    match args.format {
        DrillFormat::Json => println!(
            "{}",
            crate::secrets::redact_owned(serde_json::to_string_pretty(report).unwrap_or_default())
        ),
        DrillFormat::Table => print!("{}", crate::secrets::redact_owned(report.summary())),
    }
}

/// `--recover`: reverts every fault the journal holds as active.
async fn recover_journal(args: &DrillArgs) -> u8 {
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_INVALID;
        }
    };
    // Redis faults name targets of the rules; without valid rules the others still recover.
    let rules = load_rules(args.rules.as_deref())
        .await
        .unwrap_or_else(|_| crate::config::load(&[]).unwrap_or_else(|_| unreachable!("no files")));
    let ctx = FaultContext {
        rules: Arc::new(rules),
        proxies: Default::default(),
        base_dir: std::env::current_dir().unwrap_or_default(),
    };
    let outcomes = match recover(&store, &ctx).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("patrol drill --recover: cannot read the journal: {e}");
            return EXIT_INVALID;
        }
    };
    if outcomes.is_empty() {
        println!("nothing to recover: no fault is active in the journal");
    }
    for o in &outcomes {
        println!("{o}");
    }
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.result, crate::chaos::fault::RecoverResult::Failed(_)));
    if failed { EXIT_FAILED } else { EXIT_OK }
}

/// The plan: what will be injected when, with its blast radius, and what is watched and verified.
fn print_plan(drill: &Drill, format: DrillFormat, dry_run: bool) {
    use crate::secrets::redact_owned;
    let text = redact_owned(crate::chaos::drill::plan::text(drill));
    match (format, dry_run) {
        (DrillFormat::Json, true) => println!(
            "{}",
            redact_owned(
                serde_json::to_string_pretty(&crate::chaos::drill::plan::json(drill))
                    .unwrap_or_default()
            )
        ),
        (DrillFormat::Table, true) => print!("{text}"),
        // During a real run stdout carries the report only.
        (_, false) => eprint!("{text}"),
    }
}
