//! Harness of `tests/api.rs`: a real [`DaemonState`] (rules loaded from YAML files, a SQLite store
//! in a temporary directory, the real event bus and metrics) served by the real router on
//! 127.0.0.1:0, plus a small Server-Sent-Events reader.
//!
//! The one stand-in is [`RecordingControl`]: the daemon's own `Control` (which runs checks and
//! reloads rules) is written in parallel and tested with the daemon; here the API only has to pass
//! requests through and render the answers, so a control that records its calls and answers
//! what the test configured is enough.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use patrol::api::ApiOptions;
use patrol::config::Diagnostic;
use patrol::daemon::events::EventBus;
use patrol::daemon::state::{Control, DaemonState, ReloadOutcome, RunRequest};
use patrol::result::{CheckResult, RunRecord, Status, StatusCounts, Value};
use patrol::store::{NewEvent, Store, StoredEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Longest a test waits for something the server should send.
pub const WAIT: Duration = Duration::from_secs(5);

/// Two checks, a suite and a service: enough for every endpoint.
pub const RULES: &str = r#"
checks:
  - name: api-up
    kind: http
    url: http://127.0.0.1:9/health
    every: 30s
    jitter: 5s
    service: orders
    labels: { tier: core }
  - name: db-port
    kind: tcp
    address: 127.0.0.1:9
    schedule: "0 2 * * *"
    timezone: Europe/Berlin
    mode: shadow
suites:
  nightly: { schedule: "0 2 * * *", select: { tags: { tier: core } } }
services:
  orders: { model: penalty }
"#;

/// A control that records what the API asked and answers as configured.
pub struct RecordingControl {
    known_checks: Vec<String>,
    pub runs: Mutex<Vec<RunRequest>>,
    pub reloads: Mutex<u32>,
    pub reload_answer: Mutex<ReloadOutcome>,
}

impl RecordingControl {
    fn new(known_checks: Vec<String>) -> RecordingControl {
        RecordingControl {
            known_checks,
            runs: Mutex::new(Vec::new()),
            reloads: Mutex::new(0),
            reload_answer: Mutex::new(ReloadOutcome {
                applied: true,
                revision: "rev-2".into(),
                problems: Vec::new(),
            }),
        }
    }

    pub fn refuse_reloads(&self, problems: Vec<Diagnostic>) {
        *self.reload_answer.lock().unwrap() = ReloadOutcome {
            applied: false,
            revision: "rev-1".into(),
            problems,
        };
    }
}

impl Control for RecordingControl {
    fn start_run(&self, request: RunRequest) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let unknown: Vec<&String> = request
                .checks
                .iter()
                .filter(|c| !self.known_checks.contains(c))
                .collect();
            if !unknown.is_empty() {
                return Err(format!("unknown check(s): {unknown:?}"));
            }
            let mut runs = self.runs.lock().unwrap();
            runs.push(request);
            Ok(format!("run-{}", runs.len()))
        })
    }

    fn reload(&self) -> BoxFuture<'_, ReloadOutcome> {
        Box::pin(async move {
            *self.reloads.lock().unwrap() += 1;
            self.reload_answer.lock().unwrap().clone()
        })
    }
}

pub struct Harness {
    pub base: String,
    pub state: Arc<DaemonState>,
    pub control: Arc<RecordingControl>,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(token: Option<&str>) -> Harness {
        Harness::start_with(token, patrol::api::DEFAULT_HEARTBEAT).await
    }

    pub async fn start_with(token: Option<&str>, heartbeat: Duration) -> Harness {
        patrol::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let rules_dir = dir.path().join("rules");
        std::fs::create_dir(&rules_dir).unwrap();
        std::fs::write(rules_dir.join("checks.yaml"), RULES).unwrap();
        let rules = patrol::config::load(&[rules_dir]).expect("the test rules are valid");
        let names = rules.checks.iter().map(|c| c.name().to_string()).collect();
        let url = format!("sqlite://{}", dir.path().join("patrol.db").display());
        let store = Store::open(&url).await.unwrap();
        let control = Arc::new(RecordingControl::new(names));
        let state = Arc::new(DaemonState::new(
            Arc::new(rules),
            store,
            EventBus::new(),
            control.clone(),
            token.map(String::from),
        ));
        state.set_ready(true);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let options = ApiOptions::default().heartbeat(heartbeat);
        let server = tokio::spawn(patrol::api::serve_with(
            listener,
            state.clone(),
            options,
            shutdown.clone().cancelled_owned(),
        ));
        Harness {
            base,
            state,
            control,
            http: reqwest::Client::new(),
            shutdown,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        json_of(r).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        token: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        json_of(req.send().await.unwrap()).await
    }

    /// Publishes [`new_events`]`(n, tag)` on the daemon's event bus (stored, then sent live).
    pub async fn publish(&self, n: usize, tag: &str) -> Vec<StoredEvent> {
        self.state
            .events
            .publish(&self.state.store, &new_events(n, tag))
            .await
            .unwrap()
    }

    /// Saves a run with `results` (which get the run's id) as the daemon's writer would.
    pub async fn save_run(&self, id: &str, at: DateTime<Utc>, mut results: Vec<CheckResult>) {
        for r in &mut results {
            r.run_id = id.into();
        }
        let run = RunRecord {
            id: id.into(),
            started_at: at,
            finished_at: at + chrono::Duration::seconds(1),
            revision: "rev-1".into(),
            trigger: "schedule".into(),
            counts: StatusCounts::tally(&results),
        };
        self.state
            .store
            .save_run(&run, &results, &[])
            .await
            .unwrap();
    }
}

/// The status and JSON body of a response (every answer of the API, errors included, is JSON).
pub async fn json_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

pub fn result(
    check: &str,
    series: &str,
    at: DateTime<Utc>,
    status: Status,
    value: f64,
) -> CheckResult {
    CheckResult {
        service: Some("orders".into()),
        started_at: at,
        ..CheckResult::new(check, series, status, Some(Value::Num(value)))
    }
}

#[allow(unused_imports)] // each test binary uses a different part of the harness
pub use crate::common::sse::{Frame, SseReader, promtool_accepts};

/// `n` events tagged `tag`, alternately of kind `result` and `score`, numbered `i` from 0.
pub fn new_events(n: usize, tag: &str) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            kind: if i % 2 == 0 { "result" } else { "score" }.into(),
            at: Utc::now(),
            data: json!({"tag": tag, "i": i}),
        })
        .collect()
}

pub async fn open_stream(h: &Harness, last_event_id: Option<i64>) -> SseReader {
    let mut req = h.http.get(h.url("/api/v1/events"));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader::new(r)
}

/// The ids of events read from a stream.
pub fn frame_ids(got: &[(i64, String, serde_json::Value)]) -> Vec<i64> {
    got.iter().map(|e| e.0).collect()
}

/// The ids of stored events.
pub fn event_ids(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.id).collect()
}

/// Reads `n` events; panics if fewer come within the wait.
pub async fn read_events(s: &mut SseReader, n: usize) -> Vec<(i64, String, serde_json::Value)> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(s.next_event(WAIT).await.expect("an event within the wait"));
    }
    got
}
