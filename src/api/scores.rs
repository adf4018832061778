//! `GET /api/v1/scores`: the latest health score of every service (and `_overall`);
//! `?service=NAME[&since=&limit=]`: that service's stored history, newest first.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::results::{checked_limit, parse_since};
use super::{Api, ApiError};
use crate::store::ScoreRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoresQuery {
    service: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(super) struct ScoreList {
    scores: Vec<ScoreRecord>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<ScoresQuery>, QueryRejection>,
) -> Result<Json<ScoreList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let scores = match &q.service {
        Some(service) => history(&api, service, &q).await?,
        None => latest(&api).await?,
    };
    Ok(Json(ScoreList { scores }))
}

/// The daemon's latest evaluation; before its first one (just after a start), the newest
/// stored scores, so a restart does not blank the scores.
async fn latest(api: &Api) -> Result<Vec<ScoreRecord>, ApiError> {
    let live: Vec<ScoreRecord> = api
        .state
        .scores
        .read()
        .await
        .iter()
        .map(ScoreRecord::from)
        .collect();
    if !live.is_empty() {
        return Ok(live);
    }
    Ok(api.state.store.latest_scores().await?)
}

async fn history(api: &Api, service: &str, q: &ScoresQuery) -> Result<Vec<ScoreRecord>, ApiError> {
    let since = q.since.as_deref().map(parse_since).transpose()?;
    let limit = checked_limit(q.limit)?;
    Ok(api.state.store.score_history(service, since, limit).await?)
}
