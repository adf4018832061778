//! The stream's cursor against a real SQLite store and a real event bus: backlog then live,
//! announcements out of id order, a lagging subscription, a fresh stream.

use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::store::NewEvent;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    (dir, Store::open(&url).await.unwrap())
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            kind: "result".into(),
            at: Utc::now(),
            data: serde_json::json!({ "n": i }),
        })
        .collect()
}

/// The ids the cursor yields until it has nothing more within a short wait.
async fn drain(cursor: &mut Cursor) -> Vec<i64> {
    let mut ids = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), cursor.next()).await {
        ids.push(e.id);
    }
    ids
}

fn ids(stored: &[StoredEvent]) -> Vec<i64> {
    stored.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn backlog_then_live_each_once() {
    let (_dir, store) = store().await;
    let bus = EventBus::new();
    let before = store.append_events(&events(5)).await.unwrap();
    let mut cursor = Cursor::new(store.clone(), &bus, Some(before[1].id));
    // Published after the subscription: both in the backlog and on the bus, sent once.
    let during = bus.publish(&store, &events(2)).await.unwrap();
    let mut expected = ids(&before[2..]);
    expected.extend(ids(&during));
    assert_eq!(drain(&mut cursor).await, expected);
    let after = bus.publish(&store, &events(1)).await.unwrap();
    assert_eq!(drain(&mut cursor).await, ids(&after));
}

#[tokio::test]
async fn announcements_out_of_order_are_caught_up_from_the_store() {
    let (_dir, store) = store().await;
    let bus = EventBus::new();
    let mut cursor = Cursor::new(store.clone(), &bus, Some(0));
    assert_eq!(drain(&mut cursor).await, Vec::<i64>::new());
    let first = store.append_events(&events(2)).await.unwrap();
    let second = store.append_events(&events(1)).await.unwrap();
    // The later event is announced first; the earlier ones come from the store, in order.
    bus.announce(&second);
    let mut expected = ids(&first);
    expected.extend(ids(&second));
    assert_eq!(drain(&mut cursor).await, expected);
    bus.announce(&first);
    assert_eq!(
        drain(&mut cursor).await,
        Vec::<i64>::new(),
        "late announcements are not repeated"
    );
}

#[tokio::test]
async fn a_lagging_subscription_catches_up_from_the_store() {
    let (_dir, store) = store().await;
    let bus = EventBus::new();
    let mut cursor = Cursor::new(store.clone(), &bus, Some(0));
    // More than the bus buffers while nobody reads: the receiver lags.
    let published = bus.publish(&store, &events(5000)).await.unwrap();
    let got = drain(&mut cursor).await;
    assert_eq!(got.len(), published.len());
    assert_eq!(got, ids(&published));
    let more = bus.publish(&store, &events(1)).await.unwrap();
    assert_eq!(drain(&mut cursor).await, ids(&more));
}

#[tokio::test]
async fn a_fresh_stream_starts_with_the_first_live_event() {
    let (_dir, store) = store().await;
    let bus = EventBus::new();
    store.append_events(&events(3)).await.unwrap();
    let mut cursor = Cursor::new(store.clone(), &bus, None);
    let live = bus.publish(&store, &events(2)).await.unwrap();
    assert_eq!(drain(&mut cursor).await, ids(&live));
}

#[test]
fn event_ids_are_non_negative_integers() {
    assert_eq!(parse_event_id(" 42 ").unwrap(), 42);
    assert!(parse_event_id("-1").is_err());
    assert!(parse_event_id("abc").is_err());
}
