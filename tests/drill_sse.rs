//! Drills against the demo SSE cluster (3 node processes sharing one event log, behind the drill's
//! own fault proxy), with the real `patrol drill` binary. The verdict must be true both ways:
//! a node killed and restarted loses nothing (PASS); a replay buffer smaller than the outage and
//! a node ignoring `Last-Event-ID` lose exactly the events the cluster could not replay (FAIL with
//! that count); a paused node loses nothing but its silence is caught by `max_gap` (FAIL).

mod drill_support;

use std::collections::BTreeMap;

use drill_support::{World, free_port, report_of, streams};
use patrol::demo::sse_cluster::{ClusterOptions, NodeOptions, SseCluster};

async fn cluster(w: &World, node: NodeOptions) -> SseCluster {
    let options = ClusterOptions {
        binary: Some(env!("CARGO_BIN_EXE_patrol").into()),
        node,
        per_node: BTreeMap::new(),
        ..ClusterOptions::default()
    };
    SseCluster::start(&w.path("cluster"), 3, &options)
        .await
        .unwrap()
}

/// A drill whose SSE workload subscribes through a fault proxy `front` in front of all nodes and
/// publishes `rate` straight to node 1; `faults` and `verify` are YAML list/mapping bodies.
fn sse_drill(
    cluster: &SseCluster,
    port: u16,
    subscribers: u32,
    rate: &str,
    faults: &str,
    verify: &str,
) -> String {
    let upstreams: Vec<String> = cluster.addrs().iter().map(|a| format!("'{a}'")).collect();
    let node2 = cluster.node(1);
    format!(
        "kind: drill
name: sse-drill
steady_state:
  - {{ name: node-2-up, kind: http, url: '{ready}', timeout: 1s }}
proxies:
  - {{ name: front, listen: '127.0.0.1:{port}', upstream: [{upstreams}] }}
workload:
  sse:
    url: 'http://127.0.0.1:{port}/sub/{topic}'
    subscribers: {subscribers}
    publish: {{ url: '{publish}', rate: {rate}, body: '{{\"seq\": {{{{seq}}}}}}' }}
    sequence: json:$.seq
    reconnect: {{ initial: 1s, max: 1s, jitter: 0s }}
faults:
{faults}
verify:
{verify}
drain: 3s
probe_interval: 500ms
",
        ready = node2.ready,
        upstreams = upstreams.join(", "),
        topic = cluster.topic(),
        publish = cluster.publish_url(),
    )
}

/// The seqs the cluster accepted, read from its shared event log.
async fn accepted_seqs(cluster: &SseCluster) -> Vec<u64> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", cluster.log_path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let bodies: Vec<(String,)> = sqlx::query_as("SELECT body FROM sse_events ORDER BY pos")
        .fetch_all(&mut c)
        .await
        .unwrap();
    bodies
        .iter()
        .map(|(b,)| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn verify_line<'a>(report: &'a serde_json::Value, what: &str) -> &'a serde_json::Value {
    report["verify"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["what"] == what)
        .unwrap_or_else(|| panic!("no verify line {what}: {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_restarted_loses_nothing() {
    let w = World::new();
    let cluster = cluster(&w, NodeOptions::default()).await;
    let node2 = cluster.node(1);
    let start: Vec<String> = node2.start.iter().map(|a| format!("'{a}'")).collect();
    let faults = format!(
        "  - at: 1s\n    for: 2s\n    process: {{ pidfile: '{}', action: kill, start: [{}], ready: '{}' }}\n",
        node2.pidfile.display(),
        start.join(", "),
        node2.ready
    );
    let verify = "  lost: eq(0)\n  duplicates: eq(0)\n  out_of_order: eq(0)\n  reconnect_p99: lt(5s)\n  recovery: lt(10s)\n";
    let port = free_port().await;
    let file = w.write(
        "drill.yaml",
        &sse_drill(&cluster, port, 30, "20/s", &faults, verify),
    );
    let killed = node2.pid().unwrap();
    let out = w.drill(&[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "passed", "{report:#}");
    let sse = &report["workload"]["sse"];
    assert_eq!(sse["lost"], 0, "{sse:#}");
    assert!(sse["published"].as_u64().unwrap() > 40, "{sse:#}");
    assert!(
        sse["reconnects"].as_u64().unwrap() >= 5,
        "the subscribers of node 2 reconnected: {sse:#}"
    );
    assert_eq!(report["faults"][0]["outcome"], "reverted");
    // The steady state (node 2 answering) broke while it was down and came back.
    let during = report["steady_state"]["during"].as_array().unwrap();
    assert!(during.iter().any(|s| s["holds"] == false), "{during:#?}");
    assert_eq!(report["steady_state"]["after"]["holds"], true);
    assert_eq!(verify_line(&report, "recovery")["pass"], true);
    let restarted = node2.pid().unwrap();
    assert_ne!(restarted, killed, "node 2 runs again as a new process");
    assert!(w.active_faults().await.is_empty());
}

/// Subscribers lose their streams (`reset` on the proxy) from 1s to 4.5s while events are
/// published at 5/s; each retries every second (at 2s, 3s, 4s: refused) and is back at 5s, after
/// publishing stopped with the fault phase at 4.5s. So the gap is fixed when they resume.
async fn outage_drill(
    w: &World,
    node: NodeOptions,
) -> (SseCluster, serde_json::Value, std::process::Output) {
    let cluster = cluster(w, node).await;
    let faults = "  - { at: 1s, for: 3500ms, proxy: { proxy: front, reset: true } }\n";
    let port = free_port().await;
    let file = w.write(
        "drill.yaml",
        &sse_drill(&cluster, port, 1, "5/s", faults, "  lost: eq(0)\n"),
    );
    let out = w.drill(&[file.to_str().unwrap(), "--format", "json"]).await;
    let report = report_of(&out);
    (cluster, report, out)
}

/// The subscriber's lost seqs as the report lists them (all of them: fewer than its sample size),
/// checked to be one contiguous run.
fn lost_run(report: &serde_json::Value) -> (u64, u64) {
    let sse = &report["workload"]["sse"];
    let worst = sse["worst"].as_array().unwrap();
    assert_eq!(worst.len(), 1, "{sse:#}");
    let sample: Vec<u64> = worst[0]["lost_sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let lost = sse["lost"].as_u64().unwrap();
    assert!(lost > 0 && lost < 20, "a loss within the sample: {sse:#}");
    assert_eq!(sample.len() as u64, lost, "{sse:#}");
    let (first, last) = (sample[0], sample[sample.len() - 1]);
    assert_eq!(last - first + 1, lost, "one contiguous gap: {sample:?}");
    assert!(
        first > 1,
        "the subscriber received events before the outage: {sample:?}"
    );
    (first, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_buffer_smaller_than_the_outage_loses_exactly_the_rest() {
    let w = World::new();
    let buffer = 5;
    let node = NodeOptions {
        buffer,
        ..NodeOptions::default()
    };
    let (cluster, report, out) = outage_drill(&w, node).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    assert_eq!(report["status"], "failed");
    let newest = *accepted_seqs(&cluster).await.iter().max().unwrap();
    let (_, last_lost) = lost_run(&report);
    // The resumed stream replayed the `buffer` newest events; everything between the last one
    // received before the outage and those was lost.
    assert_eq!(last_lost, newest - buffer as u64, "{report:#}");
    let lost = report["workload"]["sse"]["lost"].as_u64().unwrap();
    let line = verify_line(&report, "lost");
    assert_eq!(line["pass"], false);
    assert_eq!(line["actual"], lost.to_string());
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("lost is {lost} (expected eq(0))")),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_ignoring_last_event_id_loses_the_whole_outage() {
    let w = World::new();
    let node = NodeOptions {
        ignore_last_event_id: true,
        ..NodeOptions::default()
    };
    let (cluster, report, out) = outage_drill(&w, node).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let newest = *accepted_seqs(&cluster).await.iter().max().unwrap();
    let (_, last_lost) = lost_run(&report);
    assert_eq!(
        last_lost, newest,
        "nothing of the outage was replayed: {report:#}"
    );
    assert_eq!(verify_line(&report, "lost")["pass"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_is_caught_by_the_heartbeat_gap() {
    let w = World::new();
    let cluster = cluster(&w, NodeOptions::default()).await;
    let node2 = cluster.node(1);
    let faults = format!(
        "  - {{ at: 1s, for: 3s, process: {{ pidfile: '{}', action: pause }} }}\n",
        node2.pidfile.display()
    );
    let verify = "  lost: eq(0)\n  max_gap: lt(2s)\n";
    let port = free_port().await;
    let file = w.write(
        "drill.yaml",
        &sse_drill(&cluster, port, 9, "10/s", &faults, verify),
    );
    let out = w.drill(&[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(verify_line(&report, "lost")["pass"], true, "{report:#}");
    let gap = verify_line(&report, "max_gap");
    assert_eq!(gap["pass"], false, "{report:#}");
    let ms = gap["value"].as_f64().unwrap();
    assert!(
        (2500.0..6000.0).contains(&ms),
        "the silence of the paused node: {gap}"
    );
    assert_eq!(report["faults"][0]["outcome"], "reverted");
    // SIGCONT came: node 2 serves again.
    let health = reqwest::get(&node2.ready).await.unwrap();
    assert!(health.status().is_success());
}
