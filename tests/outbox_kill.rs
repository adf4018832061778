//! The outbox under faults (issue #4 §4, §6): `patrol daemon` is killed with SIGKILL in the middle
//! of a delivery while its webhook receiver flaps; after a restart on the same store every alert
//! arrives, and the only duplicates are re-deliveries under the same idempotency key.
//!
//! The receiver goes through three modes, switched by the test:
//! 1. down — every request is answered 503, until all the firing notifications are queued;
//! 2. flapping — requests are accepted and refused in turn; the [`HOLD_AT`]-th is accepted but its
//!    answer is held back, and the daemon is killed while it waits for that answer;
//! 3. healthy — after the kill, everything is accepted.
//!
//! Real processes and servers on loopback, a real SQLite store.

mod common;
#[path = "daemon_support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use patrol::store::{OutboxEntry, OutboxStatus, Store};
use serde_json::Value;
use support::{DaemonProcess, WAIT};
use tokio::sync::Notify;

/// Checks, each with its own firing alert.
const CHECKS: usize = 10;
/// The request of the flapping phase whose answer never reaches the daemon (odd: accepted).
const HOLD_AT: usize = 5;

const DOWN: u8 = 0;
const FLAPPING: u8 = 1;
const HEALTHY: u8 = 2;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    /// `idempotencyKey` of the body.
    key: String,
    /// The `Idempotency-Key` header.
    header_key: Option<String>,
    body: Value,
    /// Whether the receiver took it (2xx, or held back but processed).
    accepted: bool,
    /// Whether it came from the restarted daemon.
    after_restart: bool,
}

/// A webhook receiver whose answers the test controls, recording every request.
#[derive(Default)]
struct Receiver {
    mode: AtomicU8,
    flapping_requests: AtomicUsize,
    restarted: AtomicBool,
    log: Mutex<Vec<Delivery>>,
    /// Signalled when the held request arrives.
    held: Notify,
    /// Lets the held request answer (the daemon is gone by then).
    release: Notify,
}

impl Receiver {
    /// (accepted, hold the answer back) for the next request, by mode.
    fn answer(&self) -> (bool, bool) {
        match self.mode.load(Ordering::SeqCst) {
            DOWN => (false, false),
            FLAPPING => {
                let n = self.flapping_requests.fetch_add(1, Ordering::SeqCst) + 1;
                (n % 2 == 1, n == HOLD_AT)
            }
            _ => (true, false),
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let (accepted, hold) = r.answer();
    r.log.lock().unwrap().push(Delivery {
        key: body["idempotencyKey"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        header_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
        accepted,
        after_restart: r.restarted.load(Ordering::SeqCst),
    });
    if hold {
        r.held.notify_one();
        let _ = tokio::time::timeout(WAIT, r.release.notified()).await;
    }
    if accepted {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A service whose `/health` answers with the status in the atomic, and the receiver on `/hook`.
async fn service_and_receiver() -> (u16, Arc<std::sync::atomic::AtomicU16>, Arc<Receiver>) {
    let status = Arc::new(std::sync::atomic::AtomicU16::new(200));
    let receiver = Arc::new(Receiver::default());
    let s = status.clone();
    let app = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(move || {
                let code = s.load(Ordering::SeqCst);
                async move { StatusCode::from_u16(code).unwrap() }
            }),
        )
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, status, receiver)
}

fn check_name(i: usize) -> String {
    format!("kill-{i:02}")
}

/// [`CHECKS`] checks on `/health`, each firing at its first bad result, notifying `ops` directly.
fn rules(port: u16) -> String {
    let checks: Vec<String> = (0..CHECKS)
        .map(|i| {
            support::http_check(
                &check_name(i),
                port,
                "/health",
                "every: 1s, notify: [ops], alert: {failure_threshold: 1, flap: {window: 0s}}",
            )
        })
        .collect();
    format!(
        "receivers:\n  ops: {{kind: webhook, url: \"http://127.0.0.1:{port}/hook\"}}\n{}",
        support::checks_yaml(&checks)
    )
}

async fn all_rows(store: &Store) -> Vec<OutboxEntry> {
    store.outbox(None, 10_000).await.unwrap()
}

/// The alert names a notification carries.
fn alertnames(body: &Value) -> Vec<String> {
    body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
        .collect()
}

/// How often each key was accepted.
fn accepted_counts(deliveries: &[Delivery]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in deliveries.iter().filter(|d| d.accepted) {
        *counts.entry(d.key.clone()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_delivery_sends_every_alert_after_restart_deduplicable_by_key() {
    let (port, status, receiver) = service_and_receiver().await;
    let d = DaemonProcess::start(&[("r.yaml", &rules(port))], &[]).await;
    let store = Store::open(&d.store_url()).await.unwrap();

    // Down receiver: every check fires and its notification stays pending in the outbox.
    status.store(503, Ordering::SeqCst);
    d.wait_until("every firing notification queued", |_| async {
        all_rows(&store).await.len() >= CHECKS
    })
    .await;

    // Flapping receiver; kill the daemon while it waits for the answer to an accepted delivery.
    receiver.mode.store(FLAPPING, Ordering::SeqCst);
    tokio::time::timeout(WAIT, receiver.held.notified())
        .await
        .expect("the flapping receiver got its held request");
    let held_key = receiver.deliveries().last().unwrap().key.clone();
    let (dir, _stderr) = d.kill9();
    receiver.release.notify_one();

    let before = all_rows(&store).await;
    assert_eq!(before.len(), CHECKS, "one firing notification per check");
    let pending: Vec<&OutboxEntry> = before
        .iter()
        .filter(|e| e.status == OutboxStatus::Pending)
        .collect();
    assert!(
        pending.iter().any(|e| e.idempotency_key == held_key),
        "the notification in flight at the kill is still pending"
    );
    assert!(
        pending
            .iter()
            .any(|e| e.attempts >= 1 && e.last_error.is_some()),
        "some pending notification was refused by the flapping receiver: {pending:?}"
    );

    // Restart on the same store, the service still failing, the receiver healthy.
    receiver.mode.store(HEALTHY, Ordering::SeqCst);
    receiver.restarted.store(true, Ordering::SeqCst);
    let d = DaemonProcess::start_in(dir, &[]).await;
    d.wait_until("the outbox drained", |_| async {
        store.pending_notifications().await.unwrap() == 0
    })
    .await;

    let rows = all_rows(&store).await;
    assert_eq!(
        rows.len(),
        CHECKS,
        "the restart queued nothing new: {rows:?}"
    );
    assert!(
        rows.iter().all(|e| e.status == OutboxStatus::Sent),
        "every notification sent, none dead or folded: {rows:?}"
    );
    let row_keys: BTreeSet<String> = rows.iter().map(|e| e.idempotency_key.clone()).collect();
    assert_eq!(
        row_keys.len(),
        CHECKS,
        "idempotency keys are unique per row"
    );

    let deliveries = receiver.deliveries();
    for got in &deliveries {
        assert!(row_keys.contains(&got.key), "unknown key {}", got.key);
        assert_eq!(got.header_key.as_deref(), Some(got.key.as_str()));
        assert_eq!(got.body["status"], "firing");
    }
    let counts = accepted_counts(&deliveries);
    let accepted_keys: BTreeSet<String> = counts.keys().cloned().collect();
    assert_eq!(accepted_keys, row_keys, "every notification arrived");

    let arrived: BTreeSet<String> = deliveries
        .iter()
        .filter(|d| d.accepted)
        .flat_map(|d| alertnames(&d.body))
        .collect();
    let expected: BTreeSet<String> = (0..CHECKS).map(check_name).collect();
    assert_eq!(arrived, expected, "every check's alert arrived");

    // At least once, deduplicable: the only key taken twice is the one whose answer the kill cut
    // off, and every repeat carries the same notification as its first delivery.
    let repeated: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(repeated, vec![&held_key], "{counts:?}");
    assert_eq!(counts[&held_key], 2);
    for key in &accepted_keys {
        let bodies: Vec<&Value> = deliveries
            .iter()
            .filter(|d| &d.key == key)
            .map(|d| &d.body)
            .collect();
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{key}: {bodies:?}");
    }
    assert!(
        deliveries
            .iter()
            .any(|d| d.after_restart && d.key == held_key),
        "the held notification was delivered again after the restart"
    );
    let accepted_before_kill: BTreeSet<&String> = deliveries
        .iter()
        .filter(|d| d.accepted && !d.after_restart && d.key != held_key)
        .map(|d| &d.key)
        .collect();
    assert!(
        deliveries
            .iter()
            .filter(|d| d.after_restart)
            .all(|d| !accepted_before_kill.contains(&d.key)),
        "a notification recorded as sent was not sent again"
    );
}
