//! `patrol run`: load rules (from files or a Consul KV prefix), run the selected checks once,
//! store and print the results.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output;
use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, RunArgs, RunFormat};
use crate::config;
use crate::config::source::RulesSource;
use crate::engine::{RunOptions, run_checks, select_checks};
use crate::result::CheckResult;
use crate::score::{self, ServiceScore};
use crate::store::{ScoreRecord, Store, StoreError};

pub async fn run(args: RunArgs) -> u8 {
    // `--rules` is a directory, a file, or consul://HOST:PORT/PREFIX (one snapshot of it).
    let source = match RulesSource::from_path_arg(&args.rules, &config::ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: --rules: {e}");
            return EXIT_INVALID;
        }
    };
    let rules = match source.load().await {
        Ok(r) => r,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!(
                "{} problem(s) in the rules; nothing was run",
                problems.len()
            );
            return EXIT_INVALID;
        }
    };
    let checks = match &args.suite {
        Some(name) => match rules.suites.get(name) {
            Some(suite) => Ok(rules
                .checks
                .iter()
                .filter(|c| suite.select.matches(c) && c.has_labels(&args.tags))
                .cloned()
                .collect()),
            None => {
                let known: Vec<&str> = rules.suites.keys().map(String::as_str).collect();
                eprintln!(
                    "patrol: unknown suite {name:?}; defined suites: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                return EXIT_INVALID;
            }
        },
        None => select_checks(&rules, &args.checks, &args.tags),
    };
    let checks = match checks {
        Ok(c) => c,
        Err(unknown) => {
            eprintln!("patrol: unknown check(s): {}", unknown.join(", "));
            return EXIT_INVALID;
        }
    };
    let store = match Store::open(&args.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_INVALID;
        }
    };
    let progress = progress_bar(checks.len() as u64);
    let pb = progress.clone();
    let opts = RunOptions {
        limits: crate::engine::Limits::new(args.concurrency, args.per_target),
        trigger: args
            .suite
            .as_ref()
            .map_or("cli".into(), |s| format!("suite:{s}")),
        on_check_done: Some(Arc::new(move |_| pb.inc(1))),
    };
    let started = std::time::Instant::now();
    let outcome = run_checks(&rules, &checks, &store, &opts).await;
    progress.finish_and_clear();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_FAILED;
        }
    };
    match args.format {
        RunFormat::Table => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", output::table(&outcome.results, color));
            println!("{}", output::summary(&outcome, started.elapsed()));
        }
        RunFormat::Json => {
            for r in &outcome.results {
                println!("{}", serde_json::to_string(r).unwrap_or_default());
            }
        }
    }
    let scores = match score_services(&rules, &store, &outcome.results).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_FAILED;
        }
    };
    if args.format == RunFormat::Table && !scores.is_empty() {
        print!("\n{}", score::table(&scores));
    }
    if let Some(dir) = &args.report_dir
        && !super::report::write_after_run(&store, &outcome.run.id, dir).await
    {
        return EXIT_INVALID;
    }
    if outcome.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Scores of the services this run touched (and the overall score), from the stored check states
/// with this run's results folded in, stored as one point of each score's time series. Empty when
/// the run touched no service.
async fn score_services(
    rules: &config::RuleSet,
    store: &Store,
    results: &[CheckResult],
) -> Result<Vec<ServiceScore>, StoreError> {
    let touched = score::touched_services(rules, results);
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    // The run is stored already, so the stored states normally include it; folding it again is
    // a no-op then and keeps the scores right if the store lags behind.
    let states = score::check_states_from(results, &store.check_states().await?);
    let scores: Vec<ServiceScore> = score::evaluate(rules, &states, Utc::now())
        .into_iter()
        .filter(|s| s.service == score::OVERALL || touched.contains(&s.service))
        .collect();
    let records: Vec<ScoreRecord> = scores.iter().map(ScoreRecord::from).collect();
    store.save_scores(&records).await?;
    Ok(scores)
}

/// A progress bar on stderr that shows itself only on a terminal and only once the run has
/// taken a second (quick runs stay quiet).
fn progress_bar(len: u64) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {pos}/{len} checks [{bar:30}] {elapsed}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    if std::io::stderr().is_terminal() {
        let shown = pb.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if !shown.is_finished() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        });
    }
    pb
}
