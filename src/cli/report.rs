//! `patrol report`: regenerates a run's reports from the store, and the report step of
//! `patrol run --report-dir DIR`.
//!
//! Which run: `--run ID`, else the latest run of `--suite NAME` (`--suite cli` for `patrol run`
//! runs), else the latest suite or `patrol run` run in the store.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::{DEFAULT_STORE, EXIT_INVALID, EXIT_OK};
use crate::report::{Format, SuiteReport, write_formats};
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Report the latest run of this suite (`cli`: of `patrol run`).
    #[arg(long, value_name = "NAME", conflicts_with = "run")]
    pub suite: Option<String>,
    /// Report this run (its id as `patrol run --format json`, the API and the reports show it).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::All)]
    pub format: ReportFormat,
    /// Directory the files are written to, or `-` for standard output (one format only).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub output: String,
    /// Where the runs are kept.
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Html,
    Md,
    Json,
    Junit,
    /// The four files.
    All,
}

impl ReportFormat {
    fn formats(self) -> Vec<Format> {
        match self {
            ReportFormat::Html => vec![Format::Html],
            ReportFormat::Md => vec![Format::Markdown],
            ReportFormat::Json => vec![Format::Json],
            ReportFormat::Junit => vec![Format::Junit],
            ReportFormat::All => Format::ALL.to_vec(),
        }
    }
}

pub async fn report(args: ReportArgs) -> u8 {
    match regenerate(&args).await {
        Ok(()) => EXIT_OK,
        Err(message) => {
            eprintln!("patrol report: {message}");
            EXIT_INVALID
        }
    }
}

async fn regenerate(args: &ReportArgs) -> Result<(), String> {
    if args.output == "-" && args.format == ReportFormat::All {
        return Err("`--output -` prints one format: add --format html|md|json|junit".into());
    }
    let store = Store::open(&args.store).await.map_err(|e| e.to_string())?;
    let run_id = which_run(&store, args).await?;
    let report = SuiteReport::from_store(&store, &run_id)
        .await
        .map_err(|e| e.to_string())?;
    let formats = args.format.formats();
    if args.output == "-" {
        for f in formats {
            print!("{}", f.render(&report));
        }
        return Ok(());
    }
    let dir = PathBuf::from(&args.output);
    let paths = write_formats(&dir, &report, &formats)
        .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}

async fn which_run(store: &Store, args: &ReportArgs) -> Result<String, String> {
    if let Some(id) = &args.run {
        return Ok(id.clone());
    }
    let found = match &args.suite {
        Some(suite) => {
            let trigger = if suite == "cli" {
                "cli".to_string()
            } else {
                format!("suite:{suite}")
            };
            store.latest_run_of(&trigger).await
        }
        None => store.latest_report_run().await,
    }
    .map_err(|e| e.to_string())?;
    match (found, &args.suite) {
        (Some(run), _) => Ok(run.id),
        (None, Some(suite)) => Err(format!("no run of suite {suite:?} in the store")),
        (None, None) => Err("no suite or `patrol run` run in the store".into()),
    }
}

/// The report step of `patrol run --report-dir DIR`: writes the four files of the stored run
/// `run_id` and prints their paths on stderr (stdout may be JSON lines). False when it failed.
pub async fn write_after_run(store: &Store, run_id: &str, dir: &Path) -> bool {
    let report = match SuiteReport::from_store(store, run_id).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("patrol: no report: {e}");
            return false;
        }
    };
    match crate::report::write_all(dir, &report) {
        Ok(paths) => {
            for p in paths {
                eprintln!("report: {}", p.display());
            }
            true
        }
        Err(e) => {
            eprintln!(
                "patrol: cannot write the reports into {}: {e}",
                dir.display()
            );
            false
        }
    }
}
