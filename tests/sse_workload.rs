//! The SSE workload end to end against a real SSE server on loopback (axum, opaque ids, bounded
//! replay buffer, heartbeats): resuming with `Last-Event-ID` loses nothing; real loss,
//! duplicates and failed publishes are counted exactly; 5,000 subscribers are held.

#[path = "sse_workload_support/server.rs"]
mod server;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use patrol::chaos::workload::{
    PublishSpec, ReconnectSpec, SseSwarm, SseWorkloadReport, SseWorkloadSpec, SwarmProgress,
};
use server::{PublishFault, SseServer};

fn client() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::new()
}

fn spec(server: &SseServer, subscribers: u32, rate: &str) -> SseWorkloadSpec {
    SseWorkloadSpec {
        url: server.sub_url(),
        subscribers,
        connect_rate: None,
        headers: BTreeMap::new(),
        publish: Some(PublishSpec {
            url: server.pub_url(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            rate: rate.into(),
            body: r#"{"seq": {{seq}}, "ts": {{ts}}}"#.into(),
            timeout: Some(Duration::from_secs(30)),
        }),
        sequence: "json:$.seq".into(),
        reconnect: ReconnectSpec {
            // Far longer than any test waits: a reconnect within it proves `retry:` was honoured.
            initial: Duration::from_secs(20),
            max: Duration::from_secs(20),
            jitter: Duration::ZERO,
            open_timeout: Duration::from_secs(10),
        },
    }
}

/// Polls the swarm's progress until `done` holds; panics after `limit` with the last reading.
async fn wait_until(
    swarm: &SseSwarm,
    limit: Duration,
    what: &str,
    done: impl Fn(&SwarmProgress) -> bool,
) -> SwarmProgress {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let p = swarm.progress();
        if done(&p) {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {limit:?} for {what}; progress: {p:?}"
        );
        if std::env::var_os("SSE_TEST_TRACE").is_some() {
            eprintln!("{:?} {p:?}", tokio::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_connected(swarm: &SseSwarm, n: u32) -> SwarmProgress {
    wait_until(
        swarm,
        Duration::from_secs(30),
        "every subscriber connected",
        |p| p.ever_connected == n && p.connected == n,
    )
    .await
}

/// Waits until `more` seqs started after `from`.
async fn publishes_after(swarm: &SseSwarm, from: u64, more: u64) -> SwarmProgress {
    wait_until(swarm, Duration::from_secs(30), "more publishes", |p| {
        p.last_seq_started >= from + more && p.published + p.publish_failed >= from + more
    })
    .await
}

fn assert_server_lost_nothing_itself(server: &SseServer) {
    assert_eq!(
        server.counters().lagged.load(Ordering::SeqCst),
        0,
        "the test server lagged"
    );
}

fn show(r: &SseWorkloadReport) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_resume_after_every_stream_drops_and_lose_nothing() {
    let server = SseServer::start(10_000, Duration::from_millis(200), 100).await;
    let n = 50;
    let swarm = SseSwarm::start(&spec(&server, n, "100/s"), client()).unwrap();
    let p = all_connected(&swarm, n).await;
    let p = publishes_after(&swarm, p.last_seq_started, 20).await;
    for round in 1..=2u64 {
        server.drop_all_streams();
        wait_until(&swarm, Duration::from_secs(15), "reconnected", |q| {
            q.reconnects == round * u64::from(n) && q.connected == n
        })
        .await;
        publishes_after(&swarm, p.last_seq_started, 20 * round + 20).await;
    }
    assert_eq!(
        swarm.progress().lost_so_far,
        0,
        "nothing looks lost on the way"
    );
    let r = swarm.finish(Duration::from_secs(10)).await;
    assert_eq!(r.lost, 0, "{}", show(&r));
    assert!(r.drained, "{}", show(&r));
    assert_eq!(r.subscribers_with_loss, 0);
    assert_eq!((r.connected, r.never_connected), (n, 0));
    assert_eq!((r.duplicates, r.out_of_order), (0, 0), "{}", show(&r));
    assert_eq!(r.reconnects, 2 * u64::from(n));
    assert_eq!(
        r.reconnect_ms.count,
        2 * u64::from(n),
        "every reconnect completed"
    );
    // The server's `retry: 100` won over the 20 s initial wait.
    assert!(r.reconnect_ms.max < 5_000.0, "{:?}", r.reconnect_ms);
    // The report's histogram holds the same reconnections, none in the > 10 s overflow.
    let buckets = &r.reconnect_distribution;
    assert_eq!(
        buckets.iter().map(|b| b.count).sum::<u64>(),
        r.reconnect_ms.count
    );
    assert_eq!(buckets.last().map(|b| (b.le_ms, b.count)), Some((None, 0)));
    assert_eq!(r.publish_failed, 0);
    assert!(r.published >= 60, "{}", show(&r));
    assert!(r.expected >= u64::from(n) * 60 && r.received >= r.expected);
    assert!(r.comments > 0, "heartbeats were counted");
    assert!(r.latency_ms.count > 0 && r.latency_ms.p99 > 0.0);
    assert!(
        r.max_gap_ms > 0.0 && r.max_gap_ms < 5_000.0,
        "{}",
        r.max_gap_ms
    );
    assert!(r.worst.is_empty());
    assert_server_lost_nothing_itself(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_server_never_delivered_are_lost_exactly() {
    let server = SseServer::start(10_000, Duration::from_millis(500), 100).await;
    let n = 20;
    let swarm = SseSwarm::start(&spec(&server, n, "100/s"), client()).unwrap();
    let p = all_connected(&swarm, n).await;
    // Every seq after this reading starts after all first connects, so all of them are owed.
    let first = p.last_seq_started + 5;
    server.blind(first, first + 9);
    publishes_after(&swarm, first, 20).await;
    // The progress sees the loss as soon as later seqs arrive.
    wait_until(&swarm, Duration::from_secs(20), "the loss seen live", |q| {
        q.lost_so_far == 10 * u64::from(n)
    })
    .await;
    let r = swarm.finish(Duration::from_secs(2)).await;
    assert_eq!(server.counters().blinded.load(Ordering::SeqCst), 10);
    assert_eq!(r.lost, 10 * u64::from(n), "{}", show(&r));
    assert_eq!(r.subscribers_with_loss, n);
    assert!(!r.drained);
    assert_eq!(r.worst.len(), n as usize);
    let window: Vec<u64> = (first..first + 10).collect();
    for w in &r.worst {
        assert_eq!(w.lost, 10);
        assert_eq!(w.lost_sample, window);
    }
    assert_eq!((r.duplicates, r.out_of_order, r.publish_failed), (0, 0, 0));
    assert_server_lost_nothing_itself(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ignoring_last_event_id_loses_the_outage_exactly() {
    let server = SseServer::start(10_000, Duration::from_millis(500), 50).await;
    let n = 20;
    let mut s = spec(&server, n, "100/s");
    s.reconnect.initial = Duration::from_millis(400);
    s.reconnect.max = Duration::from_millis(400);
    let swarm = SseSwarm::start(&s, client()).unwrap();
    let p = all_connected(&swarm, n).await;
    server.ignore_last_event_id();
    // Publishes of seqs read before now may have started before a subscriber connected: the
    // closed server answers them 503 (not owed); later ones are stored and reach nobody.
    server.close(p.last_seq_started);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.open_streams() > 0
        || server
            .counters()
            .accepted_while_closed
            .load(Ordering::SeqCst)
            < 5
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage never filled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.reopen(n as usize);
    let outage = server
        .counters()
        .accepted_while_closed
        .load(Ordering::SeqCst);
    let q = wait_until(&swarm, Duration::from_secs(20), "reconnected", |q| {
        q.connected == n
    })
    .await;
    publishes_after(&swarm, q.last_seq_started, 20).await;
    let r = swarm.finish(Duration::from_secs(2)).await;
    assert_eq!(
        r.lost,
        outage * u64::from(n),
        "outage {outage}: {}",
        show(&r)
    );
    assert_eq!(r.subscribers_with_loss, n);
    assert!(r.worst.iter().all(|w| w.lost == outage));
    assert!(r.reconnects >= u64::from(n));
    assert_server_lost_nothing_itself(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_counted_and_are_not_loss() {
    let server = SseServer::start(10_000, Duration::from_millis(500), 100).await;
    let n = 20;
    let swarm = SseSwarm::start(&spec(&server, n, "100/s"), client()).unwrap();
    let p = all_connected(&swarm, n).await;
    server.duplicate(p.last_seq_started, 3);
    publishes_after(&swarm, p.last_seq_started, 30).await;
    let r = swarm.finish(Duration::from_secs(10)).await;
    let duplicated = server.counters().duplicated.load(Ordering::SeqCst);
    assert!(duplicated >= 10, "{duplicated}");
    assert_eq!(r.duplicates, duplicated * u64::from(n), "{}", show(&r));
    assert_eq!((r.lost, r.out_of_order), (0, 0), "{}", show(&r));
    assert!(r.drained);
    assert_server_lost_nothing_itself(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_publishes_are_counted_and_not_owed() {
    let server = SseServer::start(10_000, Duration::from_millis(500), 100).await;
    server.publish_fault(|seq| match seq % 5 {
        0 => PublishFault::Reject,
        1 => PublishFault::DeliverThenReject,
        _ => PublishFault::None,
    });
    let n = 10;
    let swarm = SseSwarm::start(&spec(&server, n, "100/s"), client()).unwrap();
    let p = all_connected(&swarm, n).await;
    publishes_after(&swarm, p.last_seq_started, 40).await;
    let r = swarm.finish(Duration::from_secs(10)).await;
    let rejected = server.counters().rejected.load(Ordering::SeqCst);
    assert!(rejected >= 16, "{rejected}");
    assert_eq!(r.publish_failed, rejected, "{}", show(&r));
    assert!(
        r.publish_errors.iter().any(|e| e.contains("500")),
        "{:?}",
        r.publish_errors
    );
    // Never-delivered seqs (÷5) would be lost if they were owed; delivered ones (…1) are
    // received without being owed.
    assert_eq!(r.lost, 0, "{}", show(&r));
    assert!(r.drained);
    assert!(r.received > r.expected, "{}", show(&r));
    assert_server_lost_nothing_itself(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_subscribers_are_held_without_loss() {
    let started = std::time::Instant::now();
    // Light traffic: the test runs unoptimised; what it proves is holding 5,000 streams.
    let server = SseServer::start(20_000, Duration::from_secs(5), 200).await;
    let n = 5_000;
    let mut s = spec(&server, n, "2/s");
    s.reconnect.initial = Duration::from_secs(1);
    s.reconnect.open_timeout = Duration::from_secs(30);
    let swarm = SseSwarm::start(&s, client()).unwrap();
    let p = wait_until(&swarm, Duration::from_secs(40), "5,000 connected", |p| {
        p.ever_connected == n && p.connected == n
    })
    .await;
    publishes_after(&swarm, p.last_seq_started, 4).await;
    let r = swarm.finish(Duration::from_secs(15)).await;
    assert_eq!((r.connected, r.never_connected), (n, 0), "{}", show(&r));
    assert_eq!(r.lost, 0, "{}", show(&r));
    assert!(r.drained);
    assert!(r.expected >= u64::from(n) * 4, "{}", show(&r));
    assert_eq!(r.disconnected_at_end, 0);
    assert_server_lost_nothing_itself(&server);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
