//! Run reports (issue 8): every suite run (and `patrol run --report-dir DIR`) can leave
//! `<suite>-<timestamp>.{html,md,json,xml}` behind, and `patrol report` regenerates them from the
//! store.
//!
//! - [`model`]: what a report says, read from the store ([`SuiteReport::from_store`]);
//! - [`json`], [`junit`], [`markdown`], [`html`]: the four renderings, pure functions of it;
//! - [`svg`]: charts shared with the drill report and the status page;
//! - [`write`]: the files; [`deliver`]: the daemon's end-of-suite step (files + summary to the
//!   suite's receivers through the outbox).

pub mod deliver;
pub mod escape;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod shadow;
pub mod svg;
pub mod write;

#[cfg(test)]
mod sample;

pub use deliver::after_suite_run;
pub use model::{ReportError, SuiteReport};
pub use write::{Format, write_all, write_formats};
