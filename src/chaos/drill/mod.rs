//! Drill files (`kind: drill`) and the drill runner.
//!
//! A drill is read and validated by [`load`] (every problem as `file:line:col`), then run by
//! [`runner`]: preflight → steady state before → proxies and workload → faults on the timeline
//! (each journaled before it is injected, always reverted) with steady-state probes feeding
//! `abort_when` → drain → steady state after → `verify` → report.

mod abort;
mod load;
pub mod metric;
pub mod progress;
pub mod report;
mod report_html;
mod sections;
pub mod spec;
pub mod steady;
mod timeline;
mod validate;
pub mod verify;

pub use abort::{AbortWatch, ScorePoint};
pub use load::{TOP_LEVEL, is_drill, load_drill, read_drill};
pub use report::{DrillReport, DrillStatus};
pub use spec::{AbortRule, Drill, Metric, RecoveryFrom, SteadyCheck, TimedFault, Tolerance};
pub use timeline::{LONGEST_FAULT_PHASE, Step, schedule};
pub use validate::{Validation, validate_paths};
mod faults;
mod interrupt;
mod load_driver;
mod measured;
mod recovery;
mod rollback;
pub mod runner;
pub use interrupt::Interrupt;
pub use runner::{RunSettings, preflight, run_drill};
pub mod plan;
