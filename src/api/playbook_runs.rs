//! `GET /api/v1/playbook-runs` (newest first, filters) and `GET /api/v1/playbook-runs/{id}`
//! (the run with its steps; `?format=markdown` for the Markdown report).
//!
//! OWNER: audit helper.

use axum::extract::{Path, State};
use axum::response::Response;

use super::{Api, ApiError};

pub(super) async fn list(State(api): State<Api>) -> Result<Response, ApiError> {
    let _ = api;
    Err(ApiError::not_found("not yet"))
}

pub(super) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let _ = (api, id);
    Err(ApiError::not_found("not yet"))
}
