//! The `penalty` model (inspection seed, DESIGN §3):
//! `score = clamp(100 − Σᵢ wᵢ · log₂(minutes_failingᵢ + 1), 0, 100)` over the service's enforced
//! checks. A check that started failing a moment ago costs almost nothing; one failing for an hour
//! costs `w · log₂ 61 ≈ 5.9 w` — long outages weigh more, with diminishing returns.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{CheckState, Computed, clamp_score};
use crate::config::RuleSet;

/// The penalty score of `service` from the states of its enforced (non-shadow) checks.
pub(crate) fn score(
    rules: &RuleSet,
    service: &str,
    states: &HashMap<String, CheckState>,
    now: DateTime<Utc>,
) -> Computed {
    let mut total = 0.0;
    let mut terms = Vec::new();
    let mut has_data = false;
    let enforced = rules
        .checks
        .iter()
        .filter(|c| c.common.service.as_deref() == Some(service) && !c.is_shadow());
    for check in enforced {
        let weight = check.common.weight;
        let Some(state) = states.get(check.name()) else {
            terms.push(
                json!({ "check": check.name(), "weight": weight, "status": null, "penalty": 0.0 }),
            );
            continue;
        };
        has_data = true;
        let minutes = failing_minutes(state, now);
        let penalty = minutes.map_or(0.0, |m| term(weight, m));
        total += penalty;
        terms.push(json!({
            "check": check.name(),
            "weight": weight,
            "status": state.status,
            "failing_minutes": minutes,
            "penalty": penalty,
        }));
    }
    Computed {
        score: clamp_score(100.0 - total),
        terms,
        has_data,
    }
}

/// One check's penalty: `w · log₂(minutes + 1)`.
pub(crate) fn term(weight: f64, minutes: f64) -> f64 {
    weight * (minutes + 1.0).log2()
}

/// Minutes the check has been failing at `now` (`None` when it is not failing). A failing state
/// without `failing_since` counts from its own time; a clock that went backwards counts as 0.
pub(crate) fn failing_minutes(state: &CheckState, now: DateTime<Utc>) -> Option<f64> {
    if !state.status.fails_run() {
        return None;
    }
    let since = state.failing_since.unwrap_or(state.at);
    let ms = (now - since).num_milliseconds().max(0);
    Some(ms as f64 / 60_000.0)
}
