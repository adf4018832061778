//! `GET /api/v1/playbook-runs?playbook=&status=&since=&limit=` (newest first, without their
//! steps) and `GET /api/v1/playbook-runs/{id}` (the run with its steps; `?format=markdown` for the
//! Markdown report). Both read the store only; what it holds was stored with secrets masked.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::results::{checked_limit, parse_since};
use super::{Api, ApiError};
use crate::playbook::{PlaybookRun, RunStatus, report};
use crate::store::RunFilter;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    playbook: Option<String>,
    /// `running`, `succeeded`, `failed`, `rolled_back` or `refused`.
    status: Option<String>,
    /// RFC 3339 or a duration back from now (`24h`).
    since: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(super) struct RunList {
    /// Newest first; `steps` is empty here (see `/api/v1/playbook-runs/{id}`).
    runs: Vec<PlaybookRun>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let filter = RunFilter {
        playbook: q.playbook,
        status,
        since: q.since.as_deref().map(parse_since).transpose()?,
        limit: checked_limit(q.limit)? as usize,
    };
    let runs = api.state.store.playbook_runs(&filter).await?;
    Ok(Json(RunList { runs }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShowQuery {
    format: Option<Format>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    Json,
    Markdown,
}

pub(super) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let run = api.state.store.playbook_run(&id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no playbook run {id:?} (see GET /api/v1/playbook-runs)"
        ))
    })?;
    Ok(match q.format.unwrap_or(Format::Json) {
        Format::Json => Json(run).into_response(),
        Format::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            report::markdown(&run, &links_base(&api, &headers)),
        )
            .into_response(),
    })
}

fn parse_status(text: &str) -> Result<RunStatus, ApiError> {
    RunStatus::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "status {text:?} is not one of running, succeeded, failed, rolled_back, refused"
        ))
    })
}

/// The report's links point back at the address the request came to (the daemon does not
/// share its `--external-url` with the API). A Host that is not a plain `host[:port]` is not
/// echoed into the report.
/// The daemon's external URL; else (an API without a daemon's playbooks) the request's host.
fn links_base(api: &Api, headers: &HeaderMap) -> String {
    match api.state.playbooks.external_url() {
        "" => base_url(headers),
        url => url.trim_end_matches('/').to_string(),
    }
}

fn base_url(headers: &HeaderMap) -> String {
    let plain = |h: &&str| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(plain)
        .unwrap_or("127.0.0.1:9464");
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_use_a_plain_host_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:4242".parse().unwrap());
        assert_eq!(base_url(&headers), "http://127.0.0.1:4242");
        headers.insert(header::HOST, "evil.example/x)(y".parse().unwrap());
        assert_eq!(base_url(&headers), "http://127.0.0.1:9464");
    }
}
