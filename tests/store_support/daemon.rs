//! Fixtures of `tests/store_daemon.rs`: verdicts of one check over time, events and scores.

use chrono::{DateTime, Duration, Utc};
use patrol::result::{CheckResult, RunRecord, Status, Value};
use patrol::store::{NewEvent, ScoreRecord, Store};

use crate::fixtures::{result, run_record, t0};

/// `t0` plus whole minutes.
pub fn at(minute: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minute)
}

/// One run of `check` at `minute` with one result per `(series, status, value)`.
pub fn verdict(
    check: &str,
    minute: i64,
    series: &[(&str, Status, Option<f64>)],
) -> (RunRecord, Vec<CheckResult>) {
    let id = format!("{check}-{minute}");
    let results: Vec<CheckResult> = series
        .iter()
        .map(|(name, status, value)| CheckResult {
            status: *status,
            value: value.map(Value::Num),
            ..result(&id, check, name, at(minute))
        })
        .collect();
    (run_record(&id, at(minute), &results), results)
}

/// A single-series run of `check` at `minute`.
pub fn single(check: &str, minute: i64, status: Status) -> (RunRecord, Vec<CheckResult>) {
    verdict(check, minute, &[("", status, Some(minute as f64))])
}

pub fn event(kind: &str, minute: i64, n: u64) -> NewEvent {
    NewEvent {
        kind: kind.into(),
        at: at(minute),
        data: serde_json::json!({"n": n, "check": "orders-health", "tags": ["a", "ü"]}),
    }
}

pub fn score(service: &str, minute: i64, value: f64) -> ScoreRecord {
    ScoreRecord {
        service: service.into(),
        at: at(minute),
        score: value,
        model: "penalty".into(),
        details: serde_json::json!({"terms": [{"check": "lag", "minutes": minute}]}),
    }
}

/// Saves one run without baselines.
pub async fn save(store: &Store, run: (RunRecord, Vec<CheckResult>)) {
    store.save_run(&run.0, &run.1, &[]).await.unwrap();
}

/// Saves `scores` as one batch.
pub async fn save_scores(store: &Store, scores: &[ScoreRecord]) {
    store.save_scores(scores).await.unwrap();
}

/// Records that `job`, planned for `planned`, started at `started`.
pub async fn job_started(store: &Store, job: &str, planned: DateTime<Utc>, started: DateTime<Utc>) {
    store.record_job_start(job, planned, started).await.unwrap();
}

/// The (run, series) of each result, for short failure messages.
pub fn ids(results: &[CheckResult]) -> Vec<(String, String)> {
    results
        .iter()
        .map(|r| (r.run_id.clone(), r.series.clone()))
        .collect()
}
