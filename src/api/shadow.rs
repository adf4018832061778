//! `GET /api/v1/shadow?since=48h`: what every `mode: shadow` check would have alerted over the
//! window (`since`: a duration back from now or an RFC 3339 time, default 48h) — `{since, until,
//! checks: [...]}`, see [`crate::report::shadow`]. The loaded rules give each check its mode and
//! alert thresholds, and list configured shadow checks that have no results yet.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::Utc;
use serde::Deserialize;

use super::{Api, ApiError};
use crate::report::shadow::{DEFAULT_SINCE, ShadowReport, parse_since};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShadowQuery {
    since: Option<String>,
}

pub(super) async fn report(
    State(api): State<Api>,
    query: Result<Query<ShadowQuery>, QueryRejection>,
) -> Result<Json<ShadowReport>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let until = Utc::now();
    let since = parse_since(q.since.as_deref().unwrap_or(DEFAULT_SINCE), until)
        .map_err(ApiError::bad_request)?;
    let rules = api.state.rules.load_full();
    let report = ShadowReport::from_store(&api.state.store, since, until, Some(&rules)).await?;
    Ok(Json(report))
}
