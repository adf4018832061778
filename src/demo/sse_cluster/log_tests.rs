use super::*;

async fn fresh_log() -> (tempfile::TempDir, EventLog) {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("events.db")).await.unwrap();
    (dir, log)
}

#[test]
fn base36_writes_lower_case_digits() {
    assert_eq!(base36(0), "0");
    assert_eq!(base36(35), "z");
    assert_eq!(base36(36), "10");
    assert_eq!(base36(1_000_000), "lfls");
}

#[test]
fn topics_that_would_break_ids_or_streams_are_refused() {
    assert!(valid_topic("orders.eu-1_a"));
    for bad in [
        "",
        "a b",
        "a\nb",
        "a:b",
        "a/b",
        &"x".repeat(MAX_TOPIC_LEN + 1),
    ] {
        assert!(!valid_topic(bad), "{bad:?} accepted");
    }
}

#[tokio::test]
async fn appended_events_come_back_in_order_with_opaque_ids() {
    let (_dir, log) = fresh_log().await;
    let first = log.append("orders", "a").await.unwrap();
    let second = log.append("other", "b\nc").await.unwrap();
    assert!(first.starts_with("orders:") && second.starts_with("other:"));
    assert!(first.parse::<i64>().is_err());
    let events = log.after(0, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].id.as_str(), events[0].body.as_str()),
        (first.as_str(), "a")
    );
    assert_eq!(
        (events[1].topic.as_str(), events[1].body.as_str()),
        ("other", "b\nc")
    );
    assert!(events[0].pos < events[1].pos);
    assert_eq!(log.after(events[0].pos, 10).await.unwrap(), events[1..]);
    assert_eq!(log.head().await.unwrap(), events[1].pos);
    assert_eq!(log.last(1).await.unwrap(), events[1..]);
}

#[tokio::test]
async fn ids_resolve_on_every_handle_of_the_same_log_and_nowhere_else() {
    let (dir, log) = fresh_log().await;
    let id = log.append("orders", "x").await.unwrap();
    let pos = log.after(0, 1).await.unwrap()[0].pos;
    let other_node = EventLog::open(&dir.path().join("events.db")).await.unwrap();
    assert_eq!(other_node.position_of(&id), Some(pos));
    let (_other_dir, other_log) = fresh_log().await;
    assert_eq!(other_log.position_of(&id), None, "an id of another log");
    for junk in ["", "42", "orders:", "orders:zz", "orders:!.x"] {
        assert_eq!(log.position_of(junk), None, "{junk:?}");
    }
}
