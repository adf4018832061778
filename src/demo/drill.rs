//! `patrol demo drill`: a short chaos drill against a built-in 3-node SSE cluster on loopback, so a
//! new user sees a drill without installing anything. The nodes are real processes sharing one
//! event log; subscribers listen through the drill's fault proxy in front of all three; node 2 is
//! killed, then started again; the subscribers resume with `Last-Event-ID` and the report shows
//! that nothing was lost.
//!
//! Nothing is simulated: the drill file written here is run by the same code as `patrol drill`.

use std::path::Path;

use crate::cli::drill::{DrillArgs, DrillFormat, drill};
use crate::cli::{DemoDrillArgs, EXIT_FAILED};
use crate::demo::sse_cluster::{ClusterOptions, SseCluster};

/// Runs the drill demo; the exit code is the drill's (0 passed, 1 failed, 3 aborted).
pub async fn run(args: DemoDrillArgs) -> u8 {
    match play(&args).await {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("patrol demo drill: {msg}");
            EXIT_FAILED
        }
    }
}

async fn play(args: &DemoDrillArgs) -> Result<u8, String> {
    let dir = tempfile::Builder::new()
        .prefix("patrol-demo-drill-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let cluster = SseCluster::start(&dir.path().join("cluster"), 3, &ClusterOptions::default())
        .await
        .map_err(|e| format!("cannot start the demo SSE cluster: {e}"))?;
    let proxy_port = free_port()?;
    let file = dir.path().join("sse-node-crash.yaml");
    std::fs::write(&file, drill_file(&cluster, proxy_port, args.subscribers))
        .map_err(|e| format!("cannot write the demo drill: {e}"))?;
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).map_err(|e| format!("cannot create {rules:?}: {e}"))?;
    introduce(&cluster, proxy_port, args.subscribers, &file);
    let store = args
        .store
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("patrol-demo.db").display()));
    let code = drill(DrillArgs {
        file: Some(file),
        rules: Some(rules),
        dry_run: false,
        // Outside the temporary folder, so the report outlives the demo.
        report_dir: std::env::temp_dir().join("patrol-demo-reports"),
        format: DrillFormat::Table,
        store,
        recover: false,
    })
    .await;
    drop(cluster);
    Ok(code)
}

/// A port for the fault proxy: the drill file has to name it before the proxy listens.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

fn introduce(cluster: &SseCluster, proxy_port: u16, subscribers: u32, file: &Path) {
    eprintln!("patrol demo drill: an SSE push cluster of 3 node processes on loopback:");
    for node in cluster.nodes() {
        eprintln!(
            "  {} on {} (pidfile {})",
            node.name,
            node.addr,
            node.pidfile.display()
        );
    }
    eprintln!(
        "{subscribers} subscribers listen through the fault proxy on 127.0.0.1:{proxy_port}; a \
         publisher sends 20 events/s through {}.",
        cluster.node(0).name
    );
    eprintln!(
        "At 2s {} is killed (SIGKILL) for 3s, then started again; every subscriber must resume \
         with Last-Event-ID and lose nothing.",
        cluster.node(1).name
    );
    eprintln!("The drill file: {}\n", file.display());
}

/// The drill: node 2 killed and restarted, nothing may be lost.
fn drill_file(cluster: &SseCluster, proxy_port: u16, subscribers: u32) -> String {
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let node2 = cluster.node(1);
    format!(
        "kind: drill
name: demo-sse-node-crash
description: Kill SSE node 2 for 3s while {subscribers} subscribers listen; nothing may be lost.
steady_state:
  - {{ name: sse-node-2-health, kind: http, url: '{ready}', timeout: 1s }}
proxies:
  - {{ name: front, listen: '127.0.0.1:{proxy_port}', upstream: [{upstreams}] }}
workload:
  sse:
    url: 'http://127.0.0.1:{proxy_port}/sub/{topic}'
    subscribers: {subscribers}
    connect_rate: 500
    publish: {{ url: '{publish}', rate: 20/s, body: '{{\"seq\": {{{{seq}}}}}}' }}
    sequence: json:$.seq
    reconnect: {{ initial: 500ms, max: 2s, jitter: 250ms }}
faults:
  - at: 2s
    for: 3s
    process: {{ pidfile: '{pidfile}', action: kill, start: [{start}], ready: '{ready}' }}
abort_when:
  - {{ wall_time: {{ above: 2m }} }}
verify:
  lost: eq(0)
  duplicates: eq(0)
  out_of_order: eq(0)
  reconnect_p99: lt(5s)
  recovery: lt(15s)
drain: 3s
probe_interval: 500ms
",
        ready = node2.ready,
        upstreams = quoted(&cluster.addrs()),
        topic = cluster.topic(),
        publish = cluster.publish_url(),
        pidfile = node2.pidfile.display(),
        start = quoted(&node2.start),
    )
}
