//! `seasonal` and `ets`: a model fitted from a series' stored history, turned into a forecast of
//! the next steps with a prediction interval at the baseline's `level`. Samples arriving until
//! the next refit are judged against the forecast step their time falls on. Fitting is slow
//! (milliseconds to seconds) and happens in a background task, never when a probe's sample is
//! judged.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{BaselineConfig, BaselineMethod};

/// A fitted model's predictions for the steps after its history.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub method: BaselineMethod,
    /// The time of the first predicted step (one `step` after the last history point).
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub point: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// The prediction-interval level of `lower`/`upper`.
    pub level: f64,
    /// Grid points the model was fitted on.
    pub history_points: usize,
}

/// What a refit produced.
#[derive(Clone, Debug, PartialEq)]
pub enum FitOutcome {
    Fitted(Forecast),
    /// Not enough history yet: `have` of the `need`ed span (EWMA judges meanwhile).
    Learning {
        have: Duration,
        need: Duration,
    },
}

impl Forecast {
    /// The centre and standard deviation the forecast gives for time `t`: the nearest step's
    /// prediction, and its interval's half-width over the normal quantile of `level`. None when
    /// `t` lies before the first step or after the last (the model is out of date).
    pub fn at(&self, t: DateTime<Utc>) -> Option<(f64, f64)> {
        let _ = t;
        None
    }
}

/// Steps a forecast covers: two refit periods, so a refit that runs late leaves no gap.
pub fn horizon(cfg: &BaselineConfig, step: Duration) -> usize {
    let step = step.as_secs_f64().max(1e-3);
    ((2.0 * cfg.refit.as_secs_f64() / step).ceil() as usize).max(1) + 1
}

/// Fits `cfg.method` (seasonal or ets) on `history` (time, value; any order, gaps and duplicate
/// times allowed), resampled on a grid of `step`, and forecasts `horizon` steps. Err for a
/// model that cannot be fitted (reported; EWMA keeps judging).
pub fn fit(
    cfg: &BaselineConfig,
    history: &[(DateTime<Utc>, f64)],
    step: Duration,
    horizon: usize,
) -> Result<FitOutcome, String> {
    let _ = (cfg, history, step, horizon);
    Err("model fitting is not built yet".to_string())
}
