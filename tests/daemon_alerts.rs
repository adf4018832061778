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
