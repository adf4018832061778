//! A firing alert pushed into a REAL Alertmanager (Debian `prometheus-alertmanager`) stays active
//! beyond the receiver's `resolve_timeout`, because the daemon pushes firing alerts again; once the
//! check recovers, the resolved push ends it.

#[path = "alertmanager_support/mod.rs"]
mod am;
mod common;
#[path = "daemon_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use support::{DaemonProcess, WAIT};

async fn service(status: Arc<AtomicU16>) -> u16 {
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(move || {
            let code = status.load(Ordering::SeqCst);
            async move { axum::http::StatusCode::from_u16(code).unwrap() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_stay_active_in_alertmanager_until_they_resolve() {
    let hook = am::fake::Fake::replying(200, "").await;
    let alertmanager = am::Alertmanager::start(&hook.url("/hook")).await;
    let status = Arc::new(AtomicU16::new(503));
    let port = service(status.clone()).await;
    let rules = format!(
        r#"
receivers:
  am: {{kind: alertmanager, url: "{}", resolve_timeout: 3s}}
routes:
  - {{receiver: am, group_by: [alertname], group_wait: 0s, group_interval: 1s}}
checks:
  - {{name: api-health, kind: http, url: "http://127.0.0.1:{port}/health", every: 1s, alert: {{flap: {{window: 0s}}}}}}
"#,
        alertmanager.url
    );
    let d = DaemonProcess::start(&[("r.yaml", &rules)], &["--repush-every", "1s"]).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    while alertmanager.listed(&http, "api-health").await.is_empty() {
        assert!(
            started.elapsed() < WAIT,
            "the alert never reached Alertmanager:\n{}",
            alertmanager.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Twice the resolve_timeout: without the re-push Alertmanager would have resolved it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let listed = alertmanager.listed(&http, "api-health").await;
    assert_eq!(listed.len(), 1, "still active:\n{}", alertmanager.log());
    assert_eq!(listed[0]["status"]["state"], "active");

    status.store(200, Ordering::SeqCst);
    let started = Instant::now();
    while !alertmanager.listed(&http, "api-health").await.is_empty() {
        assert!(started.elapsed() < WAIT, "the resolved push did not end it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
