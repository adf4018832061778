//! `services:` — how each service's health score is computed, and when a low score becomes an event.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::score::Normalizer;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScoreModel {
    /// `100 − Σ wᵢ·log₂(minutes failingᵢ + 1)`, weights from the checks.
    #[default]
    Penalty,
    /// `100 · Σ wᵢ·normᵢ(xᵢ)` over the listed components.
    Weighted,
}

/// One term of a weighted score: a check's latest value, normalised, weighted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Name of the check whose value feeds this term (its series are averaged).
    pub check: String,
    /// `linear(lo, hi)`, `inverse(limit)`, `exp_decay(k)` or `sigmoid(center, scale)`.
    pub normalize: Normalizer,
    /// Weight of the term; negative for a penalty term (e.g. backlog).
    pub weight: f64,
}

/// When a service scoring low becomes a `score_low` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LowScore {
    /// Scores under this count as low.
    pub below: f64,
    /// Consecutive low evaluations before the event.
    #[serde(default = "three")]
    pub times: u32,
}

fn three() -> u32 {
    3
}

/// A service's scoring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub model: ScoreModel,
    /// Terms of a `weighted` score.
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default)]
    pub low_score: Option<LowScore>,
    /// Playbook to run when the service's `score_low` event fires.
    #[serde(default)]
    pub on_low_score: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}
