//! A report with something of everything, for the renderers' unit tests: results of every
//! status (one with two series, one shadow, one with markup in its message), scores with a trend,
//! a previous run and every kind of change, and charted series.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::model::{
    Changes, HistoryPoint, SCHEMA_VERSION, ScorePoint, SeriesHistory, ServiceScoreReport,
    SuiteReport, compare,
};
use crate::result::{Band, CheckResult, RunRecord, Status, StatusCounts, Value};

pub fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap() + Duration::minutes(minute)
}

fn result(check: &str, series: &str, status: Status, value: f64, message: &str) -> CheckResult {
    CheckResult {
        kind: "http".into(),
        target: "orders-api".into(),
        unit: "ms".into(),
        duration_ms: 12.5,
        message: message.into(),
        service: Some("orders".into()),
        revision: "rev1".into(),
        started_at: at(0),
        run_id: "run-2".into(),
        ..CheckResult::new(check, series, status, Some(Value::Num(value)))
    }
}

pub fn results() -> Vec<CheckResult> {
    let band = Band {
        mean: 100.0,
        stddev: 10.0,
        lower: 70.0,
        upper: 130.0,
        samples: 25,
        ..Band::default()
    };
    vec![
        result("api-health", "", Status::Ok, 20.0, ""),
        result(
            "api-latency",
            "",
            Status::Warn,
            250.0,
            "value 250 outside baseline [70, 130]",
        )
        .with_band(band.clone()),
        result(
            "db-lag",
            "replica-1",
            Status::Crit,
            42.0,
            "lag <42s> & rising",
        ),
        result("db-lag", "replica-2", Status::Ok, 1.0, ""),
        result("cert", "", Status::Error, 0.0, "connection refused"),
        result(
            "legacy",
            "",
            Status::Skipped,
            0.0,
            "skipped: depends on cert",
        ),
        CheckResult {
            shadow: true,
            ..result("trial", "", Status::Crit, 5.0, "shadow: would be crit")
        },
    ]
}

trait WithBand {
    fn with_band(self, band: Band) -> Self;
}

impl WithBand for CheckResult {
    fn with_band(self, band: Band) -> Self {
        CheckResult {
            baseline: Some(band),
            ..self
        }
    }
}

fn points(values: &[(f64, Status)]) -> Vec<HistoryPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, (v, status))| HistoryPoint {
            at: at(i as i64 - values.len() as i64 + 1),
            value: Some(*v),
            status: *status,
            mean: Some(100.0),
            lower: Some(70.0),
            upper: Some(130.0),
        })
        .collect()
}

pub fn sample_report() -> SuiteReport {
    let results = results();
    let previous: Vec<CheckResult> = vec![
        result("api-health", "", Status::Crit, 0.0, "HTTP 503"),
        result("db-lag", "replica-1", Status::Ok, 1.0, ""),
        result("cert", "", Status::Error, 0.0, "refused"),
    ];
    let changes: Changes = compare(&results, Some(&previous));
    let run = RunRecord {
        id: "run-2".into(),
        started_at: at(0),
        finished_at: at(0) + Duration::milliseconds(1500),
        revision: "rev1".into(),
        trigger: "suite:nightly".into(),
        counts: StatusCounts::tally(&results),
    };
    let series = results
        .iter()
        .filter(|r| super::model::is_anomalous(r))
        .map(|r| SeriesHistory {
            check: r.check.clone(),
            series: r.series.clone(),
            service: r.service.clone(),
            unit: r.unit.clone(),
            status: r.status,
            value: r.value.as_ref().and_then(|v| v.as_f64()),
            message: r.message.clone(),
            outside_band: super::model::outside_band(r),
            points: points(&[(100.0, Status::Ok), (104.0, Status::Ok), (250.0, r.status)]),
        })
        .collect();
    SuiteReport {
        schema_version: SCHEMA_VERSION,
        generated_at: at(1),
        suite: "nightly".into(),
        duration_ms: 1500.0,
        previous_run: Some(RunRecord {
            id: "run-1".into(),
            started_at: at(-1440),
            finished_at: at(-1440),
            counts: StatusCounts::tally(&previous),
            ..run.clone()
        }),
        run,
        results,
        scores: vec![
            ServiceScoreReport {
                service: "orders".into(),
                score: 62.5,
                at: at(0),
                model: "penalty".into(),
                previous: Some(80.0),
                trend: (0..10)
                    .map(|i| ScorePoint {
                        at: at(i - 10),
                        score: 80.0 - f64::from(i as u32) * 2.0,
                    })
                    .collect(),
            },
            ServiceScoreReport {
                service: "_overall".into(),
                score: 62.5,
                at: at(0),
                model: "overall".into(),
                previous: None,
                trend: vec![],
            },
        ],
        changes,
        series,
        series_omitted: 0,
    }
}
