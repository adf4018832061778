//! `baseline:` as written in a check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::result::Status;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BaselineMethod {
    /// Exponentially weighted moving mean and variance (DESIGN §3).
    #[default]
    Ewma,
}

/// Which side of the band counts as unusual.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Both,
    /// Only values above the band (latency, lag, error counts).
    Up,
    /// Only values below the band (throughput, free space).
    Down,
}

/// Severity given to a sample outside the band.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BandSeverity {
    #[default]
    Warn,
    Crit,
}

/// A dynamic baseline kept per (check, series).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Learning method; `ewma` today.
    pub method: BaselineMethod,
    /// Weight of the newest sample, 0 < alpha ≤ 1.
    pub alpha: f64,
    /// Band half-width in standard deviations.
    pub k: f64,
    /// Samples learned before the band is enforced.
    pub warmup: u64,
    pub direction: Direction,
    /// Status of a sample outside the band: `warn` or `crit`.
    pub severity: BandSeverity,
    /// Whether values judged anomalous still update the baseline (off: an outage does not become normal).
    pub learn_anomalies: bool,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            method: BaselineMethod::Ewma,
            alpha: 0.1,
            k: 3.0,
            warmup: 20,
            direction: Direction::Both,
            severity: BandSeverity::Warn,
            learn_anomalies: false,
        }
    }
}

impl BaselineConfig {
    pub fn anomaly_status(&self) -> Status {
        match self.severity {
            BandSeverity::Warn => Status::Warn,
            BandSeverity::Crit => Status::Crit,
        }
    }

    /// Problems with the numbers, as (field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            out.push((
                "alpha",
                format!("alpha must be in (0, 1], got {}", self.alpha),
            ));
        }
        if !(self.k > 0.0 && self.k.is_finite()) {
            out.push(("k", format!("k must be a positive number, got {}", self.k)));
        }
        out
    }
}
