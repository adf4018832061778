//! Dynamic baselines: the learned normal of one series, and the judgement of a new sample against it.
//! Pure math only; persistence lives in `store`, orchestration (refits, peer history) in `engine`
//! and `daemon`.
//!
//! - [`ewma`]: the EWMA mean and variance, the default method and every fitted method's fallback;
//! - [`forecast`]: `seasonal` (augurs MSTL + AutoETS trend) and `ets` (AutoETS) fitted from history
//!   into a [`Forecast`] whose prediction interval is the band;
//! - [`peer`]: `peer`, the odd series out among a check's series (augurs-outlier MAD / DBSCAN);
//! - [`window`]: event windows that widen or disable the band;
//! - [`score`]: the graded anomaly score shared by every method;
//! - [`detector`]: one sample judged against whichever of these applies — the code path of live
//!   checks and of `patrol detect` alike;
//! - [`online`]: a series replayed sample by sample with refits on the data's clock (`patrol
//!   detect`, the evaluation benchmark, tests).

mod config;
pub mod detector;
mod ewma;
pub mod forecast;
pub mod online;
pub mod peer;
pub mod score;
pub mod window;

pub use config::{
    BandSeverity, BaselineConfig, BaselineMethod, Direction, PeerAlgorithm, PeerConfig,
};
pub use detector::{Model, Verdict, observe, observe_peer};
pub use ewma::{EwmaState, Judgement};
pub use forecast::{FitOutcome, Forecast};
pub use window::EventWindow;
