//! `GET /api/v1/results?check=&since=&limit=&run=`: stored results, newest first; with `run`,
//! the results of that run in the order they were saved.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Api, ApiError};
use crate::config::duration;
use crate::result::CheckResult;

/// Results returned when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most results one request may ask for.
pub const MAX_LIMIT: u32 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResultsQuery {
    check: Option<String>,
    /// RFC 3339 (`2026-05-01T00:00:00Z`) or a duration back from now (`1h`).
    since: Option<String>,
    limit: Option<u32>,
    run: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct ResultList {
    results: Vec<CheckResult>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<ResultsQuery>, QueryRejection>,
) -> Result<Json<ResultList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let since = q.since.as_deref().map(parse_since).transpose()?;
    let limit = checked_limit(q.limit)?;
    let store = &api.state.store;
    let results = match &q.run {
        Some(run) => {
            let mut results = store.results_of_run(run).await?;
            results.retain(|r| {
                q.check.as_ref().is_none_or(|c| &r.check == c)
                    && since.is_none_or(|s| r.started_at >= s)
            });
            results.truncate(limit as usize);
            results
        }
        None => {
            store
                .query_results(q.check.as_deref(), since, limit)
                .await?
        }
    };
    Ok(Json(ResultList { results }))
}

pub(super) fn checked_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        0 => Err(ApiError::bad_request("limit must be at least 1")),
        n if n > MAX_LIMIT => Err(ApiError::bad_request(format!(
            "limit must be at most {MAX_LIMIT}"
        ))),
        n => Ok(n),
    }
}

/// `since` as a time: RFC 3339, or a duration meaning that long ago.
pub(super) fn parse_since(text: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let ago = duration::parse(text).map_err(|_| {
        ApiError::bad_request(format!(
            "since {text:?} is neither an RFC 3339 time (2026-05-01T00:00:00Z) nor a duration (1h)"
        ))
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| Utc::now().checked_sub_signed(ago))
        .ok_or_else(|| ApiError::bad_request(format!("since {text:?} is too far back")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_times_and_durations() {
        let at = parse_since("2026-05-01T02:00:00+02:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        let hour_ago = parse_since("1h").unwrap();
        let expected = Utc::now() - chrono::Duration::hours(1);
        assert!((hour_ago - expected).num_seconds().abs() < 5);
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(checked_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(checked_limit(Some(5)).unwrap(), 5);
        assert!(checked_limit(Some(0)).is_err());
        assert!(checked_limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
