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
    let mut notifications = api.state.store.outbox(q.status, limit as usize).await?;
    for n in &mut notifications {
        hide_approval_tokens(&mut n.payload);
    }
    Ok(Json(OutboxList { notifications }))
}

/// Masks the token of approval links (`…/api/v1/approvals/ID?token=SECRET`) in a queued
/// notification: whoever holds the token can approve a playbook step, and this listing is not
/// behind the API token. The receivers got (or will get) the real link.
fn hide_approval_tokens(n: &mut crate::alert::Notification) {
    for alert in &mut n.alerts {
        alert.generator_url = mask_tokens(&alert.generator_url);
        for v in alert.annotations.values_mut() {
            *v = mask_tokens(v);
        }
    }
    for v in n.common_annotations.values_mut() {
        *v = mask_tokens(v);
    }
}

fn mask_tokens(text: &str) -> String {
    const KEY: &str = "token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str(crate::secrets::MASK);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approval_tokens_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_tokens("approve: http://p:9464/api/v1/approvals/7?token=abc-DEF_1 (15m)"),
            format!(
                "approve: http://p:9464/api/v1/approvals/7?token={} (15m)",
                crate::secrets::MASK
            )
        );
        assert_eq!(mask_tokens("no link here"), "no link here");
        assert_eq!(mask_tokens("token="), "token=");
    }

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
