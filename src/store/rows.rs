//! Flat row shapes of the three tables and their conversion to and from the domain types. Pure:
//! what is stored (a value split into number or text, a band spread over five nullable columns,
//! counts as signed 64-bit integers, timestamps at microsecond precision) is decided and tested
//! here, the SQL lives in the parent module.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::types::Json;

use super::{BaselineKey, StoreError};
use crate::baseline::EwmaState;
use crate::result::{Attachment, Band, CheckResult, RunRecord, Status, StatusCounts, Value};
use crate::secrets;

/// Timestamps keep microseconds, PostgreSQL's precision, in both backends, so a value reads back
/// the same whichever store wrote it.
pub fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// How SQLite stores a timestamp: `2026-11-02T02:00:00.123456Z`. sqlx's own text (RFC 3339 with
/// a varying number of fraction digits) is replaced by this fixed width, so that text order is
/// time order in `ORDER BY` and comparisons. Reading back needs nothing special: sqlx decodes it
/// (and PostgreSQL's TIMESTAMPTZ) into `DateTime<Utc>`.
pub fn sqlite_time(at: DateTime<Utc>) -> String {
    stored_time(at).format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn to_i64(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError(format!("{what} {n} is too large to store")))
}

fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError(format!("stored {what} {n} is negative")))
}

/// A row of `runs`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub revision: String,
    pub triggered_by: String,
    pub count_ok: i64,
    pub count_warn: i64,
    pub count_crit: i64,
    pub count_error: i64,
    pub count_skipped: i64,
}

pub const RUN_COLUMNS: &str = "id, started_at, finished_at, revision, triggered_by, \
     count_ok, count_warn, count_crit, count_error, count_skipped";

impl RunRow {
    pub fn from_record(run: &RunRecord) -> Result<RunRow, StoreError> {
        let c = &run.counts;
        Ok(RunRow {
            id: run.id.clone(),
            started_at: stored_time(run.started_at),
            finished_at: stored_time(run.finished_at),
            revision: run.revision.clone(),
            triggered_by: run.trigger.clone(),
            count_ok: to_i64(c.ok, "ok count")?,
            count_warn: to_i64(c.warn, "warn count")?,
            count_crit: to_i64(c.crit, "crit count")?,
            count_error: to_i64(c.error, "error count")?,
            count_skipped: to_i64(c.skipped, "skipped count")?,
        })
    }

    pub fn into_record(self) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            counts: StatusCounts {
                ok: to_u64(self.count_ok, "ok count")?,
                warn: to_u64(self.count_warn, "warn count")?,
                crit: to_u64(self.count_crit, "crit count")?,
                error: to_u64(self.count_error, "error count")?,
                skipped: to_u64(self.count_skipped, "skipped count")?,
            },
            id: self.id,
            started_at: self.started_at,
            finished_at: self.finished_at,
            revision: self.revision,
            trigger: self.triggered_by,
        })
    }
}

/// A row of `results` (without the surrogate `id`).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ResultRow {
    pub run_id: String,
    pub check_name: String,
    pub kind: String,
    pub target: String,
    pub series: String,
    pub status: String,
    pub value_num: Option<f64>,
    pub value_text: Option<String>,
    pub unit: String,
    pub duration_ms: f64,
    pub message: String,
    pub baseline_mean: Option<f64>,
    pub baseline_stddev: Option<f64>,
    pub baseline_lower: Option<f64>,
    pub baseline_upper: Option<f64>,
    pub baseline_samples: Option<i64>,
    pub baseline_method: Option<String>,
    pub anomaly_score: Option<f64>,
    pub shadow: bool,
    pub service: Option<String>,
    pub labels: Json<BTreeMap<String, String>>,
    pub revision: String,
    pub started_at: DateTime<Utc>,
    pub attachment: Option<Json<Attachment>>,
}

pub const RESULT_COLUMNS: &str = "run_id, check_name, kind, target, series, status, \
     value_num, value_text, unit, duration_ms, message, baseline_mean, baseline_stddev, \
     baseline_lower, baseline_upper, baseline_samples, baseline_method, anomaly_score, shadow, service, \
     labels, revision, started_at, attachment";

impl ResultRow {
    /// The row to write for `r`. Free text (message, text value, label values) passes through
    /// [`secrets::redact`] once more: the engine already masks secrets, and the store is the last
    /// place to make sure none is persisted.
    pub fn from_result(r: &CheckResult) -> Result<ResultRow, StoreError> {
        let (value_num, value_text) = match &r.value {
            None => (None, None),
            Some(Value::Num(n)) => (Some(*n), None),
            Some(Value::Text(s)) => (None, Some(secrets::redact_owned(s.clone()))),
        };
        let labels = r
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), secrets::redact_owned(v.clone())))
            .collect();
        let band = r.baseline.as_ref();
        Ok(ResultRow {
            run_id: r.run_id.clone(),
            check_name: r.check.clone(),
            kind: r.kind.clone(),
            target: r.target.clone(),
            series: r.series.clone(),
            status: r.status.as_str().to_string(),
            value_num,
            value_text,
            unit: r.unit.clone(),
            duration_ms: r.duration_ms,
            message: secrets::redact_owned(r.message.clone()),
            baseline_mean: band.map(|b| b.mean),
            baseline_stddev: band.map(|b| b.stddev),
            baseline_lower: band.map(|b| b.lower),
            baseline_upper: band.map(|b| b.upper),
            baseline_samples: band
                .map(|b| to_i64(b.samples, "baseline samples"))
                .transpose()?,
            baseline_method: band.map(|b| b.method.clone()),
            anomaly_score: band.map(|b| b.anomaly_score),
            shadow: r.shadow,
            service: r.service.clone(),
            labels: Json(labels),
            revision: r.revision.clone(),
            started_at: stored_time(r.started_at),
            attachment: r.attachment.as_ref().map(|a| {
                Json(Attachment {
                    text: secrets::redact(&a.text).into_owned(),
                    ..a.clone()
                })
            }),
        })
    }

    pub fn into_result(self) -> Result<CheckResult, StoreError> {
        let status = Status::parse(&self.status)
            .ok_or_else(|| StoreError(format!("unknown stored status '{}'", self.status)))?;
        let baseline = self.band()?;
        let value = match (self.value_num, self.value_text) {
            (Some(n), _) => Some(Value::Num(n)),
            (None, Some(s)) => Some(Value::Text(s)),
            (None, None) => None,
        };
        Ok(CheckResult {
            check: self.check_name,
            kind: self.kind,
            target: self.target,
            series: self.series,
            status,
            value,
            unit: self.unit,
            duration_ms: self.duration_ms,
            message: self.message,
            baseline,
            shadow: self.shadow,
            service: self.service,
            labels: self.labels.0,
            revision: self.revision,
            started_at: self.started_at,
            run_id: self.run_id,
            attachment: self.attachment.map(|a| a.0),
        })
    }

    /// The band is stored whole or not at all; a partly filled band means the row was edited by
    /// hand, which is reported rather than guessed around.
    fn band(&self) -> Result<Option<Band>, StoreError> {
        match (
            self.baseline_mean,
            self.baseline_stddev,
            self.baseline_lower,
            self.baseline_upper,
            self.baseline_samples,
        ) {
            (None, None, None, None, None) => Ok(None),
            (Some(mean), Some(stddev), Some(lower), Some(upper), Some(samples)) => Ok(Some(Band {
                mean,
                stddev,
                lower,
                upper,
                samples: to_u64(samples, "baseline samples")?,
                method: self.baseline_method.clone().unwrap_or_default(),
                anomaly_score: self.anomaly_score.unwrap_or_default(),
            })),
            _ => Err(StoreError(format!(
                "result of check '{}' in run {} has an incomplete baseline band",
                self.check_name, self.run_id
            ))),
        }
    }
}

/// A row of `baselines`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct BaselineRow {
    pub check_name: String,
    pub series: String,
    pub mean: f64,
    pub variance: f64,
    pub samples: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

pub const BASELINE_COLUMNS: &str = "check_name, series, mean, variance, samples, updated_at";

impl BaselineRow {
    pub fn from_state(key: &BaselineKey, s: &EwmaState) -> Result<BaselineRow, StoreError> {
        Ok(BaselineRow {
            check_name: key.check.clone(),
            series: key.series.clone(),
            mean: s.mean,
            variance: s.var,
            samples: to_i64(s.samples, "baseline samples")?,
            updated_at: s.updated_at.map(stored_time),
        })
    }

    pub fn into_entry(self) -> Result<(BaselineKey, EwmaState), StoreError> {
        let state = EwmaState {
            mean: self.mean,
            var: self.variance,
            samples: to_u64(self.samples, "baseline samples")?,
            updated_at: self.updated_at,
        };
        let key = BaselineKey {
            check: self.check_name,
            series: self.series,
        };
        Ok((key, state))
    }
}

/// One row per key, the last update of a key winning: PostgreSQL refuses an `INSERT … ON
/// CONFLICT DO UPDATE` that touches the same row twice, and the last state is the newest.
pub fn baseline_rows(updates: &[(BaselineKey, EwmaState)]) -> Result<Vec<BaselineRow>, StoreError> {
    let mut last: HashMap<&BaselineKey, usize> = HashMap::new();
    for (i, (key, _)) in updates.iter().enumerate() {
        last.insert(key, i);
    }
    updates
        .iter()
        .enumerate()
        .filter(|(i, (key, _))| last.get(key) == Some(i))
        .map(|(_, (key, state))| BaselineRow::from_state(key, state))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(nanos.into())
    }

    fn result(value: Option<Value>, baseline: Option<Band>) -> CheckResult {
        CheckResult {
            check: "orders-health".into(),
            kind: "http".into(),
            target: "orders-api".into(),
            series: "".into(),
            status: Status::Warn,
            value,
            unit: "ms".into(),
            duration_ms: 12.5,
            message: "slow".into(),
            baseline,
            shadow: true,
            service: Some("orders".into()),
            labels: BTreeMap::from([("team".into(), "sre".into())]),
            revision: "abc123".into(),
            started_at: at(123_456_000),
            run_id: "run-1".into(),
            attachment: None,
        }
    }

    #[test]
    fn an_attachment_round_trips() {
        let r = CheckResult {
            attachment: Some(Attachment {
                name: "goroutine profile".into(),
                content_type: "text/plain".into(),
                text: "goroutine profile: total 3".into(),
            }),
            ..result(Some(Value::Num(3.0)), None)
        };
        let row = ResultRow::from_result(&r).unwrap();
        assert_eq!(row.into_result().unwrap(), r);
    }

    #[test]
    fn values_split_into_number_or_text_and_back() {
        for value in [None, Some(Value::Num(41.5)), Some(Value::Text("up".into()))] {
            let r = result(value.clone(), None);
            let row = ResultRow::from_result(&r).unwrap();
            assert!(row.value_num.is_none() || row.value_text.is_none());
            assert_eq!(row.into_result().unwrap(), r);
        }
        // Text that spells a number stays text.
        let row = ResultRow::from_result(&result(Some(Value::Text("42".into())), None)).unwrap();
        assert_eq!(
            (row.value_num, row.value_text.as_deref()),
            (None, Some("42"))
        );
    }

    #[test]
    fn band_round_trips_and_a_partial_band_is_an_error() {
        let band = Band {
            mean: 10.0,
            stddev: 2.0,
            lower: 4.0,
            upper: 16.0,
            samples: 25,
            ..Band::default()
        };
        let r = result(Some(Value::Num(11.0)), Some(band));
        let row = ResultRow::from_result(&r).unwrap();
        assert_eq!(row.baseline_samples, Some(25));
        assert_eq!(row.clone().into_result().unwrap(), r);
        let partial = ResultRow {
            baseline_upper: None,
            ..row
        };
        let e = partial.into_result().unwrap_err().0;
        assert!(
            e.contains("incomplete baseline band") && e.contains("orders-health"),
            "{e}"
        );
    }

    #[test]
    fn registered_secrets_are_masked_before_storing() {
        let secret = "store-rows-test-secret-5d1e";
        secrets::register(secret);
        let mut r = result(Some(Value::Text(format!("got {secret}"))), None);
        r.message = format!("auth failed for postgres://app:{secret}@db");
        r.labels.insert("token".into(), secret.into());
        let row = ResultRow::from_result(&r).unwrap();
        let stored = format!("{row:?}");
        assert!(!stored.contains(secret), "{stored}");
        assert!(row.message.contains(secrets::MASK), "{}", row.message);
    }

    #[test]
    fn unknown_status_is_reported() {
        let mut row = ResultRow::from_result(&result(None, None)).unwrap();
        row.status = "meh".into();
        assert!(row.into_result().unwrap_err().0.contains("'meh'"));
    }

    #[test]
    fn timestamps_keep_microseconds_in_a_fixed_sortable_format() {
        assert_eq!(stored_time(at(123_456_789)), at(123_456_000));
        assert_eq!(sqlite_time(at(123_456_789)), "2026-11-02T02:00:00.123456Z");
        assert_eq!(sqlite_time(at(0)), "2026-11-02T02:00:00.000000Z");
        let mut texts: Vec<String> = [900_000_000, 0, 500_000, 999_999_000]
            .map(|n| sqlite_time(at(n)))
            .into();
        texts.sort();
        let parsed: Vec<_> = texts
            .iter()
            .map(|t| DateTime::parse_from_rfc3339(t).unwrap())
            .collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
    }

    #[test]
    fn runs_round_trip_and_negative_counts_are_refused() {
        let run = RunRecord {
            id: "run-1".into(),
            started_at: at(1_000),
            finished_at: at(2_000_000),
            revision: "abc".into(),
            trigger: "cli".into(),
            counts: StatusCounts {
                ok: 3,
                warn: 2,
                crit: 1,
                error: 0,
                skipped: 4,
            },
        };
        let row = RunRow::from_record(&run).unwrap();
        assert_eq!(row.triggered_by, "cli");
        assert_eq!(row.clone().into_record().unwrap(), run);
        let bad = RunRow {
            count_ok: -1,
            ..row
        };
        assert!(bad.into_record().unwrap_err().0.contains("negative"));
        let huge = RunRecord {
            counts: StatusCounts {
                ok: u64::MAX,
                ..run.counts.clone()
            },
            ..run
        };
        assert!(
            RunRow::from_record(&huge)
                .unwrap_err()
                .0
                .contains("too large")
        );
    }

    #[test]
    fn last_update_of_a_series_wins() {
        let key = |c: &str, s: &str| BaselineKey {
            check: c.into(),
            series: s.into(),
        };
        let state = |mean: f64| EwmaState {
            mean,
            var: 1.0,
            samples: 3,
            updated_at: Some(at(7)),
        };
        let updates = vec![
            (key("a", ""), state(1.0)),
            (key("b", "x"), state(2.0)),
            (key("a", ""), state(3.0)),
        ];
        let rows = baseline_rows(&updates).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].check_name.as_str(), rows[0].mean), ("b", 2.0));
        assert_eq!((rows[1].check_name.as_str(), rows[1].mean), ("a", 3.0));
        let (k, s) = rows[1].clone().into_entry().unwrap();
        assert_eq!(k, key("a", ""));
        assert_eq!(s.updated_at, Some(at(0)));
    }
}
