//! Black-box tests of health scores in `patrol run`: the scores of the services a run touched are
//! printed after the result table and stored as one point of each service's time series, with the
//! penalty counting minutes since a check started failing across runs (and processes).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use patrol::result::{CheckResult, RunRecord, Status, StatusCounts, Value};
use patrol::store::{ScoreRecord, Store};

/// `gauge` (crit above 50, so series b fails) belongs to the penalty service `shop` with weight
/// 10 and feeds the weighted service `pool` as linear(0, 100); `spare` (service `idle`) and
/// `loose` (no service) are only run when asked for.
fn write_rules(dir: &Path, db: &Path) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let yaml = format!(
        r#"
targets:
  data: {{kind: sqlite, url: "sqlite://{db}"}}
checks:
  - name: gauge
    kind: sql
    target: data
    query: "SELECT name, v FROM gauge ORDER BY name"
    series: name
    value: v
    crit: gt(50)
    service: shop
    weight: 10
  - name: spare
    kind: sql
    target: data
    query: "SELECT COUNT(*) AS n FROM gauge"
    service: idle
  - name: loose
    kind: sql
    target: data
    query: "SELECT COUNT(*) AS n FROM gauge"
services:
  pool:
    model: weighted
    components:
      - {{check: gauge, normalize: "linear(0, 100)", weight: 1}}
"#,
        db = db.display()
    );
    std::fs::write(rules.join("checks.yaml"), yaml).unwrap();
}

/// A temporary directory with a SQLite database `gauge(name, v)` holding series a = 20 and b = 60
/// (mean 40), and the rules of [`write_rules`] over it.
async fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 20.0), ("b", 60.0)]).await;
    write_rules(dir.path(), &db);
    dir
}

/// `patrol run --check <check>` with the store `s.db` in `dir`, plus the options in `more`.
fn run_check(dir: &Path, check: &str, more: &[&str]) -> Output {
    Command::new(common::patrol_bin())
        .current_dir(dir)
        .args(["run", "--store", "sqlite://s.db", "--check", check])
        .args(more)
        .env_remove("PATROL_STORE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}

async fn store(dir: &Path) -> Store {
    Store::open(&format!("sqlite://{}", dir.join("s.db").display()))
        .await
        .unwrap()
}

async fn latest(dir: &Path) -> BTreeMap<String, ScoreRecord> {
    store(dir)
        .await
        .latest_scores()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.service.clone(), s))
        .collect()
}

#[tokio::test]
async fn run_prints_and_stores_the_scores_of_the_services_it_touched() {
    let dir = workspace().await;
    let out = run_check(dir.path(), "gauge", &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "series b is crit: {}",
        both(&out)
    );
    let text = stdout(&out);
    let (results, scores) = text
        .split_once("SERVICE")
        .unwrap_or_else(|| panic!("no score table after the results:\n{text}"));
    assert!(results.contains("gauge"), "{text}");
    let row = |name: &str| {
        scores
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in\n{scores}"))
            .to_string()
    };
    assert!(row("pool").contains("40.0"), "mean of 20 and 60 over 100");
    assert!(row("pool").contains("weighted"));
    assert!(row("shop").contains("penalty") && row("shop").contains("gauge crit"));
    assert!(row("overall").contains("overall"));
    assert!(!scores.contains("idle"), "idle was not touched:\n{scores}");

    let stored = latest(dir.path()).await;
    let names: Vec<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(names, ["_overall", "pool", "shop"]);
    assert_eq!(stored["pool"].score, 40.0);
    assert_eq!(stored["pool"].model, "weighted");
    assert_eq!(stored["pool"].details["terms"][0]["value"], 40.0);
    // Failing for the few milliseconds since the run started: 100 − 10·log₂(1 + ε).
    let shop = stored["shop"].score;
    assert!(shop > 99.0 && shop <= 100.0, "{shop}");
    assert_eq!(stored["shop"].model, "penalty");
    let overall = stored["_overall"].score;
    assert!((overall - (40.0 + shop) / 2.0).abs() < 1e-9, "{overall}");
    assert_eq!(stored["_overall"].model, "overall");
}

/// A crit result of `gauge` taken `ago` before now, stored as its own run.
fn earlier_failure(ago: Duration) -> (RunRecord, Vec<CheckResult>) {
    let at = Utc::now() - ago;
    let result = CheckResult {
        started_at: at,
        run_id: "earlier-run".into(),
        ..CheckResult::new("gauge", "b", Status::Crit, Some(Value::Num(60.0)))
    };
    let run = RunRecord {
        id: "earlier-run".into(),
        started_at: at,
        finished_at: at,
        revision: "earlier".into(),
        trigger: "cli".into(),
        counts: StatusCounts::tally([&result]),
    };
    (run, vec![result])
}

#[tokio::test]
async fn the_penalty_counts_minutes_since_the_check_started_failing_in_an_earlier_run() {
    let dir = workspace().await;
    let (run, results) = earlier_failure(Duration::minutes(15));
    store(dir.path())
        .await
        .save_run(&run, &results, &[])
        .await
        .unwrap();

    let out = run_check(dir.path(), "gauge", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    for line in stdout(&out).lines() {
        let r: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("JSON output stays JSON lines only: {e}: {line}"));
        assert_eq!(r["check"], "gauge");
    }
    let stored = latest(dir.path()).await;
    // Still failing since 15 minutes ago: 100 − 10·log₂(15 + ε + 1) just under 60.
    let shop = &stored["shop"];
    assert!(shop.score > 59.0 && shop.score < 60.0, "{}", shop.score);
    let term = &shop.details["terms"][0];
    assert_eq!(term["check"], "gauge");
    let minutes = term["failing_minutes"].as_f64().unwrap();
    assert!((15.0..16.0).contains(&minutes), "{term}");
}

#[tokio::test]
async fn a_run_touching_no_service_prints_and_stores_no_scores() {
    let dir = workspace().await;
    let out = run_check(dir.path(), "loose", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(!stdout(&out).contains("SERVICE"), "{}", stdout(&out));
    assert!(latest(dir.path()).await.is_empty());
}

/// The shipped example `rules/services.yaml` expresses the two weighted formulas of DESIGN §3:
/// fed the same inputs, it gives the same numbers as the formulas written out by hand.
#[test]
fn the_example_services_reproduce_the_design_formulas() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/services.yaml");
    let rules = patrol::config::load_with_env(&[file], &BTreeMap::new()).unwrap();
    let now = Utc::now();
    let state = |value: f64| patrol::score::CheckState {
        status: Status::Ok,
        failing_since: None,
        value: Some(value),
        at: now,
    };
    let states = [
        ("sse-success-rate", 0.95),
        ("sse-rtt-ms", 100.0),
        ("sse-timeout-rate", 0.02),
        ("sse-backlog", 200.0),
        ("sse-node-connect-ms", 50.0),
        ("sse-node-fin-rst-rate", 1.0),
        ("sse-node-syn-retrans-rate", 0.1),
    ]
    .into_iter()
    .map(|(check, v)| (check.to_string(), state(v)))
    .collect();
    let scores = patrol::score::evaluate(&rules, &states, now);
    let score = |service: &str| scores.iter().find(|s| s.service == service).unwrap().score;
    let sse_pool =
        0.4 * 0.95 + 0.3 * (1.0 - 100.0 / 500.0) + 0.2 * (1.0 - 0.02) - 0.1 * 200.0 / 1000.0;
    assert!((score("sse-pool") - 100.0 * sse_pool).abs() < 1e-9);
    let connection = 0.4 * (1.0 - 50.0 / 500.0)
        + 0.35 * (1.0 - f64::min(1.0, 1.0 / 5.0))
        + 0.25 * (-10.0f64 * 0.1).exp();
    assert!((score("connection-health") - 100.0 * connection).abs() < 1e-9);
    assert_eq!(score("payments"), 100.0, "nothing failing");
    let low = |service: &str| rules.services[service].low_score.clone();
    assert!(low("payments").is_some() && low("sse-pool").is_some());
}
