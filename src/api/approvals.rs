//! `GET /api/v1/approvals` (pending), `GET /api/v1/approvals/{id}?token=` (what waits, with
//! approve/deny buttons) and `POST /api/v1/approvals/{id}` (the decision; protected by the
//! approval's own token, which is what the link carries).
//!
//! A decision is accepted with the token in `?token=`, in a JSON body
//! `{"token", "decision": "approve"|"deny", "by": "alice"}` or in form fields (the page's
//! buttons). Answers: 200 decided, 400 no or an unknown decision, 403 no or a wrong token, 404
//! unknown approval, 409 already decided, 410 expired. The approver is recorded as `api:<by>`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Api, ApiError};
use crate::playbook::guard::token_matches;
use crate::store::{ApprovalDecision, StoredApproval};

/// Most approvals listed at once.
const LIST_LIMIT: usize = 500;
/// Longest `by` kept.
const MAX_BY: usize = 100;

#[derive(Debug, Serialize)]
pub(super) struct ApprovalList {
    /// Oldest first; tokens are never listed.
    approvals: Vec<StoredApproval>,
}

pub(super) async fn list(State(api): State<Api>) -> Result<Json<ApprovalList>, ApiError> {
    let approvals = api
        .state
        .store
        .pending_approvals(Utc::now(), LIST_LIMIT)
        .await?;
    Ok(Json(ApprovalList { approvals }))
}

/// The token and the decision, from the query string or the body.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DecisionFields {
    token: Option<String>,
    /// `approve` or `deny`.
    decision: Option<String>,
    by: Option<String>,
}

impl DecisionFields {
    /// `self`, with what it lacks taken from `other`.
    fn or(self, other: DecisionFields) -> DecisionFields {
        DecisionFields {
            token: self.token.or(other.token),
            decision: self.decision.or(other.decision),
            by: self.by.or(other.by),
        }
    }
}

pub(super) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
    query: Result<Query<DecisionFields>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let token = q.token.unwrap_or_default();
    let approval = authorised(&api, &id, &token).await?;
    let asked_by = match api.state.store.playbook_run(&approval.run_id).await {
        Ok(Some(run)) => Some(run.started_by),
        _ => None,
    };
    let page = page(&approval, asked_by.as_deref(), &token, Utc::now());
    Ok(Html(page).into_response())
}

pub(super) async fn decide(
    State(api): State<Api>,
    Path(id): Path<String>,
    query: Result<Query<DecisionFields>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (body, from_form) = body_fields(request).await?;
    let fields = body.or(q);
    let approval = authorised(&api, &id, fields.token.as_deref().unwrap_or_default()).await?;
    let decision = match fields.decision.as_deref().map(str::trim) {
        Some("approve" | "approved") => ApprovalDecision::Approved,
        Some("deny" | "denied") => ApprovalDecision::Denied,
        other => {
            return Err(ApiError::bad_request(format!(
                "decision {}: expected \"approve\" or \"deny\"",
                other.map_or("missing".to_string(), |d| format!("{d:?}"))
            )));
        }
    };
    let by = approver_name(fields.by.as_deref());
    let now = Utc::now();
    still_open(&approval, now)?;
    let store = &api.state.store;
    if !store.decide_approval(&id, decision, &by, now).await? {
        // Someone else decided (or it expired) between reading and deciding: say which.
        let current = store.approval(&id).await?.ok_or_else(|| unknown(&id))?;
        still_open(&current, Utc::now())?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("approval {id} could not be decided"),
        ));
    }
    tracing::info!("approval {id} {} by {by}", decision.as_str());
    if from_form {
        let text = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{d}</title></head>\
             <body><p>{what} of playbook {p}: <strong>{d}</strong> by {by}.</p></body></html>",
            d = decision.as_str(),
            what = escape(&waiting(&approval)),
            p = escape(&approval.playbook),
            by = escape(&by),
        );
        return Ok(Html(text).into_response());
    }
    let body = json!({ "id": id, "decision": decision.as_str(), "decided_by": by });
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// The fields of a JSON or form body (none when the body is empty), and whether it was a form.
async fn body_fields(request: Request) -> Result<(DecisionFields, bool), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let Json(fields) = Json::<DecisionFields>::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        return Ok((fields, false));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let axum::Form(fields) = axum::Form::<DecisionFields>::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        return Ok((fields, true));
    }
    Ok((DecisionFields::default(), false))
}

/// The approval `id` when `token` is its token: 404 when unknown, 403 otherwise.
async fn authorised(api: &Api, id: &str, token: &str) -> Result<StoredApproval, ApiError> {
    let approval = api
        .state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| unknown(id))?;
    if token.is_empty() || !token_matches(token, &approval.token_hash) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("approval {id}: missing or wrong token (use the link that was sent)"),
        ));
    }
    Ok(approval)
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no approval {id:?}"))
}

/// 409 when already approved or denied, 410 when expired (decided so or past its time).
fn still_open(approval: &StoredApproval, now: DateTime<Utc>) -> Result<(), ApiError> {
    let id = &approval.id;
    match approval.decision {
        Some(ApprovalDecision::Expired) => Err(gone(approval)),
        Some(d) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "approval {id} was already {} by {}",
                d.as_str(),
                approval.decided_by.as_deref().unwrap_or("someone")
            ),
        )),
        None if approval.expires_at <= now => Err(gone(approval)),
        None => Ok(()),
    }
}

fn gone(approval: &StoredApproval) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        format!(
            "approval {} expired at {}",
            approval.id,
            approval.expires_at.to_rfc3339()
        ),
    )
}

/// `api:<by>`: what the caller says, trimmed to one short line (the token, not the name, is
/// what authorises; the name is for the record).
fn approver_name(by: Option<&str>) -> String {
    let name: String = by
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_BY)
        .collect();
    let name = name.trim();
    format!("api:{}", if name.is_empty() { "anonymous" } else { name })
}

fn waiting(approval: &StoredApproval) -> String {
    match &approval.step {
        Some(step) => format!("step {step}"),
        None => "the run".to_string(),
    }
}

/// The page the link opens: what waits, who asked, until when, and the two buttons while it
/// is open.
fn page(
    approval: &StoredApproval,
    asked_by: Option<&str>,
    token: &str,
    now: DateTime<Utc>,
) -> String {
    let what = escape(&waiting(approval));
    let playbook = escape(&approval.playbook);
    let input = serde_json::to_string_pretty(&approval.input).unwrap_or_default();
    let state = match (approval.decision, approval.expires_at <= now) {
        (Some(d), _) => format!(
            "<p><strong>{}</strong> by {} at {}.</p>",
            d.as_str(),
            escape(approval.decided_by.as_deref().unwrap_or("?")),
            approval
                .decided_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default()
        ),
        (None, true) => "<p><strong>expired</strong>: nobody decided in time.</p>".to_string(),
        (None, false) => format!(
            "<form method=\"post\" action=\"{id}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <p><label>Your name <input name=\"by\" required></label></p>\
             <button name=\"decision\" value=\"approve\">Approve</button> \
             <button name=\"decision\" value=\"deny\">Deny</button></form>",
            id = escape(&approval.id),
            token = escape(token),
        ),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <title>Approve {what} of {playbook}?</title></head><body>\
         <h1>Approve {what} of playbook {playbook}?</h1>\
         <p>{description}</p><pre>{input}</pre>\
         <p>Run <code>{run}</code>{asked}, asked at {created}; expires at {expires}.</p>\
         {state}</body></html>",
        description = escape(&approval.description),
        input = escape(&input),
        run = escape(&approval.run_id),
        asked = asked_by
            .map(|who| format!(" started by {}", escape(who)))
            .unwrap_or_default(),
        created = approval.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        expires = approval.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

/// HTML text and attribute escaping, as patrol's e-mail bodies use.
fn escape(text: &str) -> String {
    crate::alert::template::html_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(decision: Option<ApprovalDecision>, expires_in: i64) -> StoredApproval {
        let now = Utc::now();
        StoredApproval {
            id: "a1".into(),
            run_id: "r1".into(),
            playbook: "fix<it>".into(),
            step: Some("restart".into()),
            description: "POST http://x/?a=1&b=2".into(),
            input: json!({"url": "<script>"}),
            token_hash: String::new(),
            created_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in),
            decision,
            decided_by: decision.map(|_| "api:ana".to_string()),
            decided_at: decision.map(|_| now),
        }
    }

    #[test]
    fn the_page_escapes_what_it_shows_and_offers_buttons_only_while_open() {
        let now = Utc::now();
        let open = page(&approval(None, 60), Some("cli:bob"), "t0k", now);
        assert!(open.contains("playbook fix&lt;it&gt;"), "{open}");
        assert!(open.contains("a=1&amp;b=2"), "{open}");
        assert!(open.contains("&lt;script&gt;"), "{open}");
        assert!(!open.contains("<script>"), "{open}");
        assert!(open.contains("started by cli:bob"), "{open}");
        assert!(open.contains("name=\"token\" value=\"t0k\""), "{open}");
        assert!(open.contains("value=\"approve\""), "{open}");
        let expired = page(&approval(None, -1), None, "t0k", now);
        assert!(expired.contains("expired"), "{expired}");
        assert!(!expired.contains("<form"), "{expired}");
        let decided = page(
            &approval(Some(ApprovalDecision::Denied), 60),
            None,
            "t",
            now,
        );
        assert!(
            decided.contains("<strong>denied</strong> by api:ana"),
            "{decided}"
        );
    }

    #[test]
    fn open_decided_and_expired_answer_200_409_410() {
        let now = Utc::now();
        assert!(still_open(&approval(None, 60), now).is_ok());
        let status = |a: StoredApproval| still_open(&a, now).unwrap_err().status;
        assert_eq!(
            status(approval(Some(ApprovalDecision::Approved), 60)),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(approval(Some(ApprovalDecision::Expired), 60)),
            StatusCode::GONE
        );
        assert_eq!(status(approval(None, -1)), StatusCode::GONE);
    }

    #[test]
    fn the_approver_is_named_after_what_the_caller_says() {
        assert_eq!(approver_name(Some(" alice ")), "api:alice");
        assert_eq!(approver_name(None), "api:anonymous");
        assert_eq!(approver_name(Some("a\nb")), "api:ab");
        assert_eq!(approver_name(Some(&"x".repeat(500))).len(), 4 + MAX_BY);
    }
}
