//! The demo SSE cluster: real node processes (`patrol demo sse-node`) sharing one SQLite event
//! log, talked to over loopback. Resuming with `Last-Event-ID` on another node, the loss a small
//! buffer or a node ignoring `Last-Event-ID` really causes, a paused node's silent heartbeats and
//! a killed node restarted on the same port from its `start` argv.

mod common;
#[path = "sse_cluster_support/mod.rs"]
mod support;

use std::time::Duration;

use patrol::demo::sse_cluster::{ClusterOptions, NodeOptions, SseCluster};
use support::{Item, PROMPTLY, SseStream, await_state, bodies, http, publish, publish_all, signal};

async fn cluster(dir: &tempfile::TempDir, options: ClusterOptions) -> SseCluster {
    let options = ClusterOptions {
        binary: Some(common::patrol_bin()),
        ..options
    };
    SseCluster::start(dir.path(), 3, &options).await.unwrap()
}

fn with_node(index: usize, node: NodeOptions) -> ClusterOptions {
    let mut options = ClusterOptions::default();
    options.per_node.insert(index, node);
    options
}

/// Subscribes and waits for the opening `retry:` hint, so the stream is live before publishing.
async fn subscribed(http: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> SseStream {
    let mut stream = SseStream::open(http, url, last_event_id).await;
    assert_eq!(
        stream.next(PROMPTLY).await,
        Some(Item::Retry(1000)),
        "{url}"
    );
    stream
}

fn pairs(ids: &[String], bodies: &[String]) -> Vec<(String, String)> {
    ids.iter().cloned().zip(bodies.iter().cloned()).collect()
}

#[tokio::test]
async fn events_published_on_one_node_reach_subscribers_of_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir, ClusterOptions::default()).await;
    let http = http();
    let mut on_two = subscribed(&http, &cluster.subscribe_url(1), None).await;
    let mut on_three = subscribed(&http, &cluster.subscribe_url(2), None).await;
    let sent = bodies(1..=3);
    let ids = publish_all(&http, &cluster.publish_url(), &sent).await;
    for id in &ids {
        assert!(id.contains(':'), "{id:?} has no colon");
        assert!(id.parse::<i64>().is_err(), "{id:?} is an integer");
    }
    assert_eq!(on_two.events(3).await, pairs(&ids, &sent));
    assert_eq!(on_three.events(3).await, pairs(&ids, &sent));
}

#[tokio::test]
async fn a_multi_line_body_round_trips_and_bad_topics_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir, ClusterOptions::default()).await;
    let http = http();
    let mut stream = subscribed(&http, &cluster.subscribe_url(2), None).await;
    let id = publish(&http, &cluster.publish_url(), "line one\nline two").await;
    assert_eq!(
        stream.next_event(PROMPTLY).await,
        Some((id, "line one\nline two".to_string()))
    );
    let bad = format!("{}/pub/a%20b", cluster.node(0).url());
    let refused = http.post(&bad).body("x").send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("topic \"a b\""));
}

#[tokio::test]
async fn resuming_on_another_node_gets_exactly_the_missed_events() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir, ClusterOptions::default()).await;
    let http = http();
    let publish_url = cluster.publish_url();
    let mut first = subscribed(&http, &cluster.subscribe_url(1), None).await;
    let seen = bodies(1..=3);
    let seen_ids = publish_all(&http, &publish_url, &seen).await;
    assert_eq!(first.events(3).await, pairs(&seen_ids, &seen));
    drop(first);
    let missed = bodies(4..=7);
    let missed_ids = publish_all(&http, &publish_url, &missed).await;
    let mut resumed = subscribed(&http, &cluster.subscribe_url(2), Some(&seen_ids[2])).await;
    assert_eq!(resumed.events(4).await, pairs(&missed_ids, &missed));
    let live = publish(&http, &publish_url, "after").await;
    assert_eq!(
        resumed.next_event(PROMPTLY).await,
        Some((live, "after".to_string())),
        "nothing between the replay and the live event"
    );
}

#[tokio::test]
async fn a_buffer_smaller_than_the_gap_loses_exactly_the_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let small = NodeOptions {
        buffer: 5,
        ..NodeOptions::default()
    };
    let cluster = cluster(&dir, with_node(2, small)).await;
    let http = http();
    let publish_url = cluster.publish_url();
    let mut first = subscribed(&http, &cluster.subscribe_url(0), None).await;
    let last_seen = publish(&http, &publish_url, "1").await;
    assert_eq!(first.events(1).await[0].0, last_seen);
    drop(first);
    // Proof that the resuming node has taken in the whole gap before the client comes back.
    let mut watcher = subscribed(&http, &cluster.subscribe_url(2), None).await;
    let gap = bodies(2..=9);
    let gap_ids = publish_all(&http, &publish_url, &gap).await;
    watcher.events_until(&gap_ids[7]).await;
    let mut resumed = subscribed(&http, &cluster.subscribe_url(2), Some(&last_seen)).await;
    // 8 missed, 5 buffered: the 3 oldest are lost.
    assert_eq!(resumed.events(5).await, pairs(&gap_ids[3..], &gap[3..]));
    let live = publish(&http, &publish_url, "10").await;
    assert_eq!(
        resumed.next_event(PROMPTLY).await,
        Some((live, "10".into()))
    );
}

#[tokio::test]
async fn a_node_ignoring_last_event_id_loses_what_was_published_during_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = NodeOptions {
        ignore_last_event_id: true,
        ..NodeOptions::default()
    };
    let cluster = cluster(&dir, with_node(2, faulty)).await;
    assert!(
        cluster
            .node(2)
            .start
            .contains(&"--ignore-last-event-id".to_string())
    );
    let http = http();
    let publish_url = cluster.publish_url();
    let mut first = subscribed(&http, &cluster.subscribe_url(0), None).await;
    let last_seen = publish(&http, &publish_url, "1").await;
    assert_eq!(first.events(1).await[0].0, last_seen);
    drop(first);
    let mut watcher = subscribed(&http, &cluster.subscribe_url(2), None).await;
    let gap_ids = publish_all(&http, &publish_url, &bodies(2..=4)).await;
    watcher.events_until(&gap_ids[2]).await;
    let mut resumed = subscribed(&http, &cluster.subscribe_url(2), Some(&last_seen)).await;
    let live = publish(&http, &publish_url, "5").await;
    assert_eq!(
        resumed.next_event(PROMPTLY).await,
        Some((live, "5".into())),
        "the 3 events of the gap must be lost, the next live one delivered"
    );
}

#[tokio::test]
async fn a_paused_node_stops_its_heartbeats_and_resumes_on_sigcont() {
    let dir = tempfile::tempdir().unwrap();
    let heartbeat = Duration::from_millis(200);
    let mut options = ClusterOptions::default();
    options.node.heartbeat = heartbeat;
    let cluster = cluster(&dir, options).await;
    assert!(cluster.node(1).start.contains(&"200ms".to_string()));
    let http = http();
    let mut stream = subscribed(&http, &cluster.subscribe_url(1), None).await;
    for _ in 0..2 {
        assert_eq!(
            stream.next(PROMPTLY).await,
            Some(Item::Comment("ping".into()))
        );
    }
    let pid = cluster.node(1).pid().expect("node 2 wrote its pidfile");
    signal(pid, libc::SIGSTOP);
    await_state(pid, |s| s == Some('T'), "stopped").await;
    // What was in flight when it stopped is dropped; after that, not a byte.
    stream.silent_for(Duration::from_millis(20)).await;
    assert!(
        stream.silent_for(3 * heartbeat).await,
        "a paused node still sent bytes"
    );
    let health = http
        .get(&cluster.node(1).ready)
        .timeout(heartbeat)
        .send()
        .await;
    assert!(health.is_err(), "a paused node answered /healthz");
    signal(pid, libc::SIGCONT);
    assert_eq!(
        stream.next(PROMPTLY).await,
        Some(Item::Comment("ping".into()))
    );
    let id = publish(&http, &cluster.publish_url(), "after pause").await;
    assert_eq!(
        stream.next_event(PROMPTLY).await,
        Some((id, "after pause".into()))
    );
}

#[tokio::test]
async fn a_killed_node_restarts_on_the_same_port_from_its_start_argv() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir, ClusterOptions::default()).await;
    let node = cluster.node(1).clone();
    let http = http();
    let mut stream = subscribed(&http, &node.sub_url(cluster.topic()), None).await;
    let last_seen = publish(&http, &cluster.publish_url(), "1").await;
    assert_eq!(stream.events(1).await[0].0, last_seen);
    let old_pid = node.pid().expect("pidfile");
    signal(old_pid, libc::SIGKILL);
    await_state(old_pid, |s| matches!(s, None | Some('Z')), "dead").await;
    assert!(
        stream.ends_within(PROMPTLY).await,
        "the stream outlived its node"
    );
    assert!(
        http.get(&node.ready).send().await.is_err(),
        "a killed node answered"
    );
    let missed = publish(&http, &cluster.publish_url(), "2").await;

    let mut restarted = std::process::Command::new(&node.start[0])
        .args(&node.start[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut restarted);
    await_ready(&http, &node.ready).await;
    let new_pid = node.pid().expect("the restarted node wrote its pidfile");
    assert_eq!(new_pid, guard.0.id() as i32);
    assert_ne!(new_pid, old_pid);
    // The restarted node took the newest events of the shared log into its buffer.
    let mut resumed = subscribed(&http, &node.sub_url(cluster.topic()), Some(&last_seen)).await;
    assert_eq!(resumed.events(1).await, vec![(missed, "2".to_string())]);
}

/// Polls the ready URL like a drill does after a restart: bounded, short intervals.
async fn await_ready(http: &reqwest::Client, url: &str) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let ok = http.get(url).timeout(Duration::from_secs(1)).send().await;
        if ok.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_refuses_a_zero_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::patrol_bin())
        .args([
            "demo",
            "sse-node",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat",
            "0s",
        ])
        .arg("--log")
        .arg(dir.path().join("events.db"))
        .arg("--pidfile")
        .arg(dir.path().join("node.pid"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--heartbeat"));
}

#[test]
fn the_node_command_is_hidden_from_demo_help() {
    let out = std::process::Command::new(common::patrol_bin())
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sse-node"));
}

#[tokio::test]
async fn the_cluster_restarts_a_killed_node_and_reaps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = cluster(&dir, ClusterOptions::default()).await;
    let http = http();
    let old_pid = cluster.node(0).pid().expect("pidfile");
    signal(old_pid, libc::SIGKILL);
    await_state(old_pid, |s| matches!(s, None | Some('Z')), "dead").await;
    cluster.restart(0).await.unwrap();
    assert_eq!(
        support::process_state(old_pid),
        None,
        "the killed node was reaped"
    );
    let new_pid = cluster.node(0).pid().expect("pidfile");
    assert_ne!(new_pid, old_pid);
    let mut stream = subscribed(&http, &cluster.subscribe_url(2), None).await;
    let id = publish(&http, &cluster.publish_url(), "through the restarted node").await;
    assert_eq!(stream.events(1).await[0].0, id);
    drop(cluster);
    await_state(new_pid, |s| matches!(s, None | Some('Z')), "killed on drop").await;
}
