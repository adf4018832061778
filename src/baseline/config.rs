//! `baseline:` as written in a check.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::window::EventWindow;
use crate::result::Status;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BaselineMethod {
    /// Exponentially weighted moving mean and variance (DESIGN §3).
    #[default]
    Ewma,
    /// augurs MSTL with explicit `periods` and an AutoETS trend, refitted from stored history;
    /// the band is the model's prediction interval at `level`.
    Seasonal,
    /// augurs AutoETS without seasonality, for trending series; refitted like `seasonal`.
    Ets,
    /// The series is compared with the check's other series (pods, nodes, shards) over `window`
    /// by augurs-outlier (MAD or DBSCAN); the odd one out is anomalous.
    Peer,
}

impl BaselineMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineMethod::Ewma => "ewma",
            BaselineMethod::Seasonal => "seasonal",
            BaselineMethod::Ets => "ets",
            BaselineMethod::Peer => "peer",
        }
    }

    /// Whether the method fits a model from stored history (in a background task).
    pub fn is_fitted(self) -> bool {
        matches!(self, BaselineMethod::Seasonal | BaselineMethod::Ets)
    }
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

/// Outlier algorithm of the `peer` method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeerAlgorithm {
    /// Median absolute deviation from the peers' median, point by point.
    #[default]
    Mad,
    /// Density clustering of the series; a series outside the main cluster is odd.
    Dbscan,
}

/// How the `peer` method compares series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    pub algorithm: PeerAlgorithm,
    /// The recent stretch compared (default 30m).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub window: Duration,
    /// augurs' sensitivity in (0, 1): higher flags more series (default 0.5 for MAD: beyond ~2.9
    /// robust standard deviations of its peers; 0.7 for DBSCAN, which at 0.9 already splits
    /// similar noisy series).
    pub sensitivity: Option<f64>,
    /// Fewest series for a comparison (default 3: with two, neither is "the odd one").
    pub min_series: usize,
}

impl PeerConfig {
    /// The sensitivity in force: the configured one, else the algorithm's default.
    pub fn sensitivity(&self) -> f64 {
        self.sensitivity.unwrap_or(match self.algorithm {
            PeerAlgorithm::Mad => 0.5,
            PeerAlgorithm::Dbscan => 0.7,
        })
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            algorithm: PeerAlgorithm::Mad,
            window: Duration::from_secs(30 * 60),
            sensitivity: None,
            min_series: 3,
        }
    }
}

/// A dynamic baseline kept per (check, series).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Learning method: `ewma` (default), `seasonal`, `ets` or `peer`.
    pub method: BaselineMethod,
    /// Weight of the newest sample, 0 < alpha ≤ 1.
    pub alpha: f64,
    /// Band half-width in standard deviations (ewma; peer: in MAD-scaled deviations).
    pub k: f64,
    /// Samples learned before the band is enforced.
    pub warmup: u64,
    pub direction: Direction,
    /// Status of a sample outside the band: `warn` or `crit`.
    pub severity: BandSeverity,
    /// Whether values judged anomalous still update the baseline (off: an outage does not become normal).
    pub learn_anomalies: bool,
    /// Seasonal periods (`[1d, 7d]`), converted to samples with `interval` (seasonal only).
    #[serde(with = "duration_list")]
    #[schemars(with = "Vec<crate::config::duration::DurationSchema>")]
    pub periods: Vec<Duration>,
    /// How often the model is refitted from stored history (default 1h).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub refit: Duration,
    /// Prediction-interval level of the band (default 0.99).
    pub level: f64,
    /// History needed before the model is used; until then EWMA judges and the result says so
    /// (default: two of the longest period; ets: 1d).
    #[serde(with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub min_history: Option<Duration>,
    /// How much history a refit reads (default: four of the longest period; ets: 7d).
    #[serde(with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub history: Option<Duration>,
    /// The spacing of samples (default: the check's `every`; needed for cron-scheduled checks).
    #[serde(with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub interval: Option<Duration>,
    /// Settings of the `peer` method.
    pub peer: PeerConfig,
    /// Known events that widen or disable the band (a sale, a batch job, a maintenance window).
    pub windows: Vec<EventWindow>,
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
            periods: Vec::new(),
            refit: Duration::from_secs(3600),
            level: 0.99,
            min_history: None,
            history: None,
            interval: None,
            peer: PeerConfig::default(),
            windows: Vec::new(),
        }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

impl BaselineConfig {
    pub fn anomaly_status(&self) -> Status {
        match self.severity {
            BandSeverity::Warn => Status::Warn,
            BandSeverity::Crit => Status::Crit,
        }
    }

    /// The longest seasonal period (none for other methods).
    pub fn longest_period(&self) -> Option<Duration> {
        self.periods.iter().copied().max()
    }

    /// History needed before the fitted model judges.
    pub fn min_history(&self) -> Duration {
        self.min_history
            .unwrap_or_else(|| self.longest_period().map_or(DAY, |p| p * 2))
    }

    /// History a refit reads.
    pub fn history(&self) -> Duration {
        self.history
            .unwrap_or_else(|| self.longest_period().map_or(7 * DAY, |p| p * 4))
            .max(self.min_history())
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
        if !(self.level > 0.5 && self.level < 1.0) {
            out.push((
                "level",
                format!("level must be in (0.5, 1), got {}", self.level),
            ));
        }
        if self.method == BaselineMethod::Seasonal && self.periods.is_empty() {
            out.push((
                "periods",
                "method seasonal needs periods, e.g. [1d, 7d]".to_string(),
            ));
        }
        if self.method != BaselineMethod::Seasonal && !self.periods.is_empty() {
            out.push((
                "periods",
                format!(
                    "periods apply to method seasonal only (this baseline is {})",
                    self.method.as_str()
                ),
            ));
        }
        if self.periods.iter().any(|p| p.is_zero()) {
            out.push(("periods", "a period must be longer than zero".to_string()));
        }
        if self.method.is_fitted() && self.refit < Duration::from_secs(60) {
            out.push((
                "refit",
                format!(
                    "refit must be at least 1m (got {}): a refit reads the stored history",
                    crate::config::duration::format(self.refit)
                ),
            ));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            out.push(("interval", "interval must be longer than zero".to_string()));
        }
        let p = &self.peer;
        if let Some(s) = p.sensitivity
            && !(s > 0.0 && s < 1.0)
        {
            out.push((
                "peer",
                format!("peer.sensitivity must be in (0, 1), got {s}"),
            ));
        }
        if p.window.is_zero() {
            out.push(("peer", "peer.window must be longer than zero".to_string()));
        }
        if p.min_series < 2 {
            out.push(("peer", "peer.min_series must be at least 2".to_string()));
        }
        for w in &self.windows {
            if let Err(e) = w.problem() {
                out.push(("windows", e));
            }
        }
        out
    }
}

/// A list of durations (`[1d, 7d]`).
mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct One(#[serde(with = "crate::config::duration")] Duration);
        Ok(Vec::<One>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|d| crate::config::duration::format(*d)))
    }
}
