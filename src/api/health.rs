//! `/healthz` (the process answers), `/readyz` (the daemon is ready and its store answers) and
//! `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::exposition::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, wants_openmetrics};
use super::{Api, ApiError};

/// Longest the readiness probe waits for the store.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn readyz(State(api): State<Api>) -> Result<Json<serde_json::Value>, ApiError> {
    if !api.state.is_ready() {
        return Err(unavailable("not ready: starting or shutting down"));
    }
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, store_answers(&api)).await {
        Ok(Ok(())) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => Err(unavailable(&format!("store unavailable: {e}"))),
        Err(_) => Err(unavailable("store unavailable: no answer within 2s")),
    }
}

/// A primary-key lookup of a run that does not exist: one cheap round trip to the database.
async fn store_answers(api: &Api) -> Result<(), crate::store::StoreError> {
    api.state.store.run("readiness-probe").await.map(|_| ())
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// OpenMetrics for scrapers that ask for it (Prometheus does), the Prometheus text format for
/// everyone else (curl, `promtool check metrics`).
pub(super) async fn metrics(State(api): State<Api>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let metrics = &api.state.metrics;
    if wants_openmetrics(accept) {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
            metrics.encode_prometheus(),
        )
            .into_response()
    }
}
