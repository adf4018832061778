//! Running checks: concurrency limits, timeouts, judging measurements against conditions and
//! baselines, and committing a run's results and baseline updates together.

mod judge;
mod run;

pub use judge::{Judged, RunFacts, judge};
pub use run::{CheckDoneHook, RunOptions, RunOutcome, run_checks, select_checks};
