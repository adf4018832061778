//! Running checks: concurrency limits, timeouts, judging measurements against conditions and
//! baselines, and committing a run's results and baseline updates together.

mod judge;
mod limits;
mod run;

pub use judge::{Judged, RunFacts, judge};
pub use limits::{Limits, Permits};
pub use run::{CheckDoneHook, RunOptions, RunOutcome, execute_check, run_checks, select_checks};
