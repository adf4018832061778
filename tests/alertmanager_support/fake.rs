//! A recording HTTP server on a random loopback port: every request is kept (method, path,
//! headers, body) and answered by the test's own function, which may also hang to provoke a
//! client timeout; and the checks PagerDuty's Events API applies, as such a function.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (Null when it is not JSON, so assertions show what arrived).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How the fake answers one request.
pub enum Reply {
    /// A status with a body (sent as JSON when it parses as JSON, else as text).
    With(u16, String),
    /// Never answers: the client's timeout must fire.
    Hang,
}

type Responder = dyn Fn(&Captured) -> Reply + Send + Sync;

struct State {
    requests: Mutex<Vec<Captured>>,
    arrivals: mpsc::UnboundedSender<Captured>,
    respond: Box<Responder>,
}

/// The running fake; it stops with the test's runtime.
pub struct Fake {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    state: Arc<State>,
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<Captured>>,
}

impl Fake {
    /// Binds a random loopback port first (so the URL is valid as soon as this returns), then serves.
    pub async fn start(respond: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> Fake {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            arrivals: tx,
            respond: Box::new(respond),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            base,
            state,
            arrivals: tokio::sync::Mutex::new(rx),
        }
    }

    /// A fake answering every request with `status` and `body`.
    pub async fn replying(status: u16, body: &str) -> Fake {
        let body = body.to_string();
        Fake::start(move |_| Reply::With(status, body.clone())).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The next request (in arrival order, each seen once) for which `wanted` holds, waiting at
    /// most `within`; requests that do not match are skipped.
    pub async fn next_matching(
        &self,
        within: Duration,
        wanted: impl Fn(&Captured) -> bool,
    ) -> Option<Captured> {
        let mut rx = self.arrivals.lock().await;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(c)) if wanted(&c) => return Some(c),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let captured = Captured {
        method,
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    };
    state.requests.lock().unwrap().push(captured.clone());
    let reply = (state.respond)(&captured);
    let _ = state.arrivals.send(captured);
    match reply {
        Reply::With(status, body) => {
            let status = StatusCode::from_u16(status).unwrap();
            let content_type = if serde_json::from_str::<Value>(&body).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (status, [("content-type", content_type)], body).into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// A loopback URL nothing listens on: the port was bound, then released.
pub fn refused_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

/// What PagerDuty's Events API v2 checks, answered the way it answers: 202 with the dedup key, or
/// 400 "invalid event" with the reasons.
pub fn pagerduty_verdict(c: &Captured) -> Reply {
    let e = c.json();
    let mut errors: Vec<&str> = Vec::new();
    if c.header("content-type") != Some("application/json") {
        errors.push("Content-Type must be application/json");
    }
    if e["routing_key"].as_str().map(str::len) != Some(32) {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
    }
    let blank = |v: &Value| v.as_str().is_none_or(|s| s.trim().is_empty());
    match e["event_action"].as_str() {
        Some("trigger") => {
            let p = &e["payload"];
            if blank(&p["summary"]) || p["summary"].as_str().unwrap().chars().count() > 1024 {
                errors.push("'payload.summary' is missing, blank or too long");
            }
            if blank(&p["source"]) {
                errors.push("'payload.source' is missing or blank");
            }
            if !matches!(p["severity"].as_str(), Some("critical" | "error" | "warning" | "info")) {
                errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')");
            }
        }
        Some("acknowledge" | "resolve") if blank(&e["dedup_key"]) => {
            errors.push("'dedup_key' is missing or blank");
        }
        Some("acknowledge" | "resolve") => {}
        _ => errors.push("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')"),
    }
    if errors.is_empty() {
        let ok =
            json!({"status": "success", "message": "Event processed", "dedup_key": e["dedup_key"]});
        Reply::With(202, ok.to_string())
    } else {
        let bad = json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});
        Reply::With(400, bad.to_string())
    }
}
