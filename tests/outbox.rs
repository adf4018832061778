//! The durable outbox against real backends and a real HTTP receiver: alert states and their
//! notifications commit together, the sender retries with backoff, dead-letters permanent
//! refusals, folds what a rate budget cannot carry into a digest, and a new sender delivers what
//! a dropped one left pending. Every test runs on a fresh SQLite file and a fresh PostgreSQL
//! database; the sender's clock is driven by the test (`tick(now)`) except where `run` is tested.

mod common;

#[path = "alertmanager_support/fake.rs"]
#[allow(dead_code)]
mod fake;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fake::{Captured, Fake, Reply};
use patrol::alert::notifier::webhook::Webhook;
use patrol::alert::outbox::{
    DeliveryResult, OutboxObserver, OutboxSender, RateLimit, SenderConfig,
};
use patrol::alert::{Alert, AlertStatus, Notification, ReceiverSpec};
use patrol::store::{NewNotification, OutboxStatus, Store};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use common::on_both_backends;

on_both_backends!(
    failed_save_leaves_neither_state_nor_notification,
    a_notification_is_queued_once_per_idempotency_key,
    retries_back_off_until_the_receiver_accepts,
    permanent_refusals_are_dead_lettered_with_the_reason,
    an_exhausted_budget_folds_the_excess_into_one_digest,
    a_new_sender_delivers_what_a_dropped_one_left_pending,
    silences_are_added_listed_and_expired,
    notifications_of_one_group_due_together_go_out_as_one,
    retention_prunes_finished_notifications_never_pending_ones,
    a_multi_message_delivery_resumes_after_the_parts_already_delivered,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn secs(n: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((n * 1000.0) as i64)
}

fn alert(fingerprint: &str) -> Alert {
    Alert {
        status: AlertStatus::Firing,
        labels: BTreeMap::from([
            ("alertname".into(), "disk-free".into()),
            ("series".into(), fingerprint.into()),
        ]),
        annotations: BTreeMap::from([("summary".into(), format!("disk low on {fingerprint}"))]),
        starts_at: t0(),
        ends_at: None,
        generator_url: "https://patrol.example/checks/disk-free".into(),
        fingerprint: fingerprint.into(),
    }
}

/// A notification in a group of its own (notifications of one group that are due together are
/// folded into one by the sender, which the grouping tests cover).
fn notification(receiver: &str, key: &str, fingerprint: &str) -> NewNotification {
    let group_key = format!("{{}}:{{alertname=\"disk-free\",fingerprint=\"{fingerprint}\"}}");
    NewNotification {
        receiver: receiver.into(),
        group_key: group_key.clone(),
        idempotency_key: key.into(),
        payload: Notification {
            receiver: receiver.into(),
            group_key,
            status: AlertStatus::Firing,
            group_labels: BTreeMap::from([("alertname".into(), "disk-free".into())]),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            alerts: vec![alert(fingerprint)],
            external_url: "https://patrol.example".into(),
            idempotency_key: "set-by-the-store".into(),
        },
        not_before: None,
    }
}

fn receivers(url: String) -> HashMap<String, ReceiverSpec> {
    let hook = Webhook {
        url,
        headers: BTreeMap::new(),
        template: None,
        content_type: None,
        max_alerts: 0,
    };
    HashMap::from([("hook".to_string(), ReceiverSpec::Webhook(hook))])
}

fn sender(store: &Store, fake: &Fake, config: SenderConfig) -> OutboxSender {
    OutboxSender::new(
        store.clone(),
        receivers(fake.url("/hook")),
        reqwest::Client::new(),
        config,
    )
}

fn config() -> SenderConfig {
    SenderConfig {
        send_timeout: Duration::from_secs(5),
        ..SenderConfig::default()
    }
}

fn keys(requests: &[Captured]) -> Vec<String> {
    requests
        .iter()
        .map(|c| c.header("idempotency-key").unwrap_or("").to_string())
        .collect()
}

/// A notification without a receiver breaks the table's CHECK after the alert states were
/// written: the whole save must be rolled back.
async fn failed_save_leaves_neither_state_nor_notification(url: &str) {
    let store = Store::open(url).await.unwrap();
    let pending = json!({"phase": "pending", "bad_streak": 1});
    let queued = store
        .save_alert_changes(
            &[("fp-a", &pending)],
            &[notification("hook", "k1", "fp-a")],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(queued, 1);

    let (firing, new) = (json!({"phase": "firing"}), json!({"phase": "pending"}));
    let err = store
        .save_alert_changes(
            &[("fp-a", &firing), ("fp-b", &new)],
            &[
                notification("hook", "k2", "fp-a"),
                notification("", "k3", "fp-b"),
            ],
            t0() + secs(60.0),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("saving alert changes"), "{err}");

    assert_eq!(
        store.load_alerts().await.unwrap(),
        [("fp-a".to_string(), pending)],
        "no state change survives"
    );
    let outbox = store.outbox(None, 10).await.unwrap();
    let stored: Vec<&str> = outbox.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(stored, ["k1"], "no notification of the failed save");
}

async fn a_notification_is_queued_once_per_idempotency_key(url: &str) {
    let store = Store::open(url).await.unwrap();
    let state = json!({"phase": "firing"});
    let n = notification("hook", "k1", "fp-a");
    let first = store
        .save_alert_changes(&[("fp-a", &state)], std::slice::from_ref(&n), t0())
        .await
        .unwrap();
    let again = store
        .save_alert_changes(&[("fp-a", &state)], &[n], t0() + secs(1.0))
        .await
        .unwrap();
    assert_eq!((first, again), (1, 0));

    let outbox = store.outbox(None, 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    let e = &outbox[0];
    assert_eq!(e.status, OutboxStatus::Pending);
    assert_eq!(
        e.payload.idempotency_key, "k1",
        "the payload carries the row's key"
    );
    assert_eq!(
        (e.attempts, e.created_at, e.next_attempt_at),
        (0, t0(), t0())
    );
    assert_eq!(store.pending_notifications().await.unwrap(), 1);
    assert_eq!(store.due_notifications(t0(), 10).await.unwrap().len(), 1);
    assert!(
        store
            .due_notifications(t0() - secs(1.0), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retries_back_off_until_the_receiver_accepts(url: &str) {
    let store = Store::open(url).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let fake = Fake::start(move |_| match counter.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Reply::With(503, "upstream unavailable".into()),
        _ => Reply::With(200, "".into()),
    })
    .await;
    store
        .save_alert_changes(&[], &[notification("hook", "k1", "fp-a")], t0())
        .await
        .unwrap();
    let mut sender = sender(&store, &fake, config());

    let report = sender.tick(t0()).await.unwrap();
    assert_eq!((report.sent, report.retried, report.pending), (0, 1, 1));
    let e = &store.outbox(None, 1).await.unwrap()[0];
    assert_eq!((e.attempts, e.status), (1, OutboxStatus::Pending));
    assert!(e.last_error.as_deref().unwrap().contains("503"), "{e:?}");
    let first_wait = e.next_attempt_at - t0();
    assert!(
        first_wait >= secs(0.8) && first_wait <= secs(1.0),
        "{first_wait}"
    );

    let report = sender.tick(t0() + secs(0.5)).await.unwrap();
    assert_eq!(report.retried, 0, "not due yet");
    assert_eq!(fake.requests().len(), 1);

    let second_try = t0() + secs(1.0);
    sender.tick(second_try).await.unwrap();
    let e = &store.outbox(None, 1).await.unwrap()[0];
    let second_wait = e.next_attempt_at - second_try;
    assert!(
        second_wait >= secs(1.6) && second_wait <= secs(2.0),
        "doubles: {second_wait}"
    );

    let report = sender.tick(t0() + secs(4.0)).await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 0));
    let e = &store.outbox(None, 1).await.unwrap()[0];
    assert_eq!(
        (e.status, e.attempts, e.sent_at),
        (OutboxStatus::Sent, 3, Some(t0() + secs(4.0)))
    );
    assert_eq!(keys(&fake.requests()), ["k1", "k1", "k1"]);
    assert_eq!(
        fake.requests()[2].json()["alerts"][0]["fingerprint"],
        "fp-a"
    );
}

async fn permanent_refusals_are_dead_lettered_with_the_reason(url: &str) {
    let store = Store::open(url).await.unwrap();
    let fake = Fake::replying(400, r#"{"error":"invalid token"}"#).await;
    store
        .save_alert_changes(
            &[],
            &[
                notification("hook", "k1", "fp-a"),
                notification("gone", "k2", "fp-b"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let mut sender = sender(&store, &fake, config());

    let report = sender.tick(t0()).await.unwrap();
    assert_eq!((report.dead, report.pending), (2, 0));
    let dead = store.outbox(Some(OutboxStatus::Dead), 10).await.unwrap();
    let reasons: HashMap<&str, &str> = dead
        .iter()
        .map(|e| (e.idempotency_key.as_str(), e.last_error.as_deref().unwrap()))
        .collect();
    assert!(
        reasons["k1"].contains("400") && reasons["k1"].contains("invalid token"),
        "{reasons:?}"
    );
    assert_eq!(reasons["k2"], "receiver 'gone' is not configured");

    sender.tick(t0() + secs(3600.0)).await.unwrap();
    assert_eq!(
        fake.requests().len(),
        1,
        "a dead notification is never retried"
    );
}

async fn an_exhausted_budget_folds_the_excess_into_one_digest(url: &str) {
    let store = Store::open(url).await.unwrap();
    let fake = Fake::replying(200, "").await;
    let first: Vec<NewNotification> = (1..=5)
        .map(|i| notification("hook", &format!("k{i}"), &format!("fp-{i}")))
        .collect();
    store.save_alert_changes(&[], &first, t0()).await.unwrap();
    let two_a_minute = RateLimit {
        per_minute: Some(2),
        per_second: None,
    };
    let mut sender = sender(
        &store,
        &fake,
        SenderConfig {
            rate_limits: HashMap::from([("hook".to_string(), two_a_minute)]),
            ..config()
        },
    );

    let report = sender.tick(t0()).await.unwrap();
    assert_eq!((report.sent, report.folded, report.pending), (2, 4, 0));
    let got = fake.requests();
    assert_eq!(got.len(), 2, "one notification and one digest");
    assert_eq!(keys(&got)[0], "k1");
    assert!(keys(&got)[1].starts_with("digest-"), "{:?}", keys(&got));
    let digest_alerts: Vec<String> = got[1].json()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digest_alerts, ["fp-2", "fp-3", "fp-4", "fp-5"]);
    let folded = store.outbox(Some(OutboxStatus::Folded), 10).await.unwrap();
    let digest = &store.outbox(Some(OutboxStatus::Sent), 10).await.unwrap()[0];
    assert_eq!(folded.len(), 4);
    assert!(folded.iter().all(|e| e.folded_into == Some(digest.id)));

    // No token left: three more are folded into a digest that waits for the next token (30 s).
    let later: Vec<NewNotification> = (6..=8)
        .map(|i| notification("hook", &format!("k{i}"), &format!("fp-{i}")))
        .collect();
    let at = t0() + secs(1.0);
    store.save_alert_changes(&[], &later, at).await.unwrap();
    let report = sender.tick(at).await.unwrap();
    assert_eq!((report.sent, report.folded, report.pending), (0, 3, 1));
    assert_eq!(sender.tick(t0() + secs(20.0)).await.unwrap().sent, 0);
    let report = sender.tick(t0() + secs(31.0)).await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 0));

    let got = fake.requests();
    assert_eq!(got.len(), 3);
    let delivered: usize = got
        .iter()
        .map(|c| c.json()["alerts"].as_array().unwrap().len())
        .sum();
    assert_eq!(delivered, 8, "every alert arrived, none dropped");
}

/// Records the sender's metrics hooks and reports each pending count on a channel.
struct Recorder {
    delivered: std::sync::Mutex<Vec<(String, DeliveryResult)>>,
    pending: mpsc::UnboundedSender<u64>,
}

impl OutboxObserver for Recorder {
    fn delivered(&self, receiver: &str, result: DeliveryResult) {
        self.delivered
            .lock()
            .unwrap()
            .push((receiver.to_string(), result));
    }

    fn pending(&self, count: u64) {
        let _ = self.pending.send(count);
    }
}

/// A sender dropped while its receiver holds the first request open (as a process killed during
/// delivery): both rows stay pending, and a sender on a newly opened store delivers them, the
/// interrupted one a second time under the same idempotency key.
async fn a_new_sender_delivers_what_a_dropped_one_left_pending(url: &str) {
    let hang = Arc::new(AtomicBool::new(true));
    let hanging = hang.clone();
    let fake = Fake::start(move |_| {
        if hanging.load(Ordering::SeqCst) {
            Reply::Hang
        } else {
            Reply::With(200, "".into())
        }
    })
    .await;
    let first_store = Store::open(url).await.unwrap();
    let queued_at = Utc::now() - secs(1.0);
    let notifications = [
        notification("hook", "k1", "fp-a"),
        notification("hook", "k2", "fp-b"),
    ];
    first_store
        .save_alert_changes(&[], &notifications, queued_at)
        .await
        .unwrap();
    let first = tokio::spawn(sender(&first_store, &fake, config()).run(CancellationToken::new()));
    let in_flight = fake
        .next_matching(Duration::from_secs(10), |_| true)
        .await
        .expect("the first sender starts a delivery");
    assert_eq!(in_flight.header("idempotency-key"), Some("k1"));
    first.abort();
    let _ = first.await;
    hang.store(false, Ordering::SeqCst);
    let left = first_store.outbox(None, 10).await.unwrap();
    assert!(
        left.iter()
            .all(|e| e.status == OutboxStatus::Pending && e.attempts == 0),
        "{left:?}"
    );

    let store = Store::open(url).await.unwrap();
    let (tx, mut pending) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        delivered: Default::default(),
        pending: tx,
    });
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(
        sender(&store, &fake, config())
            .with_observer(recorder.clone())
            .run(shutdown.clone()),
    );
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(n) = pending.recv().await {
            if n == 0 {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(drained, Ok(true), "the outbox drains");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the sender stops when cancelled")
        .unwrap();

    assert_eq!(keys(&fake.requests()), ["k1", "k1", "k2"]);
    let sent = store.outbox(Some(OutboxStatus::Sent), 10).await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        *recorder.delivered.lock().unwrap(),
        [
            ("hook".to_string(), DeliveryResult::Sent),
            ("hook".to_string(), DeliveryResult::Sent)
        ]
    );
}

async fn silences_are_added_listed_and_expired(url: &str) {
    use patrol::store::NewSilence;
    let store = Store::open(url).await.unwrap();
    let silence = |start: f64, end: f64, comment: &str| NewSilence {
        matchers: json!([{"name": "service", "value": "orders", "op": "="}]),
        starts_at: t0() + secs(start),
        ends_at: t0() + secs(end),
        created_by: "ops@example".into(),
        comment: comment.into(),
    };
    let now_active = store
        .add_silence(&silence(0.0, 3600.0, "deploy"))
        .await
        .unwrap();
    let future = store
        .add_silence(&silence(7200.0, 9000.0, "maintenance"))
        .await
        .unwrap();
    let past = store
        .add_silence(&silence(-7200.0, -3600.0, "old"))
        .await
        .unwrap();
    assert_eq!(
        store.list_silences(None).await.unwrap(),
        [past.clone(), now_active.clone(), future.clone()]
    );
    let now = t0() + secs(60.0);
    assert_eq!(
        store.list_silences(Some(now)).await.unwrap(),
        [now_active.clone(), future.clone()]
    );

    assert!(store.expire_silence(&now_active.id, now).await.unwrap());
    assert!(store.expire_silence(&future.id, now).await.unwrap());
    assert!(
        !store.expire_silence(&past.id, now).await.unwrap(),
        "already ended"
    );
    assert!(!store.expire_silence("no-such-id", now).await.unwrap());
    assert!(store.list_silences(Some(now)).await.unwrap().is_empty());
    let all = store.list_silences(None).await.unwrap();
    let expired_future = all.iter().find(|s| s.id == future.id).unwrap();
    assert_eq!(
        (expired_future.starts_at, expired_future.ends_at),
        (now, now)
    );
}

async fn notifications_of_one_group_due_together_go_out_as_one(url: &str) {
    let store = Store::open(url).await.unwrap();
    let fake = Fake::replying(200, "").await;
    let same_group: Vec<NewNotification> = (1..=3)
        .map(|i| NewNotification {
            group_key: "{}:{service=\"orders\"}".into(),
            ..notification("hook", &format!("g{i}"), &format!("fp-{i}"))
        })
        .collect();
    store
        .save_alert_changes(&[], &same_group, t0())
        .await
        .unwrap();
    let mut sender = sender(&store, &fake, config());
    let report = sender.tick(t0()).await.unwrap();
    assert_eq!((report.sent, report.folded, report.pending), (1, 3, 0));
    let got = fake.requests();
    assert_eq!(got.len(), 1, "one message for the group");
    let body = got[0].json();
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3, "carrying the three alerts");
}

async fn retention_prunes_finished_notifications_never_pending_ones(url: &str) {
    let store = Store::open(url).await.unwrap();
    let fake = Fake::replying(200, "").await;
    let sent = [
        notification("hook", "old-1", "fp-1"),
        notification("hook", "old-2", "fp-2"),
    ];
    store.save_alert_changes(&[], &sent, t0()).await.unwrap();
    sender(&store, &fake, config()).tick(t0()).await.unwrap();
    let waiting = [NewNotification {
        not_before: Some(t0() + secs(3600.0)),
        ..notification("hook", "later", "fp-3")
    }];
    store.save_alert_changes(&[], &waiting, t0()).await.unwrap();
    let counts = store.prune(t0() + secs(7200.0)).await.unwrap();
    assert_eq!(counts.notifications, 2, "the two sent rows");
    let left = store.outbox(None, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].idempotency_key.as_str(), left[0].status),
        ("later", OutboxStatus::Pending)
    );
}

/// WeCom sends its @-mentions as a text message after the Markdown one. The fake accepts the
/// Markdown and refuses the first text with errcode 45009 (rate limit, retryable): the retry — by
/// a new sender, so the progress must come from the store — sends only the text.
async fn a_multi_message_delivery_resumes_after_the_parts_already_delivered(url: &str) {
    let store = Store::open(url).await.unwrap();
    let refused_once = Arc::new(AtomicBool::new(false));
    let refused = refused_once.clone();
    let fake = Fake::start(move |c| {
        let is_text = c.json()["msgtype"] == "text";
        let code = if is_text && !refused.swap(true, Ordering::SeqCst) {
            json!({"errcode": 45009, "errmsg": "api freq out of limit"})
        } else {
            json!({"errcode": 0, "errmsg": "ok"})
        };
        Reply::With(200, code.to_string())
    })
    .await;
    let wecom = patrol::alert::notifier::wecom::WeCom {
        key: None,
        url: Some(fake.url("/cgi-bin/webhook/send?key=robot")),
        mentioned_mobile_list: vec!["13800000000".into()],
        template: None,
    };
    let receivers = HashMap::from([("wx".to_string(), ReceiverSpec::WeCom(wecom))]);
    let new_sender = || {
        OutboxSender::new(
            store.clone(),
            receivers.clone(),
            reqwest::Client::new(),
            config(),
        )
    };
    store
        .save_alert_changes(&[], &[notification("wx", "k1", "fp-a")], t0())
        .await
        .unwrap();

    let report = new_sender().tick(t0()).await.unwrap();
    assert_eq!((report.sent, report.retried), (0, 1));
    let e = &store.outbox(None, 1).await.unwrap()[0];
    assert_eq!(
        (e.status, e.parts_done),
        (OutboxStatus::Pending, 1),
        "{e:?}"
    );
    assert!(e.last_error.as_deref().unwrap().contains("45009"), "{e:?}");

    let report = new_sender().tick(t0() + secs(5.0)).await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 0));
    let kinds: Vec<String> = fake
        .requests()
        .iter()
        .map(|c| c.json()["msgtype"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["markdown", "text", "text"],
        "one Markdown; the text refused once, then accepted"
    );
    let e = &store.outbox(None, 1).await.unwrap()[0];
    assert_eq!((e.status, e.attempts), (OutboxStatus::Sent, 2));
}
