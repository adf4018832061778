//! Health scores per service (and overall), from check results: the `penalty` model of the
//! inspection seed and the `weighted` model of the SSE seeds (DESIGN §3).
//!
//! Scores are computed from [`CheckState`]s (the latest state of every check, kept by the store and
//! folded forward with [`check_states_from`]), never from raw result history, so the daemon can
//! re-evaluate every few seconds at the cost of one map lookup per check.

mod low;
pub mod normalize;
mod penalty;
mod render;
mod state;
mod weighted;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::RuleSet;
use crate::config::ScoreModel;
use crate::result::Status;

pub use low::{LowScoreEvent, LowScoreWatch};
pub use normalize::Normalizer;
pub use render::table;
pub use state::{check_states_from, touched_services};

/// Name of the score that averages every service.
pub const OVERALL: &str = "_overall";

/// The latest state of one check, which is what scores are computed from: the worst status over
/// its series, since when it has been failing, and the mean of its numeric values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    /// Worst status over the check's series in its latest run.
    pub status: Status,
    /// When the check turned crit/error; kept while it keeps failing, `None` once it recovers.
    pub failing_since: Option<DateTime<Utc>>,
    /// Mean of the numeric values over the check's series (`None` when nothing numeric was measured).
    pub value: Option<f64>,
    /// When the latest result was taken.
    pub at: DateTime<Utc>,
}

/// One service's health score at one instant, with the terms that produced it so a person (and the
/// API) can see why it is what it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceScore {
    pub service: String,
    /// 0–100, higher is healthier.
    pub score: f64,
    /// The service's model; the [`OVERALL`] entry carries the default and is stored as `overall`
    /// (see [`ServiceScore::model_name`]).
    pub model: ScoreModel,
    /// Model-specific terms (`terms`, and `no_data: true` when none of the inputs has a state yet).
    pub details: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl ServiceScore {
    /// Whether any input of the score had a state. A score without data is a formula applied to
    /// nothing: shown, but never counted as low.
    pub fn has_data(&self) -> bool {
        self.details.get("no_data") != Some(&serde_json::Value::Bool(true))
    }

    /// The model as stored (`penalty` / `weighted` / `overall`).
    pub fn model_name(&self) -> &'static str {
        if self.service == OVERALL {
            return "overall";
        }
        match self.model {
            ScoreModel::Penalty => "penalty",
            ScoreModel::Weighted => "weighted",
        }
    }
}

/// What one model computed: the clamped score, its terms, and whether any input had a state.
pub(crate) struct Computed {
    pub score: f64,
    pub terms: Vec<serde_json::Value>,
    pub has_data: bool,
}

/// Every service's score (the keys of `services:` and every check's `service`), sorted by name,
/// followed by the [`OVERALL`] score: the mean of the services that have data.
pub fn evaluate(
    rules: &RuleSet,
    states: &HashMap<String, CheckState>,
    now: DateTime<Utc>,
) -> Vec<ServiceScore> {
    let mut scores: Vec<ServiceScore> = service_names(rules)
        .into_iter()
        .map(|name| evaluate_service(rules, &name, states, now))
        .collect();
    scores.push(overall(&scores, now));
    scores
}

/// Names of every service: configured under `services:` or named by a check.
pub fn service_names(rules: &RuleSet) -> BTreeSet<String> {
    rules
        .services
        .keys()
        .cloned()
        .chain(rules.checks.iter().filter_map(|c| c.common.service.clone()))
        .collect()
}

/// One service's score with the model configured for it (`penalty` when not configured).
pub fn evaluate_service(
    rules: &RuleSet,
    service: &str,
    states: &HashMap<String, CheckState>,
    now: DateTime<Utc>,
) -> ServiceScore {
    let config = rules.services.get(service);
    let model = config.map(|c| c.model).unwrap_or_default();
    let computed = match (model, config) {
        (ScoreModel::Weighted, Some(c)) => weighted::score(&c.components, states),
        _ => penalty::score(rules, service, states, now),
    };
    let mut details = serde_json::json!({ "terms": computed.terms });
    if !computed.has_data {
        details["no_data"] = true.into();
    }
    ServiceScore {
        service: service.to_string(),
        score: computed.score,
        model,
        details,
        at: now,
    }
}

/// The mean of the services that have data (all of them when none has), so a service nobody has
/// measured yet does not drag the overall score down.
fn overall(services: &[ServiceScore], now: DateTime<Utc>) -> ServiceScore {
    let with_data: Vec<&ServiceScore> = services.iter().filter(|s| s.has_data()).collect();
    let counted: Vec<&ServiceScore> = if with_data.is_empty() {
        services.iter().collect()
    } else {
        with_data
    };
    let score = if counted.is_empty() {
        100.0
    } else {
        counted.iter().map(|s| s.score).sum::<f64>() / counted.len() as f64
    };
    let terms: Vec<serde_json::Value> = counted
        .iter()
        .map(|s| serde_json::json!({ "service": s.service, "score": s.score }))
        .collect();
    let mut details = serde_json::json!({ "terms": terms });
    if services.iter().all(|s| !s.has_data()) {
        details["no_data"] = true.into();
    }
    ServiceScore {
        service: OVERALL.to_string(),
        score,
        model: ScoreModel::default(),
        details,
        at: now,
    }
}

/// `x` limited to [0, 100]; NaN (from a degenerate input) counts as 0.
pub(crate) fn clamp_score(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 100.0) }
}
