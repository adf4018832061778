use super::*;

fn event(pos: i64, topic: &str) -> LoggedEvent {
    LoggedEvent {
        pos,
        topic: topic.into(),
        id: format!("{topic}:{pos}.t"),
        body: format!("body {pos}"),
    }
}

fn positions(events: &[Arc<LoggedEvent>]) -> Vec<i64> {
    events.iter().map(|e| e.pos).collect()
}

#[test]
fn the_buffer_keeps_only_the_newest_events() {
    let hub = Hub::new(3, 0, Vec::new());
    hub.push((1..=5).map(|p| event(p, "t")).collect());
    assert_eq!(hub.buffered(), 3);
    assert_eq!(hub.newest(), 5);
    assert_eq!(positions(&hub.buffered_after("t", 0)), [3, 4, 5]);
    assert_eq!(positions(&hub.buffered_after("t", 3)), [4, 5]);
}

#[test]
fn a_preloaded_hub_knows_the_log_head_and_its_newest_events() {
    let hub = Hub::new(2, 9, (7..=9).map(|p| event(p, "t")).collect());
    assert_eq!(hub.newest(), 9);
    assert_eq!(positions(&hub.buffered_after("t", 0)), [8, 9]);
}

#[test]
fn replay_is_per_topic_and_after_the_given_position() {
    let hub = Hub::new(10, 0, Vec::new());
    hub.push(vec![
        event(1, "a"),
        event(2, "b"),
        event(3, "a"),
        event(4, "a"),
    ]);
    let sub = hub.subscribe("a", Resume::After(1));
    assert_eq!(positions(&sub.replay), [3, 4]);
    assert_eq!(sub.cursor, 4);
    let now = hub.subscribe("a", Resume::Now);
    assert!(now.replay.is_empty());
    assert_eq!(now.cursor, 4);
}

#[test]
fn a_client_ahead_of_this_node_gets_nothing_twice() {
    let hub = Hub::new(10, 0, vec![event(1, "a")]);
    let sub = hub.subscribe("a", Resume::After(3));
    assert!(sub.replay.is_empty());
    assert_eq!(sub.cursor, 3, "live events up to 3 must be skipped");
}

#[test]
fn live_subscribers_get_events_pushed_after_they_subscribed() {
    let hub = Hub::new(10, 0, vec![event(1, "a")]);
    let mut sub = hub.subscribe("a", Resume::Now);
    hub.push(vec![event(2, "a")]);
    assert_eq!(sub.live.try_recv().unwrap().pos, 2);
    assert!(sub.live.try_recv().is_err());
}

#[test]
fn a_zero_buffer_replays_nothing() {
    let hub = Hub::new(0, 0, vec![event(1, "a")]);
    hub.push(vec![event(2, "a")]);
    assert_eq!(hub.buffered(), 0);
    assert_eq!(hub.newest(), 2);
    assert!(hub.subscribe("a", Resume::After(0)).replay.is_empty());
}
