//! `GET /api/v1/alerts[?state=firing]`: the stored alert states; `GET /api/v1/outbox
//! [?status=pending|sent|dead|folded&limit=]`: the durable outbox, newest first. Both read the
//! store only. Outbox payloads are stored with registered secrets already masked, so showing
//! them leaks no credential.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::results::checked_limit;
use super::{Api, ApiError};
use crate::alert::lifecycle::Phase;
use crate::store::{OutboxEntry, OutboxStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertsQuery {
    /// Only alerts in this phase (`inactive`, `pending`, `firing`).
    state: Option<Phase>,
}

/// One stored alert: its fingerprint and the lifecycle's state as stored.
#[derive(Debug, Serialize)]
pub(super) struct AlertView {
    fingerprint: String,
    state: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub(super) struct AlertList {
    alerts: Vec<AlertView>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let wanted = q.state.map(phase_text);
    let alerts = api
        .state
        .store
        .load_alerts()
        .await?
        .into_iter()
        .filter(|(_, state)| in_phase(state, wanted.as_deref()))
        .map(|(fingerprint, state)| AlertView { fingerprint, state })
        .collect();
    Ok(Json(AlertList { alerts }))
}

/// The phase as the stored state spells it (the lifecycle's serde names).
fn phase_text(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Whether a stored state is in `phase` (every state when no phase is asked for).
fn in_phase(state: &serde_json::Value, phase: Option<&str>) -> bool {
    phase.is_none_or(|p| state.get("phase").and_then(|v| v.as_str()) == Some(p))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutboxQuery {
    status: Option<OutboxStatus>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(super) struct OutboxList {
    notifications: Vec<OutboxEntry>,
}

pub(super) async fn outbox(
    State(api): State<Api>,
    query: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<OutboxList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = checked_limit(q.limit)?;
    let notifications = api.state.store.outbox(q.status, limit as usize).await?;
    Ok(Json(OutboxList { notifications }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_are_spelled_as_stored() {
        assert_eq!(phase_text(Phase::Firing), "firing");
        assert_eq!(phase_text(Phase::Inactive), "inactive");
    }

    #[test]
    fn the_phase_filter_reads_the_state_field() {
        let firing = json!({"phase": "firing"});
        assert!(in_phase(&firing, None));
        assert!(in_phase(&firing, Some("firing")));
        assert!(!in_phase(&firing, Some("pending")));
        assert!(!in_phase(&json!({}), Some("firing")));
    }
}
