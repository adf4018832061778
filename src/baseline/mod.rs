//! Dynamic baselines: the learned normal of one series, and the judgement of a new sample against it.
//! Pure math only; persistence lives in `store`, orchestration in `engine`.

mod config;
mod ewma;

pub use config::{BandSeverity, BaselineConfig, BaselineMethod, Direction};
pub use ewma::{EwmaState, Judgement};
