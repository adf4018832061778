//! One side of `bench sse` in its own process: patrol's [`SseSwarm`] here, or the Node.js
//! `eventsource` swarm (`benches/sse-peer/swarm.js`), both reporting the same JSON so the parent
//! can put them side by side.
//!
//! Each side opens N subscribers, waits until all are open, then counts the events received in
//! a window of S seconds and reads its resident memory at the end of the window; memory per
//! subscriber is the growth of RSS since before the first subscriber divided by those held.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bench::CpuTime;
use crate::chaos::workload::{ReconnectSpec, SseSwarm, SseWorkloadSpec};

/// How long all subscribers may take to open.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(180);

/// What a side measured (one process; the parent sums the processes of a side).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SideReport {
    /// Subscribers open at the end of the window.
    pub held: u64,
    /// RSS at the end of the window minus RSS before the first subscriber.
    pub rss_bytes: u64,
    /// RSS before the first subscriber (runtime, libraries).
    #[serde(default)]
    pub rss_base_bytes: u64,
    /// Events received during the window.
    pub events: u64,
    #[serde(default)]
    pub seconds: f64,
    /// From the first subscriber to all of them open.
    #[serde(default)]
    pub connect_secs: f64,
    /// CPU time (user + system) spent during the window.
    #[serde(default)]
    pub cpu_secs: f64,
    #[serde(default)]
    pub error: Option<String>,
}

/// Resident set size of this process, in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    crate::bench::Memory::now().map_or(0, |m| m.current_kib * 1024)
}

/// patrol's side: an [`SseSwarm`] without a publisher (the server generates the events).
pub async fn run_patrol(url: &str, subscribers: u32, seconds: u64) -> SideReport {
    let base = rss_bytes();
    let spec = SseWorkloadSpec {
        url: url.to_string(),
        subscribers,
        connect_rate: None,
        headers: Default::default(),
        publish: None,
        sequence: "json:$.seq".into(),
        reconnect: ReconnectSpec::default(),
    };
    let http = match reqwest::Client::builder().build() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot build the HTTP client: {e}")),
    };
    let started = Instant::now();
    let swarm = match SseSwarm::start(&spec, http) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let deadline = started + CONNECT_LIMIT;
    while swarm.progress().connected < subscribers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let (events_before, cpu_before, window) =
        (swarm.progress().received, CpuTime::now(), Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let progress = swarm.progress();
    let report = SideReport {
        held: u64::from(progress.connected),
        rss_bytes: rss_bytes().saturating_sub(base),
        rss_base_bytes: base,
        events: progress.received - events_before,
        seconds: window.elapsed().as_secs_f64(),
        connect_secs,
        cpu_secs: CpuTime::now().since(cpu_before).total().as_secs_f64(),
        error: None,
    };
    // Closing 10,000 streams takes a moment; the report is what matters.
    drop(swarm);
    report
}

fn failed(error: String) -> SideReport {
    SideReport {
        error: Some(error),
        ..SideReport::default()
    }
}
