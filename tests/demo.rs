//! `patrol demo` end to end: the built binary starts its own service and database, learns their
//! baselines, injects an incident and must report it caught — quickly, with no services needed.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_catches_the_injected_anomalies_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo-store.db").display());
    let started = Instant::now();
    let (stdout, _) = common::output_ok(
        Command::new(common::patrol_bin())
            .args(["demo", "--store", &store])
            .env("NO_COLOR", "1"),
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the demo took {took:?}; it must stay well under 30 s"
    );

    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("caught: "))
        .unwrap_or_else(|| panic!("no verdict in\n{stdout}"));
    assert!(
        last.starts_with("caught: 2 anomalies outside their baseline band"),
        "{last}"
    );
    assert!(last.contains("orders-api-latency"), "{last}");
    assert!(last.contains("orders-pending"), "{last}");
    assert!(!last.contains("missed"), "{last}");

    // Learning rounds were printed, then the incident's table with both checks outside the band.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("round") && l.contains("learning 1/10")),
        "{stdout}"
    );
    let table_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("outside baseline"))
        .collect();
    assert!(
        table_rows.iter().any(|l| l.contains("orders-api-latency")),
        "{stdout}"
    );
    assert!(
        table_rows.iter().any(|l| l.contains("orders-pending")),
        "{stdout}"
    );
    // The shadow rule fires in the incident without failing anything.
    assert!(stdout.contains("crit (shadow)"), "{stdout}");
}

#[test]
fn demo_results_are_stored_like_any_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo-store.db");
    let out = Command::new(common::patrol_bin())
        .args([
            "demo",
            "--rounds",
            "10",
            "--store",
            &format!("sqlite://{}", path.display()),
        ])
        .output()
        .expect("patrol runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(path.exists(), "the store file was created");
    // 10 learning rounds + the incident + the recovery, 5 checks each.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (runs, results) = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let results: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
            .fetch_one(&mut c)
            .await
            .unwrap();
        (runs, results)
    });
    assert_eq!(runs, 12, "{stdout}");
    assert_eq!(results, 60, "{stdout}");
}

#[test]
fn demo_with_an_unusable_store_is_a_usage_error() {
    let out = Command::new(common::patrol_bin())
        .args(["demo", "--store", "mongodb://127.0.0.1/patrol"])
        .output()
        .expect("patrol runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("caught:"));
}

/// `patrol demo drill`: a node of the built-in SSE cluster is killed and restarted; the drill
/// passes with nothing lost, and its run is stored.
#[test]
fn demo_drill_kills_a_node_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("drill-store.db").display());
    let (stdout, stderr) = common::output_ok(
        Command::new(common::patrol_bin())
            .args(["demo", "drill", "--subscribers", "50", "--store", &store])
            .env("NO_COLOR", "1"),
    );
    assert!(
        stdout.contains("drill demo-sse-node-crash: PASSED"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("PASS lost"), "{stdout}");
    assert!(stderr.contains("injected fault #1"), "{stderr}");
    assert!(stderr.contains("reverted fault #1"), "{stderr}");
    let runs = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = patrol::store::Store::open(&store).await.unwrap();
        store.recent_drill_runs(None, 10).await.unwrap()
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "passed");
}
