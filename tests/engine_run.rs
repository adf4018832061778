//! The runner against a real HTTP server on loopback: the global and per-target concurrency limits
//! hold (the server counts requests in flight), every check yields a result, and a run's results
//! and baselines land in the store together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use patrol::config::{RuleSet, load_with_env};
use patrol::engine::{RunOptions, run_checks, select_checks};
use patrol::result::Status;
use patrol::store::Store;

/// Requests in flight now, and the most seen at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A server whose `/slow` holds each request for 40 ms while counting how many are in flight.
async fn counting_server() -> (u16, Arc<InFlight>) {
    let counter = Arc::new(InFlight::default());
    let c = counter.clone();
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || {
            let c = c.clone();
            async move {
                let n = c.now.fetch_add(1, Ordering::SeqCst) + 1;
                c.max.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await;
                c.now.fetch_sub(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, counter)
}

fn rules(port: u16, checks: usize) -> RuleSet {
    let mut y =
        format!("targets:\n  api: {{kind: http, url: \"http://127.0.0.1:{port}\"}}\nchecks:\n");
    for i in 0..checks {
        y.push_str(&format!("  - {{name: c{i}, kind: http, target: api, request: {{path: /slow}}, baseline: {{warmup: 2}}}}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), y).unwrap();
    load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new()).unwrap()
}

async fn run_with(concurrency: usize, per_target: usize) -> (usize, usize) {
    patrol::install_crypto_provider();
    let (port, counter) = counting_server().await;
    let rules = rules(port, 24);
    let checks = select_checks(&rules, &[], &[]).unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let opts = RunOptions {
        limits: patrol::engine::Limits::new(concurrency, per_target),
        ..RunOptions::default()
    };
    let outcome = run_checks(&rules, &checks, &store, &opts).await.unwrap();
    assert_eq!(outcome.results.len(), 24);
    assert!(
        outcome.results.iter().all(|r| r.status == Status::Ok),
        "{:?}",
        outcome.results
    );
    (counter.max.load(Ordering::SeqCst), outcome.results.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_never_sees_more_than_per_target_checks_at_once() {
    let (max, _) = run_with(32, 4).await;
    assert!((2..=4).contains(&max), "max in flight {max}, limit 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_global_limit_caps_everything() {
    let (max, _) = run_with(2, 16).await;
    assert_eq!(
        max, 2,
        "global limit 2, and the 24 checks do run side by side"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_and_baselines_are_stored_with_the_run() {
    patrol::install_crypto_provider();
    let (port, _) = counting_server().await;
    let rules = rules(port, 3);
    let checks = select_checks(&rules, &[], &[]).unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let first = run_checks(&rules, &checks, &store, &RunOptions::default())
        .await
        .unwrap();
    let second = run_checks(&rules, &checks, &store, &RunOptions::default())
        .await
        .unwrap();
    let stored = store.results_of_run(&second.run.id).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .all(|r| r.baseline.as_ref().is_some_and(|b| b.samples == 1)),
        "{stored:?}"
    );
    assert_eq!(
        store.run(&first.run.id).await.unwrap().unwrap().counts.ok,
        3
    );
    let names: Vec<String> = checks.iter().map(|c| c.name().to_string()).collect();
    let baselines = store.baselines(&names).await.unwrap();
    assert!(baselines.values().all(|b| b.samples == 2), "{baselines:?}");
}

#[tokio::test]
async fn a_probe_that_outlives_its_timeout_is_an_error() {
    patrol::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and then says nothing: the http check waits for a response that never comes.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), format!("checks:\n  - {{name: mute, kind: http, url: \"http://127.0.0.1:{port}/\", timeout: 300ms}}\n")).unwrap();
    let rules = load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new()).unwrap();
    let checks = select_checks(&rules, &[], &[]).unwrap();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let started = std::time::Instant::now();
    let outcome = run_checks(&rules, &checks, &store, &RunOptions::default())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = &outcome.results[0];
    assert_eq!(r.status, Status::Error);
    assert!(r.message.contains("timed out"), "{}", r.message);
}
