//! The daemon's HTTP API (axum): health and readiness, `/metrics`, the REST endpoints under
//! `/api/v1` and the live event stream. Handlers only read [`DaemonState`] and ask its
//! [`Control`](crate::daemon::state::Control) to act; the daemon does the work.
//!
//! | endpoint | |
//! |---|---|
//! | `GET /` | the status page (`/ui/app.js`, `/ui/style.css`), see `status_page` |
//! | `GET /healthz` | the process answers |
//! | `GET /readyz` | 200 once the daemon is ready and the store answers, 503 otherwise |
//! | `GET /metrics` | Prometheus text 0.0.4, or OpenMetrics when the scraper asks for it |
//! | `GET /api/v1/checks`, `/api/v1/checks/{name}` | the loaded checks with their latest results |
//! | `GET /api/v1/results?check=&since=&limit=&run=` | stored results, newest first |
//! | `GET /api/v1/scores` | the latest health scores |
//! | `GET /api/v1/series?limit=&check=` | recent points of every series, for sparklines |
//! | `GET /api/v1/shadow?since=48h` | what each `mode: shadow` check would have alerted: evaluations, warn/crit/error, flaps, first/last would-be alert |
//! | `GET /api/v1/status` | revision, reloads, the last reload error, counts |
//! | `POST /api/v1/runs` | `{"checks":[…]}` or `{"suite":"…"}` → 202 `{"run_id":…}` |
//! | `GET /api/v1/runs/{id}` | a stored run and its results |
//! | `POST /api/v1/reload` | reload the rules; 200 applied, 422 refused |
//! | `GET /api/v1/events` | Server-Sent Events, resumable with `Last-Event-ID` |
//! | `GET /api/v1/alerts?state=` | stored alert states, optionally only one phase |
//! | `GET /api/v1/outbox?status=&limit=` | the notification outbox, newest first |
//! | `POST /api/v1/silences` | create a silence → 201 `{"id":…}`, 400 with the problems |
//! | `GET /api/v1/silences?active=` | silences with their state |
//! | `DELETE /api/v1/silences/{id}` | end a silence now; 404 when unknown or already ended |
//! | `POST /api/v1/playbooks/{name}/runs` | start a playbook run → 202 `{"run_id":…}` |
//! | `GET /api/v1/playbook-runs?playbook=&status=&since=&limit=` | stored playbook runs, newest first |
//! | `GET /api/v1/playbook-runs/{id}` | a run with its steps (`?format=markdown`: the report) |
//! | `GET /api/v1/approvals` | approvals waiting |
//! | `GET`/`POST /api/v1/approvals/{id}?token=` | see / decide an approval (its own token) |
//!
//! Errors are JSON: `{"error": "…"}`. With an API token, the POST and DELETE endpoints need
//! `Authorization: Bearer <token>`.

mod alerts;
mod approvals;
mod auth;
mod checks;
mod events;
pub mod exposition;
mod health;
pub mod metrics;
mod playbook_runs;
mod playbooks;
mod reload;
mod results;
mod runs;
mod scores;
mod series;
mod shadow;
pub mod silences;
mod status;
mod status_page;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio_util::sync::CancellationToken;

use crate::daemon::state::DaemonState;
use crate::store::StoreError;

/// How often an idle event stream sends a heartbeat comment.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// Settings of the API that tests shorten; [`router`] uses the defaults.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Interval of the `: heartbeat` comment on idle event streams.
    pub heartbeat: Duration,
    /// Cancelled when the server shuts down: open event streams end, so a graceful shutdown
    /// does not wait for clients that never disconnect.
    pub closing: CancellationToken,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            heartbeat: DEFAULT_HEARTBEAT,
            closing: CancellationToken::new(),
        }
    }
}

impl ApiOptions {
    pub fn heartbeat(mut self, every: Duration) -> ApiOptions {
        self.heartbeat = every;
        self
    }

    /// The router with these options.
    pub fn router(self, state: Arc<DaemonState>) -> Router {
        let api = Api {
            state,
            options: self,
        };
        let mutating = Router::new()
            .route("/api/v1/runs", post(runs::start))
            .route("/api/v1/reload", post(reload::reload))
            .route("/api/v1/silences", post(silences::create))
            .route("/api/v1/silences/{id}", delete(silences::expire))
            .route("/api/v1/playbooks/{name}/runs", post(playbooks::start))
            .route_layer(axum::middleware::from_fn_with_state(
                api.clone(),
                auth::require_token,
            ));
        Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .route("/metrics", get(health::metrics))
            .route("/api/v1/checks", get(checks::list))
            .route("/api/v1/checks/{name}", get(checks::one))
            .route("/api/v1/results", get(results::list))
            .route("/api/v1/scores", get(scores::list))
            .route("/api/v1/status", get(status::show))
            .route("/api/v1/runs/{id}", get(runs::show))
            .route("/api/v1/events", get(events::stream))
            .route("/api/v1/alerts", get(alerts::list))
            .route("/api/v1/outbox", get(alerts::outbox))
            .route("/api/v1/silences", get(silences::list))
            .route("/", get(status_page::index))
            .route(status_page::SCRIPT_PATH, get(status_page::script))
            .route(status_page::STYLE_PATH, get(status_page::style))
            .route("/api/v1/series", get(series::list))
            .route("/api/v1/shadow", get(shadow::report))
            .route("/api/v1/playbook-runs", get(playbook_runs::list))
            .route("/api/v1/playbook-runs/{id}", get(playbook_runs::show))
            .route("/api/v1/approvals", get(approvals::list))
            // Protected by the approval's own token (the link people get), not the API token.
            .route(
                "/api/v1/approvals/{id}",
                get(approvals::show).post(approvals::decide),
            )
            .merge(mutating)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(api)
    }
}

/// The router with the default options (15 s heartbeat).
pub fn router(state: Arc<DaemonState>) -> Router {
    ApiOptions::default().router(state)
}

/// Serves the API on `listener` until `shutdown` completes, then ends open event streams and
/// waits for the requests in progress.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<DaemonState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ApiOptions::default(), shutdown).await
}

/// [`serve`] with options.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<DaemonState>,
    options: ApiOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = options.closing.clone();
    let app = options.router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}

/// What every handler gets: the daemon's state and the API options.
#[derive(Clone)]
struct Api {
    state: Arc<DaemonState>,
    options: ApiOptions,
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

/// Store errors are already free of secrets (the store redacts them); they are logged and shown.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::warn!("api: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, &self.message)
    }
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}
