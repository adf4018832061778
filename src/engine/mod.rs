//! Running checks: concurrency limits, timeouts, judging measurements against conditions and
//! baselines, and committing a run's results, baseline updates and probe memories together.

mod judge;
pub mod known;
mod limits;
mod run;

pub use judge::{Judged, RunFacts, judge};
pub use known::Known;
pub use limits::{Limits, Permits};
pub use run::{
    CheckDoneHook, RunOptions, RunOutcome, execute_check, execute_check_remembering, load_memories,
    memory_of, remembered, run_checks, select_checks,
};
