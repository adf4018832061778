//! The `check_state` table: the latest state of every check, maintained inside each save so that
//! scores never scan result history. Pure: how a batch of results becomes one update per check is
//! decided and tested here; the upsert that merges it with the stored row is in [`super::statements`].
//!
//! **Merging without reading.** A batch is folded in memory into one row per check, and the
//! database merges it with the stored row in the upsert itself: an older update never replaces a
//! newer state, and a check that keeps failing keeps its stored `failing_since`. No read precedes
//! the write, so two concurrent writers (a daemon and a CLI run) cannot lose each other's streak.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::StoreError;
use super::rows::stored_time;
use crate::result::{CheckResult, Status};
use crate::score::CheckState;

pub const CHECK_STATE_COLUMNS: &str = "check_name, status, failing_since, value, at";

/// The state of one check after a batch, to be merged with the stored one.
#[derive(Clone, Debug, PartialEq)]
pub struct StateUpdate {
    pub check_name: String,
    pub status: Status,
    /// When the failing streak at the end of the batch began; `None` when the check is not failing.
    pub failing_since: Option<DateTime<Utc>>,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
    /// Whether every verdict of the batch was failing, so a streak already stored continues
    /// (its `failing_since` is kept). False when the batch saw the check pass, or it passes now.
    pub continues_streak: bool,
}

/// A row of `check_state`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct CheckStateRow {
    pub check_name: String,
    pub status: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub value: Option<f64>,
    pub at: DateTime<Utc>,
}

impl CheckStateRow {
    pub fn into_entry(self) -> Result<(String, CheckState), StoreError> {
        let status = Status::parse(&self.status).ok_or_else(|| {
            StoreError(format!(
                "unknown stored status '{}' of check '{}'",
                self.status, self.check_name
            ))
        })?;
        let state = CheckState {
            status,
            failing_since: self.failing_since,
            value: self.value,
            at: self.at,
        };
        Ok((self.check_name, state))
    }
}

/// One verdict: what the results of one check in one run say together.
#[derive(Clone, Debug, PartialEq)]
struct Verdict {
    status: Status,
    value: Option<f64>,
    at: DateTime<Utc>,
}

/// One update per check that has a verdict in `results` (skipped results say nothing about
/// health). A check's results are grouped by run and the runs taken in time order, so a recovery
/// in the middle of a batch ends a streak even when the check fails again by its end.
pub fn fold_batch<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Vec<StateUpdate> {
    let mut updates: Vec<StateUpdate> = verdicts_by_check(results)
        .into_iter()
        .map(|(check, verdicts)| fold_check(check, verdicts))
        .collect();
    updates.sort_by(|a, b| a.check_name.cmp(&b.check_name));
    updates
}

/// Per check, one verdict per run in time order (stable for runs at the same instant).
fn verdicts_by_check<'a>(
    results: impl IntoIterator<Item = &'a CheckResult>,
) -> HashMap<&'a str, Vec<Verdict>> {
    let mut runs: HashMap<(&str, &str), Vec<&CheckResult>> = HashMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for r in results {
        if r.status == Status::Skipped {
            continue;
        }
        let key = (r.check.as_str(), r.run_id.as_str());
        runs.entry(key)
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push(r);
    }
    let mut by_check: HashMap<&str, Vec<Verdict>> = HashMap::new();
    for key in order {
        by_check
            .entry(key.0)
            .or_default()
            .push(verdict_of_run(&runs[&key]));
    }
    for verdicts in by_check.values_mut() {
        verdicts.sort_by_key(|v| v.at);
    }
    by_check
}

/// Worst status over the series, mean of the finite numeric values, newest time.
fn verdict_of_run(results: &[&CheckResult]) -> Verdict {
    let status = results
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Skipped);
    let at = results
        .iter()
        .map(|r| stored_time(r.started_at))
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let value = crate::result::mean_value(results.iter().copied());
    Verdict { status, value, at }
}

/// The state after `verdicts` (in time order, at least one).
fn fold_check(check: &str, verdicts: Vec<Verdict>) -> StateUpdate {
    let mut failing_since = None;
    let mut continues_streak = true;
    for v in &verdicts {
        if v.status.fails_run() {
            failing_since = failing_since.or(Some(v.at));
        } else {
            failing_since = None;
            continues_streak = false;
        }
    }
    let last = verdicts.last().cloned().unwrap_or(Verdict {
        status: Status::Skipped,
        value: None,
        at: DateTime::<Utc>::MIN_UTC,
    });
    StateUpdate {
        check_name: check.to_string(),
        status: last.status,
        failing_since,
        value: last.value,
        at: last.at,
        continues_streak,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::result::Value;

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn r(
        check: &str,
        run: &str,
        series: &str,
        status: Status,
        value: Option<Value>,
        minute: i64,
    ) -> CheckResult {
        CheckResult {
            started_at: t(minute),
            run_id: run.into(),
            ..CheckResult::new(check, series, status, value)
        }
    }

    fn num(x: f64) -> Option<Value> {
        Some(Value::Num(x))
    }

    #[test]
    fn worst_status_and_mean_value_over_the_series_of_a_run() {
        let updates = fold_batch(&[
            r("lag", "run-1", "db-1", Status::Ok, num(2.0), 0),
            r("lag", "run-1", "db-2", Status::Warn, num(4.0), 0),
            r(
                "lag",
                "run-1",
                "db-3",
                Status::Ok,
                Some(Value::Text("9".into())),
                0,
            ),
            r(
                "lag",
                "run-1",
                "db-4",
                Status::Ok,
                Some(Value::Text("up".into())),
                0,
            ),
            r("lag", "run-1", "db-5", Status::Ok, num(f64::NAN), 0),
        ]);
        assert_eq!(
            updates,
            vec![StateUpdate {
                check_name: "lag".into(),
                status: Status::Warn,
                failing_since: None,
                value: Some(5.0),
                at: t(0),
                continues_streak: false,
            }]
        );
    }

    #[test]
    fn a_failing_batch_starts_or_continues_a_streak() {
        let updates = fold_batch(&[
            r("a", "run-1", "", Status::Crit, num(1.0), 0),
            r("a", "run-2", "", Status::Error, None, 1),
        ]);
        assert_eq!(updates[0].status, Status::Error);
        assert_eq!(
            updates[0].failing_since,
            Some(t(0)),
            "the first failing run"
        );
        assert!(updates[0].continues_streak);
        assert_eq!(updates[0].value, None, "the latest run measured nothing");
    }

    #[test]
    fn a_recovery_inside_the_batch_restarts_the_streak() {
        // Saved out of time order on purpose: runs are ordered by time, not position.
        let updates = fold_batch(&[
            r("a", "run-3", "", Status::Crit, None, 2),
            r("a", "run-1", "", Status::Crit, None, 0),
            r("a", "run-2", "", Status::Ok, None, 1),
        ]);
        assert_eq!(updates[0].failing_since, Some(t(2)));
        assert!(!updates[0].continues_streak);
        let recovered = fold_batch(&[
            r("a", "run-1", "", Status::Crit, None, 0),
            r("a", "run-2", "", Status::Warn, None, 1),
        ]);
        assert_eq!(
            (recovered[0].status, recovered[0].failing_since),
            (Status::Warn, None)
        );
    }

    #[test]
    fn skipped_results_say_nothing_and_checks_are_kept_apart() {
        let updates = fold_batch(&[
            r("only-skipped", "run-1", "", Status::Skipped, None, 0),
            r("b", "run-1", "", Status::Ok, num(3.0), 0),
            r("b", "run-1", "x", Status::Skipped, num(100.0), 0),
            r("a", "run-1", "", Status::Crit, num(7.0), 0),
        ]);
        let names: Vec<&str> = updates.iter().map(|u| u.check_name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            updates[1].value,
            Some(3.0),
            "a skipped series is not averaged in"
        );
        assert!(fold_batch(&[]).is_empty());
    }

    #[test]
    fn stored_rows_read_back_and_unknown_statuses_are_reported() {
        let row = CheckStateRow {
            check_name: "a".into(),
            status: "crit".into(),
            failing_since: Some(t(0)),
            value: Some(1.5),
            at: t(1),
        };
        let (name, state) = row.clone().into_entry().unwrap();
        assert_eq!(name, "a");
        assert_eq!(state.status, Status::Crit);
        let bad = CheckStateRow {
            status: "meh".into(),
            ..row
        };
        assert!(bad.into_entry().unwrap_err().0.contains("'meh'"));
    }
}
