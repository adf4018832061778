//! `POST /api/v1/runs` starts a run of named checks or of a suite and answers 202 with its id at
//! once; `GET /api/v1/runs/{id}` shows the run and its results once the daemon stored them.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::{Api, ApiError};
use crate::daemon::state::RunRequest;
use crate::result::{CheckResult, RunRecord};

pub(super) async fn start(
    State(api): State<Api>,
    body: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; expected {{\"checks\": [names]}} or {{\"suite\": name}}",
            e.body_text()
        ))
    })?;
    let run_id = api
        .state
        .control
        .start_run(request)
        .await
        .map_err(ApiError::bad_request)?;
    let url = format!("/api/v1/runs/{run_id}");
    let body = Json(json!({ "run_id": run_id, "url": url }));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], body).into_response())
}

#[derive(Debug, Serialize)]
pub(super) struct RunView {
    run: RunRecord,
    results: Vec<CheckResult>,
}

pub(super) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let store = &api.state.store;
    let run = store.run(&id).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no run {id:?} stored (a run just started is stored when it finishes)"
        ))
    })?;
    let results = store.results_of_run(&id).await?;
    Ok(Json(RunView { run, results }))
}
