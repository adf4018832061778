//! Silences over HTTP: `POST /api/v1/silences` creates one (201 `{"id"}`, 400 with every
//! problem), `GET /api/v1/silences[?active=true]` lists them with their state, and
//! `DELETE /api/v1/silences/{id}` ends one now (404 when unknown or already ended). They live in
//! the store, where the daemon reads them, so a silence made here or with `patrol silence add`
//! takes effect the same way.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Api, ApiError};
use crate::alert::silence::{NewSilence, Silence, SilenceState};
use crate::store::NewEvent;

/// A silence as listed: the silence and where it stands at the time of the listing.
#[derive(Clone, Debug, Serialize)]
pub struct SilenceView {
    #[serde(flatten)]
    pub silence: Silence,
    pub state: SilenceState,
}

impl SilenceView {
    pub fn at(silence: Silence, now: DateTime<Utc>) -> SilenceView {
        let state = silence.state(now);
        SilenceView { silence, state }
    }
}

pub use crate::alert::silence::{from_stored, to_store};

pub(super) async fn create(
    State(api): State<Api>,
    body: Result<Json<NewSilence>, JsonRejection>,
) -> Result<Response, Response> {
    let Json(request) = body.map_err(|e| {
        problems(vec![format!(
            "{}; expected {{\"matchers\": [\"service=\\\"orders\\\"\"], \"ends_at\": RFC 3339, \"created_by\": …, \"comment\": …}}",
            e.body_text()
        )])
    })?;
    let silence = request
        .into_silence(Utc::now())
        .map_err(|lines| problems(lines.lines().map(String::from).collect()))?;
    let stored = api
        .state
        .store
        .add_silence(&to_store(&silence))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    announce(&api, "created", &stored.id).await;
    let url = format!("/api/v1/silences/{}", stored.id);
    let body = Json(json!({ "id": stored.id }));
    Ok((StatusCode::CREATED, [(header::LOCATION, url)], body).into_response())
}

/// A `silence` event (`created` or `expired`), so pages following `/api/v1/events` show it
/// at once. The silence itself is already stored: a failure here only delays the news.
async fn announce(api: &Api, action: &str, id: &str) {
    let event = NewEvent {
        kind: "silence".into(),
        at: Utc::now(),
        data: json!({ "id": id, "action": action }),
    };
    if let Err(e) = api.state.events.publish(&api.state.store, &[event]).await {
        tracing::warn!("could not store the silence event: {e}");
    }
}

/// 400 with every problem: `{"error": all lines, "problems": [line, …]}`.
fn problems(lines: Vec<String>) -> Response {
    let body = json!({ "error": lines.join("; "), "problems": lines });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SilencesQuery {
    /// Only silences not ended yet (active or still to start).
    #[serde(default)]
    active: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct SilenceList {
    silences: Vec<SilenceView>,
}

pub(super) async fn list(
    State(api): State<Api>,
    query: Result<Query<SilencesQuery>, QueryRejection>,
) -> Result<Json<SilenceList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let now = Utc::now();
    let stored = api
        .state
        .store
        .list_silences(q.active.then_some(now))
        .await?;
    let silences = stored
        .into_iter()
        .map(|s| from_stored(s).map(|s| SilenceView::at(s, now)))
        .collect::<Result<_, _>>()?;
    Ok(Json(SilenceList { silences }))
}

pub(super) async fn expire(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if api.state.store.expire_silence(&id, Utc::now()).await? {
        announce(&api, "expired", &id).await;
        Ok(Json(json!({ "id": id, "expired": true })))
    } else {
        Err(ApiError::not_found(format!(
            "no silence {id:?} in force (unknown or already ended)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredSilence;
    use chrono::Duration;

    #[test]
    fn a_silence_survives_the_trip_through_the_store_form() {
        let now = Utc::now();
        let silence = Silence {
            id: "s1".into(),
            matchers: crate::alert::matcher::parse_matchers(
                r#"service="orders", env=~"prod|stage""#,
            )
            .unwrap(),
            starts_at: now,
            ends_at: now + Duration::hours(1),
            created_by: "ana".into(),
            comment: "deploy".into(),
        };
        let stored = to_store(&silence);
        assert_eq!(
            stored.matchers,
            json!([r#"service="orders""#, r#"env=~"prod|stage""#])
        );
        let back = from_stored(StoredSilence {
            id: "s1".into(),
            matchers: stored.matchers,
            starts_at: stored.starts_at,
            ends_at: stored.ends_at,
            created_by: stored.created_by,
            comment: stored.comment,
        })
        .unwrap();
        assert_eq!(back, silence);
        assert_eq!(SilenceView::at(back, now).state, SilenceState::Active);
    }

    #[test]
    fn unreadable_stored_matchers_are_a_store_error() {
        let now = Utc::now();
        let bad = StoredSilence {
            id: "s2".into(),
            matchers: json!(["not a matcher"]),
            starts_at: now,
            ends_at: now,
            created_by: "x".into(),
            comment: "y".into(),
        };
        let e = from_stored(bad).unwrap_err();
        assert!(e.to_string().contains("s2"), "{e}");
    }
}
