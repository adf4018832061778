//! `POST /api/v1/playbooks/{name}/runs` — `{"params": {…}, "dry_run": bool}` (both optional; an
//! empty body is `{}`) → 202 `{"run_id", "url"}` at once; the run goes on in its own task through
//! the same guardrails and audit as any other (`GET /api/v1/playbook-runs/{id}` shows it).
//! 400 for a bad body or unknown / missing parameters, 404 for an unknown playbook.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Api, ApiError};
use crate::daemon::playbooks::{StartError, params_from_json};

/// The body of a start request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    dry_run: bool,
}

pub(super) async fn start(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let params = params_from_json(&body.params).map_err(ApiError::bad_request)?;
    let started = api
        .state
        .playbooks
        .start_by_api(&name, &params, body.dry_run)
        .map_err(|e| match e {
            StartError::Unknown(message) => ApiError::not_found(message),
            StartError::Params(message) => ApiError::bad_request(message),
            StartError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "this server cannot run playbooks",
            ),
        })?;
    let url = format!("/api/v1/playbook-runs/{}", started.run_id);
    let answer = Json(json!({ "run_id": started.run_id, "url": url }));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], answer).into_response())
}

/// The JSON body; an empty one starts the run with the defaults.
fn parse_body(body: &[u8]) -> Result<StartBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StartBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{e}; expected {{\"params\": {{\"name\": \"value\"}}, \"dry_run\": false}}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_means_defaults() {
        let body = parse_body(b"  ").unwrap();
        assert!(body.params.is_empty() && !body.dry_run);
    }

    #[test]
    fn params_and_dry_run_are_read() {
        let body = parse_body(br#"{"params": {"a": "x", "n": 3}, "dry_run": true}"#).unwrap();
        assert!(body.dry_run);
        let params = params_from_json(&body.params).unwrap();
        assert_eq!(
            params,
            vec![("a".to_string(), "x".to_string()), ("n".into(), "3".into())]
        );
    }

    #[test]
    fn unknown_fields_and_nested_params_are_refused() {
        assert!(parse_body(br#"{"parms": {}}"#).is_err());
        let body = parse_body(br#"{"params": {"a": [1]}}"#).unwrap();
        let e = params_from_json(&body.params).unwrap_err();
        assert!(e.contains("`a` must be a string"), "{e}");
    }
}
