//! Baseline methods on the live path: `patrol run` against real targets with the store (SQLite)
//! holding the history — a `peer` check over five nodes of a SQLite table names the node that
//! leaves its peers; a `seasonal` check fitted from three days of stored history lets the
//! expected value of the hour pass and flags a spike; the daemon exports `patrol_anomaly_score`.

mod common;
#[path = "daemon_support/mod.rs"]
mod daemon_support;

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, Timelike, Utc};
use patrol::result::{CheckResult, RunRecord, Status, StatusCounts, Value};
use patrol::store::Store;
use serde_json::Value as Json;

fn patrol_run(dir: &Path) -> Vec<Json> {
    let out = Command::new(common::patrol_bin())
        .current_dir(dir)
        .args([
            "run",
            "--rules",
            "rules.yaml",
            "--format",
            "json",
            "--store",
            "sqlite://store.db",
        ])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        common::streams(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn by_series<'a>(lines: &'a [Json], series: &str) -> &'a Json {
    lines
        .iter()
        .find(|l| l["series"] == series)
        .unwrap_or_else(|| panic!("no {series} in {lines:#?}"))
}

#[tokio::test]
async fn peer_names_the_node_that_leaves_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = ["sse-1", "sse-2", "sse-3", "sse-4", "sse-5"];
    let latency =
        |round: usize, node: usize| 40.0 + node as f64 + ((round * 7 + node * 3) % 5) as f64;
    let db = common::sqlite_gauge_db(dir.path(), &[]).await;
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            r#"
targets:
  nodes: {{kind: sqlite, url: "sqlite://{}"}}
checks:
  - name: sse-latency
    kind: sql
    target: nodes
    query: "SELECT name, v FROM gauge ORDER BY name"
    value: v
    series: name
    baseline: {{method: peer, peer: {{algorithm: mad, window: 1h}}}}
"#,
            db.display()
        ),
    )
    .unwrap();
    for round in 0..6 {
        let rows: Vec<(&str, f64)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, latency(round, i)))
            .collect();
        common::sqlite_gauge_db(dir.path(), &rows).await;
        let lines = patrol_run(dir.path());
        assert!(
            lines.iter().all(|l| l["status"] == "ok"),
            "similar nodes: {lines:#?}"
        );
        assert_eq!(by_series(&lines, "sse-3")["baseline"]["method"], "peer");
    }
    // sse-4 slows down to four times its peers' latency and stays there: one odd reading is a
    // blip, the series is odd once it is unlike its peers over most of the window.
    let mut lines = Vec::new();
    for round in 6..13 {
        let rows: Vec<(&str, f64)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, if i == 3 { 180.0 } else { latency(round, i) }))
            .collect();
        common::sqlite_gauge_db(dir.path(), &rows).await;
        lines = patrol_run(dir.path());
        if round == 6 {
            assert_eq!(
                by_series(&lines, "sse-4")["status"],
                "ok",
                "a blip: {lines:#?}"
            );
        }
    }
    let odd = by_series(&lines, "sse-4");
    assert_eq!(odd["status"], "warn", "{odd:#}");
    let message = odd["message"].as_str().unwrap();
    assert!(
        message.contains("sse-4 behaves unlike its 4 peers"),
        "{message}"
    );
    assert!(
        odd["baseline"]["anomaly_score"].as_f64().unwrap() > 0.9,
        "{odd:#}"
    );
    for n in ["sse-1", "sse-2", "sse-3", "sse-5"] {
        assert_eq!(by_series(&lines, n)["status"], "ok", "{lines:#?}");
    }
}

/// A daily pattern: 100 at night, rising from 06:00 to 300 at 09:00, back down in the evening,
/// plus a small sawtooth (0 to 1.8, mean 0.9) that no daily season explains.
fn daily(t: DateTime<Utc>) -> f64 {
    smooth(t) + ((t.timestamp() / 300) % 7) as f64 * 0.3
}

/// [`daily`] without its sawtooth.
fn smooth(t: DateTime<Utc>) -> f64 {
    let h = t.hour() as f64 + t.minute() as f64 / 60.0;
    let day = match h {
        h if h < 6.0 => 0.0,
        h if h < 9.0 => (h - 6.0) / 3.0,
        h if h < 18.0 => 1.0,
        h if h < 21.0 => 1.0 - (h - 18.0) / 3.0,
        _ => 0.0,
    };
    100.0 + 200.0 * day
}

/// Three days of 5-minute results of `check` following [`daily`], up to five minutes ago.
async fn seed_history(store: &Store, check: &str, now: DateTime<Utc>) {
    let start = now - Duration::days(3);
    let mut t = start;
    let mut results = Vec::new();
    while t < now - Duration::minutes(4) {
        results.push(CheckResult {
            started_at: t,
            run_id: "history".into(),
            ..CheckResult::new(check, "", Status::Ok, Some(Value::Num(daily(t))))
        });
        t += Duration::minutes(5);
    }
    let run = RunRecord {
        id: "history".into(),
        started_at: start,
        finished_at: now,
        revision: "seed".into(),
        trigger: "seed".into(),
        counts: StatusCounts::tally(&results),
    };
    store.save_run(&run, &results, &[]).await.unwrap();
}

#[tokio::test]
async fn seasonal_is_fitted_from_stored_history_and_flags_only_the_unexpected() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let store_url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::open(&store_url).await.unwrap();
    seed_history(&store, "orders-rate", now).await;
    drop(store);
    // What the hour calls for at the step the forecast gives `now` (the seeded grid lands on it):
    // the smooth pattern plus the sawtooth's mean.
    let expected = smooth(now) + 0.9;
    let db = common::sqlite_gauge_db(dir.path(), &[("rate", expected)]).await;
    std::fs::write(
        dir.path().join("rules.yaml"),
        format!(
            r#"
targets:
  shop: {{kind: sqlite, url: "sqlite://{}"}}
checks:
  - name: orders-rate
    kind: sql
    target: shop
    query: "SELECT v FROM gauge"
    every: 5m
    baseline: {{method: seasonal, periods: [1d], refit: 1h, level: 0.99}}
"#,
            db.display()
        ),
    )
    .unwrap();
    let lines = patrol_run(dir.path());
    let r = &lines[0];
    assert_eq!(r["baseline"]["method"], "seasonal", "{r:#}");
    assert_eq!(r["status"], "ok", "the value the hour calls for: {r:#}");
    let (lower, upper) = (
        r["baseline"]["lower"].as_f64().unwrap(),
        r["baseline"]["upper"].as_f64().unwrap(),
    );
    assert!(lower < expected && expected < upper, "{r:#}");

    common::sqlite_gauge_db(dir.path(), &[("rate", expected + 400.0)]).await;
    let lines = patrol_run(dir.path());
    let r = &lines[0];
    assert_eq!(r["status"], "warn", "{r:#}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("outside predicted band"),
        "{r:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_exports_the_anomaly_score() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 5.0)]).await;
    let rules = format!(
        r#"
targets:
  data: {{kind: sqlite, url: "sqlite://{}"}}
checks:
  - name: gauge
    kind: sql
    target: data
    query: "SELECT v FROM gauge"
    every: 1s
    baseline: {{warmup: 1}}
"#,
        db.display()
    );
    let d = daemon_support::DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    d.wait_until("an anomaly score", |d| async move {
        d.metrics()
            .await
            .lines()
            .any(|l| l.starts_with("patrol_anomaly_score{") && l.contains("check=\"gauge\""))
    })
    .await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}
