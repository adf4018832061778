//! The `weighted` model (SSE seeds, DESIGN §3): `score = clamp(100 · Σᵢ wᵢ · normᵢ(xᵢ), 0, 100)`,
//! where `xᵢ` is the latest value of component `i`'s check (the mean over its series) and `normᵢ`
//! maps it to [0, 1]. A negative weight makes a penalty term (e.g. `− 0.1 · backlog/1000`).

use std::collections::HashMap;

use serde_json::json;

use super::{CheckState, Computed, clamp_score};
use crate::config::Component;

/// The weighted score of the `components`. A component whose check has no value (not run yet, or
/// its latest run could not measure) contributes 0 and is listed with `"missing": true` and the
/// check's status, so a low score caused by missing data says so. The score has data as soon as
/// one component's check has a state: a service whose checks all fail to measure scores 0 for real.
pub(crate) fn score(components: &[Component], states: &HashMap<String, CheckState>) -> Computed {
    let mut sum = 0.0;
    let mut terms = Vec::with_capacity(components.len());
    let mut has_data = false;
    for c in components {
        let state = states.get(&c.check);
        has_data |= state.is_some();
        let term = match state.and_then(|s| s.value) {
            Some(x) => {
                let normalized = c.normalize.apply(x);
                let term = c.weight * normalized;
                sum += term;
                json!({
                    "check": c.check,
                    "normalize": c.normalize.to_string(),
                    "weight": c.weight,
                    "value": x,
                    "normalized": normalized,
                    "term": term,
                })
            }
            None => json!({
                "check": c.check,
                "normalize": c.normalize.to_string(),
                "weight": c.weight,
                "value": null,
                "status": state.map(|s| s.status),
                "term": 0.0,
                "missing": true,
            }),
        };
        terms.push(term);
    }
    Computed {
        score: clamp_score(100.0 * sum),
        terms,
        has_data,
    }
}
