//! Fixtures of `tests/store.rs`: runs, results and baseline states that between them use every
//! variant of every stored field.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use patrol::baseline::EwmaState;
use patrol::result::{Band, CheckResult, RunRecord, Status, StatusCounts, Value};
use patrol::store::BaselineKey;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap() + Duration::microseconds(123_456)
}

pub fn run_record(id: &str, started_at: DateTime<Utc>, results: &[CheckResult]) -> RunRecord {
    RunRecord {
        id: id.into(),
        started_at,
        finished_at: started_at + Duration::milliseconds(1_500),
        revision: "rev-1a2b3c".into(),
        trigger: "cli".into(),
        counts: StatusCounts::tally(results),
    }
}

/// An ok HTTP result of `check` for `series` with every text and number field filled in, so that
/// a round trip through the store has something to lose.
pub fn result(run_id: &str, check: &str, series: &str, at: DateTime<Utc>) -> CheckResult {
    CheckResult {
        kind: "http".into(),
        target: "orders-api".into(),
        unit: "ms".into(),
        duration_ms: 43.5,
        revision: "rev-1a2b3c".into(),
        started_at: at,
        run_id: run_id.into(),
        ..CheckResult::new(check, series, Status::Ok, Some(Value::Num(42.25)))
    }
}

/// Results that between them use every variant of every field.
pub fn varied_results(run_id: &str) -> Vec<CheckResult> {
    let band = Band {
        mean: 100.5,
        stddev: 3.25,
        lower: 90.75,
        upper: 110.25,
        samples: 40,
        ..Band::default()
    };
    vec![
        CheckResult {
            status: Status::Warn,
            message: "value 130 outside baseline [90.75, 110.25] (mean 100.5, σ 3.25, 40 samples)"
                .into(),
            value: Some(Value::Num(130.0)),
            baseline: Some(band),
            service: Some("orders".into()),
            labels: BTreeMap::from([("team".into(), "sre".into()), ("tier".into(), "1".into())]),
            ..result(run_id, "orders-latency", "", t0())
        },
        CheckResult {
            kind: "redis".into(),
            target: "cache".into(),
            status: Status::Crit,
            value: Some(Value::Text("down".into())),
            unit: String::new(),
            message: "master_link_status: eq(\"up\") failed".into(),
            shadow: true,
            ..result(
                run_id,
                "redis-link",
                "replica-1",
                t0() + Duration::microseconds(7),
            )
        },
        CheckResult {
            kind: "sql".into(),
            status: Status::Error,
            value: None,
            message: "connection refused".into(),
            labels: BTreeMap::from([("quote".into(), "it's \"odd\" ✓".into())]),
            ..result(run_id, "mysql-lag", "db-2", t0() + Duration::seconds(1))
        },
        CheckResult {
            status: Status::Skipped,
            value: Some(Value::Text("42".into())),
            ..result(run_id, "skipped-check", "", t0() + Duration::seconds(2))
        },
    ]
}

pub fn key(check: &str, series: &str) -> BaselineKey {
    BaselineKey {
        check: check.into(),
        series: series.into(),
    }
}

pub fn state(mean: f64, samples: u64) -> EwmaState {
    EwmaState {
        mean,
        var: mean / 10.0,
        samples,
        updated_at: Some(t0() + Duration::microseconds(samples as i64)),
    }
}
