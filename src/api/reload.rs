//! `POST /api/v1/reload`: loads the rules again. 200 with the new revision when applied; 422 with
//! every problem (`file:line:col`) when the new rules are invalid and the old ones stay in force.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Api;
use crate::daemon::state::ReloadOutcome;

#[derive(Debug, Serialize)]
struct Refused {
    error: String,
    #[serde(flatten)]
    outcome: ReloadOutcome,
}

pub(super) async fn reload(State(api): State<Api>) -> Response {
    let outcome = api.state.control.reload().await;
    if outcome.applied {
        return (StatusCode::OK, Json(outcome)).into_response();
    }
    let error = match outcome.problems.len() {
        0 => "the rules were not reloaded".to_string(),
        n => format!(
            "the new rules have {n} problem(s); revision {} stays in force",
            outcome.revision
        ),
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(Refused { error, outcome }),
    )
        .into_response()
}
