//! `POST /api/v1/playbooks/{name}/runs` — `{"params": {…}, "dry_run": bool}` → 202
//! `{"run_id", "url"}`; the run goes through the same guardrails as any other.
//!
//! OWNER: triggers helper.

use axum::extract::{Path, State};
use axum::response::Response;

use super::{Api, ApiError};

pub(super) async fn start(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let _ = (api, name);
    Err(ApiError::not_found("not yet"))
}
