//! Alerts end to end through `patrol daemon`: a check against a real HTTP service goes bad, the
//! alert fires after its threshold and the webhook receiver gets a firing notification from the
//! outbox; the service recovers and a resolved notification follows; a silence keeps the next
//! episode quiet. Real processes and servers on loopback, a real SQLite store.

mod common;
#[path = "daemon_support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use patrol::store::Store;
use support::{DaemonProcess, WAIT};

/// A service whose `/health` answers with the status in the atomic, and a webhook receiver that
/// records every notification it gets.
async fn service_and_receiver() -> (u16, Arc<AtomicU16>, Arc<Mutex<Vec<serde_json::Value>>>) {
    let status = Arc::new(AtomicU16::new(200));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (s, g) = (status.clone(), got.clone());
    let app = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(move || {
                let code = s.load(Ordering::SeqCst);
                async move { axum::http::StatusCode::from_u16(code).unwrap() }
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                g.lock().unwrap().push(body);
                async { "ok" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, status, got)
}

fn rules(port: u16) -> String {
    format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
checks:
  - name: orders-health
    kind: http
    url: "http://127.0.0.1:{port}/health"
    every: 1s
    service: orders
    notify: [ops]
    alert: {{failure_threshold: 2, success_threshold: 1, flap: {{window: 0s}}}}
"#
    )
}

async fn wait_for(got: &Arc<Mutex<Vec<serde_json::Value>>>, status: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        if let Some(n) = got
            .lock()
            .unwrap()
            .iter()
            .find(|n| n["status"] == status)
            .cloned()
        {
            return n;
        }
        assert!(
            started.elapsed() < WAIT,
            "no {status} notification within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_fires_resolves_and_stays_quiet_under_a_silence() {
    let (port, status, got) = service_and_receiver().await;
    let d = DaemonProcess::start(&[("r.yaml", &rules(port))], &[]).await;

    status.store(503, Ordering::SeqCst);
    let firing = wait_for(&got, "firing").await;
    assert_eq!(firing["commonLabels"]["alertname"], "orders-health");
    assert_eq!(firing["commonLabels"]["service"], "orders");
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 1);
    assert!(
        firing["idempotencyKey"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{firing}"
    );

    status.store(200, Ordering::SeqCst);
    let resolved = wait_for(&got, "resolved").await;
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_eq!(
        got.lock().unwrap().len(),
        2,
        "one firing and one resolved notification"
    );

    let store = Store::open(&d.store_url()).await.unwrap();
    let matchers = serde_json::json!(["alertname=\"orders-health\""]);
    let now = chrono::Utc::now();
    store
        .add_silence(&patrol::store::NewSilence {
            matchers,
            starts_at: now,
            ends_at: now + chrono::Duration::hours(1),
            created_by: "test".into(),
            comment: "deploying".into(),
        })
        .await
        .unwrap();
    status.store(503, Ordering::SeqCst);
    // Three bad results (the threshold is two) happen within ~3 s; the silence keeps them quiet.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        got.lock().unwrap().len(),
        2,
        "silenced: nothing more was sent"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let sent = store
        .outbox(Some(patrol::store::OutboxStatus::Sent), 10)
        .await
        .unwrap();
    assert_eq!(
        sent.len(),
        2,
        "both notifications are recorded as sent in the outbox"
    );
}

/// A service whose `/ratio` answers `{"ratio": <value in thousandths>}`.
async fn ratio_service(value: Arc<AtomicU16>) -> u16 {
    let app = axum::Router::new().route(
        "/ratio",
        axum::routing::get(move || {
            let v = f64::from(value.load(Ordering::SeqCst)) / 1000.0;
            async move { axum::Json(serde_json::json!({"ratio": v})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_health_score_becomes_an_alert_routed_to_its_receiver() {
    let (hook_port, _, got) = service_and_receiver().await;
    let ratio = Arc::new(AtomicU16::new(950));
    let port = ratio_service(ratio.clone()).await;
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{hook_port}/hook"}}
routes:
  - receiver: ops
    group_by: [service]
    group_wait: 0s
    group_interval: 1s
services:
  sse-pool:
    model: weighted
    components: [{{check: success-rate, normalize: "linear(0, 1)", weight: 1}}]
    low_score: {{below: 70, times: 2}}
checks:
  - name: success-rate
    kind: http
    url: "http://127.0.0.1:{port}/ratio"
    value: "json:$.ratio"
    every: 1s
    service: sse-pool
"#
    );
    let d = DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    ratio.store(100, Ordering::SeqCst);
    let firing = wait_for(&got, "firing").await;
    assert_eq!(firing["commonLabels"]["alertname"], "score_low", "{firing}");
    assert_eq!(firing["commonLabels"]["service"], "sse-pool");
    assert_eq!(
        firing["groupLabels"]["service"], "sse-pool",
        "grouped by the route's group_by"
    );
    ratio.store(990, Ordering::SeqCst);
    let resolved = wait_for(&got, "resolved").await;
    assert_eq!(resolved["commonLabels"]["alertname"], "score_low");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_one_group_within_group_wait_arrive_as_one_notification() {
    let (port, status, got) = service_and_receiver().await;
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
routes:
  - receiver: ops
    group_by: [service]
    group_wait: 2s
    group_interval: 1m
defaults: {{every: 1s, service: orders, alert: {{flap: {{window: 0s}}}}}}
checks:
  - {{name: orders-api, kind: http, url: "http://127.0.0.1:{port}/health"}}
  - {{name: orders-web, kind: http, url: "http://127.0.0.1:{port}/health"}}
  - {{name: orders-db, kind: http, url: "http://127.0.0.1:{port}/health"}}
"#
    );
    let d = DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    status.store(503, Ordering::SeqCst);
    let firing = wait_for(&got, "firing").await;
    let names: std::collections::BTreeSet<&str> = firing["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "the three checks' alerts arrive in one notification: {firing}"
    );
    assert_eq!(firing["groupLabels"]["service"], "orders");
    // group_interval is a minute: nothing else is sent for the group meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(got.lock().unwrap().len(), 1, "one message, not three");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

/// A service whose `/health/{name}` answers the status set for `name` (200 until set) and counts
/// the requests (one per check run), and a webhook receiver `/hook` that hands each notification
/// to the test as it arrives.
struct Lab {
    port: u16,
    statuses: Arc<Mutex<std::collections::HashMap<String, u16>>>,
    runs: Arc<std::sync::atomic::AtomicUsize>,
    arrivals: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>>,
}

impl Lab {
    async fn start() -> Lab {
        use axum::extract::Path;
        let statuses = Arc::new(Mutex::new(std::collections::HashMap::new()));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (s, r) = (statuses.clone(), runs.clone());
        let app = axum::Router::new()
            .route(
                "/health/{name}",
                axum::routing::get(move |Path(name): Path<String>| {
                    r.fetch_add(1, Ordering::SeqCst);
                    let code = s.lock().unwrap().get(&name).copied().unwrap_or(200);
                    async move { axum::http::StatusCode::from_u16(code).unwrap() }
                }),
            )
            .route(
                "/hook",
                axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                    let _ = tx.send(body);
                    async { "ok" }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Lab {
            port,
            statuses,
            runs,
            arrivals: tokio::sync::Mutex::new(rx),
        }
    }

    fn set(&self, name: &str, code: u16) {
        self.statuses.lock().unwrap().insert(name.into(), code);
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// The next notification the receiver gets (at most [`WAIT`] away).
    async fn next(&self) -> serde_json::Value {
        let mut rx = self.arrivals.lock().await;
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no notification within {WAIT:?}"))
            .expect("the receiver is running")
    }

    /// The first notification (of at most `limit` more) that `wanted` accepts.
    async fn next_where(
        &self,
        limit: usize,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..limit {
            let n = self.next().await;
            if wanted(&n) {
                return n;
            }
        }
        panic!("none of {limit} notifications was the one expected");
    }
}

/// (alertname, status) of each alert a notification carries, sorted.
fn carried(n: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = n["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap().to_string();
            (name, a["status"].as_str().unwrap().to_string())
        })
        .collect();
    out.sort();
    out
}

fn alerts(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_runs_rarely_still_reminds_every_repeat_interval() {
    let lab = Lab::start().await;
    lab.set("backup", 503);
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
checks:
  - name: nightly-backup
    kind: http
    url: "http://127.0.0.1:{port}/health/backup"
    every: 1h
    notify: [ops]
    alert: {{repeat_interval: 1s, flap: {{window: 0s}}}}
"#,
        port = lab.port
    );
    let d = DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    let fired = lab.next().await;
    assert_eq!(carried(&fired), alerts(&[("nightly-backup", "firing")]));
    let mut keys = vec![fired["idempotencyKey"].clone()];
    for _ in 0..2 {
        let reminder = lab.next().await;
        assert_eq!(carried(&reminder), alerts(&[("nightly-backup", "firing")]));
        keys.push(reminder["idempotencyKey"].clone());
    }
    keys.dedup();
    assert_eq!(
        keys.len(),
        3,
        "three notifications, not one delivered thrice"
    );
    assert_eq!(lab.runs(), 1, "the reminders came without new results");
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_notification_of_a_group_carries_all_its_firing_alerts() {
    let lab = Lab::start().await;
    lab.set("api", 503);
    lab.set("db", 503);
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
routes:
  - receiver: ops
    group_by: [service]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1s
defaults: {{every: 1h, service: orders, alert: {{repeat_interval: 0s, flap: {{window: 0s}}}}}}
checks:
  - {{name: orders-api, kind: http, url: "http://127.0.0.1:{port}/health/api"}}
  - {{name: orders-db, kind: http, url: "http://127.0.0.1:{port}/health/db"}}
"#,
        port = lab.port
    );
    let d = DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    let both = alerts(&[("orders-api", "firing"), ("orders-db", "firing")]);
    lab.next_where(5, |n| carried(n) == both).await;
    // Route repeats, checks' own reminders off: the unchanged group again, whole, without runs.
    for _ in 0..2 {
        assert_eq!(carried(&lab.next().await), both);
    }
    assert_eq!(lab.runs(), 2, "each check ran once");

    lab.set("api", 200);
    let started = d
        .http
        .post(d.url("/api/v1/runs"))
        .json(&serde_json::json!({"checks": ["orders-api"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let resolved = lab
        .next_where(50, |n| carried(n).iter().any(|(_, s)| s == "resolved"))
        .await;
    assert_eq!(
        carried(&resolved),
        alerts(&[("orders-api", "resolved"), ("orders-db", "firing")]),
        "the recovery comes with the rest of the group"
    );
    assert_eq!(resolved["status"], "firing");
    assert_eq!(
        carried(&lab.next().await),
        alerts(&[("orders-db", "firing")]),
        "a resolved alert is carried once"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
