//! `GET /api/v1/approvals` (pending), `GET /api/v1/approvals/{id}?token=` (what waits, with
//! approve/deny buttons) and `POST /api/v1/approvals/{id}` (the decision; protected by the
//! approval's own token, which is what the link carries).
//!
//! OWNER: guard helper.

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

pub(super) async fn decide(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let _ = (api, id);
    Err(ApiError::not_found("not yet"))
}
