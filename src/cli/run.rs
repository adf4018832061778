//! `patrol run`: load rules, run the selected checks once, store and print the results.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output;
use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK, RunArgs, RunFormat};
use crate::config;
use crate::engine::{RunOptions, run_checks, select_checks};
use crate::store::Store;

pub async fn run(args: RunArgs) -> u8 {
    let rules = match config::load(std::slice::from_ref(&args.rules)) {
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
    let checks = match select_checks(&rules, &args.checks, &args.tags) {
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
        trigger: "cli".into(),
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
    if outcome.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
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
