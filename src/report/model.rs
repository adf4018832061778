//! What a suite report says, read from the store: the run and every result, the health scores
//! at the run's time with their trend, the comparison with the previous run of the same trigger,
//! and the recent values (with the EWMA band) of every failing or anomalous series.
//!
//! Everything is read as of the run: a report regenerated later (`patrol report --run ID`) reads
//! results up to the run's end and scores up to the run's score, so it says the same as the one
//! written when the run ended (only `generated_at` differs).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::result::{CheckResult, RunRecord, Status};
use crate::score::OVERALL;
use crate::store::{Store, StoreError};

/// Version of the JSON shape ([`SuiteReport`] serialized); raised on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
/// Failing or anomalous series charted (the worst first); the others are counted in
/// `series_omitted`.
pub const MAX_SERIES: usize = 50;
/// Recent values drawn per series.
pub const HISTORY_POINTS: usize = 30;
/// A score taken this long after the run ended still counts as the run's score (scores are
/// evaluated right after a run, by `patrol run` and by the daemon).
const SCORE_GRACE_MINUTES: i64 = 10;
/// The trend of a score covers this much time before the run…
const TREND_DAYS: i64 = 7;
/// …read as at most this many stored points (the newest when there are more)…
const TREND_READ: usize = 20_000;
/// …and drawn as at most this many.
pub const TREND_POINTS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("run {0} is not in the store")]
    UnknownRun(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One run's report. Serialized as is for the JSON report (see `json.rs` for the shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    /// The suite's name: the trigger without `suite:` (`cli` for `patrol run`).
    pub suite: String,
    pub run: RunRecord,
    pub duration_ms: f64,
    /// Every result of the run, in the order they were saved.
    pub results: Vec<CheckResult>,
    /// The services the run's checks belong to, then `_overall`, each at the run's time.
    pub scores: Vec<ServiceScoreReport>,
    /// The previous run of the same trigger, if there is one.
    pub previous_run: Option<RunRecord>,
    pub changes: Changes,
    /// Failing or anomalous series, the worst first, with their recent values.
    pub series: Vec<SeriesHistory>,
    /// Failing or anomalous series beyond [`MAX_SERIES`], not charted.
    pub series_omitted: usize,
}

/// A service's health score at the run's time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceScoreReport {
    pub service: String,
    pub score: f64,
    pub at: DateTime<Utc>,
    /// `penalty`, `weighted` or `overall`.
    pub model: String,
    /// The score at the previous run's time, when both are known.
    pub previous: Option<f64>,
    /// Scores of the week before, oldest first, at most [`TREND_POINTS`].
    pub trend: Vec<ScorePoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorePoint {
    pub at: DateTime<Utc>,
    pub score: f64,
}

/// What changed since the previous run, per (check, series). Failing means `crit` or `error`
/// (and not shadow). Without a previous run every failing series is a new failure and there are
/// no new checks (everything is new).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    pub new_failures: Vec<Change>,
    pub recovered: Vec<Change>,
    pub still_failing: Vec<Change>,
    /// Series measured now that the previous run did not measure.
    pub new_checks: Vec<Change>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.new_failures.is_empty()
            && self.recovered.is_empty()
            && self.still_failing.is_empty()
            && self.new_checks.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub check: String,
    pub series: String,
    pub status: Status,
    /// Status in the previous run (None: not measured there).
    pub previous: Option<Status>,
    pub message: String,
}

/// A failing or anomalous series and its recent values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesHistory {
    pub check: String,
    pub series: String,
    pub service: Option<String>,
    pub unit: String,
    pub status: Status,
    pub value: Option<f64>,
    pub message: String,
    /// The value lies outside the band it was judged against.
    pub outside_band: bool,
    /// Oldest first, ending with this run's value.
    pub points: Vec<HistoryPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub status: Status,
    pub mean: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl SuiteReport {
    /// The report of run `run_id` as the store holds it now.
    pub async fn from_store(store: &Store, run_id: &str) -> Result<SuiteReport, ReportError> {
        let run = store
            .run(run_id)
            .await?
            .ok_or_else(|| ReportError::UnknownRun(run_id.to_string()))?;
        let results = store.results_of_run(run_id).await?;
        let previous_run = store.run_before(&run).await?;
        let previous_results = match &previous_run {
            Some(p) => Some(store.results_of_run(&p.id).await?),
            None => None,
        };
        let changes = compare(&results, previous_results.as_deref());
        let worth: Vec<&CheckResult> = worth_charting(&results);
        let mut series = Vec::new();
        for r in worth.iter().take(MAX_SERIES) {
            let mut history = store
                .results_until(&r.check, &r.series, run.finished_at, HISTORY_POINTS)
                .await?;
            history.reverse();
            series.push(series_history(r, &history));
        }
        let scores = scores_of(store, &run, previous_run.as_ref(), &results).await?;
        Ok(SuiteReport {
            schema_version: SCHEMA_VERSION,
            generated_at: Utc::now(),
            suite: suite_name(&run.trigger),
            duration_ms: (run.finished_at - run.started_at)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1000.0,
            series_omitted: worth.len().saturating_sub(MAX_SERIES),
            run,
            results,
            scores,
            previous_run,
            changes,
            series,
        })
    }

    /// Whether any enforced result failed (the run's exit code was 1).
    pub fn failed(&self) -> bool {
        self.results.iter().any(CheckResult::fails_run)
    }
}

/// The suite a trigger names: `suite:nightly` → `nightly`; other triggers as they are.
pub fn suite_name(trigger: &str) -> String {
    trigger
        .strip_prefix("suite:")
        .unwrap_or(trigger)
        .to_string()
}

/// `check` or `check[series]`: how a series is named in every report.
pub fn series_label(check: &str, series: &str) -> String {
    if series.is_empty() {
        check.to_string()
    } else {
        format!("{check}[{series}]")
    }
}

/// Failing in the sense of the comparison: `crit` or `error`, not shadow.
fn failing(r: &CheckResult) -> bool {
    r.fails_run()
}

/// The value lies outside the band it was judged against.
pub fn outside_band(r: &CheckResult) -> bool {
    let (Some(band), Some(x)) = (&r.baseline, r.value.as_ref().and_then(|v| v.as_f64())) else {
        return false;
    };
    x.is_finite() && (x < band.lower || x > band.upper)
}

/// Worth a chart: `warn`, `crit` or `error`, or a value outside its band.
pub fn is_anomalous(r: &CheckResult) -> bool {
    r.status >= Status::Warn || outside_band(r)
}

/// The results worth a chart, the worst first (status, then outside the band), then by name.
fn worth_charting(results: &[CheckResult]) -> Vec<&CheckResult> {
    let mut worth: Vec<&CheckResult> = results.iter().filter(|r| is_anomalous(r)).collect();
    worth.sort_by(|a, b| {
        (b.status, outside_band(b))
            .cmp(&(a.status, outside_band(a)))
            .then_with(|| (&a.check, &a.series).cmp(&(&b.check, &b.series)))
    });
    worth
}

/// What changed between `previous` (None: there was no previous run) and `current`.
pub fn compare(current: &[CheckResult], previous: Option<&[CheckResult]>) -> Changes {
    let mut changes = Changes::default();
    let before: Option<HashMap<(&str, &str), &CheckResult>> = previous.map(|p| {
        p.iter()
            .map(|r| ((r.check.as_str(), r.series.as_str()), r))
            .collect()
    });
    for r in current {
        let was = before
            .as_ref()
            .and_then(|b| b.get(&(r.check.as_str(), r.series.as_str())));
        let change = Change {
            check: r.check.clone(),
            series: r.series.clone(),
            status: r.status,
            previous: was.map(|w| w.status),
            message: r.message.clone(),
        };
        let was_failing = was.is_some_and(|w| failing(w));
        match (failing(r), was_failing) {
            (true, true) => changes.still_failing.push(change.clone()),
            (true, false) => changes.new_failures.push(change.clone()),
            (false, true) => changes.recovered.push(change.clone()),
            (false, false) => {}
        }
        if before.is_some() && was.is_none() {
            changes.new_checks.push(change);
        }
    }
    changes
}

fn series_history(r: &CheckResult, history: &[CheckResult]) -> SeriesHistory {
    let mut points: Vec<HistoryPoint> = history.iter().map(history_point).collect();
    // The run's own result ends the line even if the store returned it out of reach (equal
    // timestamps of a later run).
    if !history.iter().any(|h| h.run_id == r.run_id) {
        points.push(history_point(r));
    }
    SeriesHistory {
        check: r.check.clone(),
        series: r.series.clone(),
        service: r.service.clone(),
        unit: r.unit.clone(),
        status: r.status,
        value: r.value.as_ref().and_then(|v| v.as_f64()),
        message: r.message.clone(),
        outside_band: outside_band(r),
        points,
    }
}

fn history_point(r: &CheckResult) -> HistoryPoint {
    let band = r.baseline.as_ref();
    HistoryPoint {
        at: r.started_at,
        value: r.value.as_ref().and_then(|v| v.as_f64()),
        status: r.status,
        mean: band.map(|b| b.mean),
        lower: band.map(|b| b.lower),
        upper: band.map(|b| b.upper),
    }
}

/// Services of the run's results (sorted), then `_overall`.
fn services_of(results: &[CheckResult]) -> Vec<String> {
    let mut names: Vec<String> = results
        .iter()
        .filter_map(|r| r.service.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.push(OVERALL.to_string());
    names
}

/// The score of `service` for `run`: the first taken from the run's start until a little after
/// its end, else the last one before it started.
async fn score_for_run(
    store: &Store,
    service: &str,
    run: &RunRecord,
) -> Result<Option<crate::store::ScoreRecord>, StoreError> {
    let until = run.finished_at + Duration::minutes(SCORE_GRACE_MINUTES);
    if let Some(s) = store
        .first_score_between(service, run.started_at, until)
        .await?
    {
        return Ok(Some(s));
    }
    store.last_score_before(service, run.started_at).await
}

async fn scores_of(
    store: &Store,
    run: &RunRecord,
    previous_run: Option<&RunRecord>,
    results: &[CheckResult],
) -> Result<Vec<ServiceScoreReport>, StoreError> {
    let mut out = Vec::new();
    for service in services_of(results) {
        let Some(now) = score_for_run(store, &service, run).await? else {
            continue;
        };
        let previous = match previous_run {
            Some(p) => score_for_run(store, &service, p)
                .await?
                .filter(|s| s.at < now.at)
                .map(|s| s.score),
            None => None,
        };
        let points = store
            .score_points(
                &service,
                now.at - Duration::days(TREND_DAYS),
                now.at,
                TREND_READ,
            )
            .await?;
        let trend = downsample(&points, TREND_POINTS)
            .into_iter()
            .map(|(at, score)| ScorePoint { at, score })
            .collect();
        out.push(ServiceScoreReport {
            service,
            score: now.score,
            at: now.at,
            model: now.model,
            previous,
            trend,
        });
    }
    Ok(out)
}

/// At most `n` of `points`, evenly spaced by position, always keeping the first and the last.
pub fn downsample<T: Clone>(points: &[T], n: usize) -> Vec<T> {
    if points.len() <= n {
        return points.to_vec();
    }
    let last = points.len() - 1;
    if n < 2 {
        return points[last..].iter().take(n).cloned().collect();
    }
    (0..n)
        .map(|i| points[(i * last + (n - 1) / 2) / (n - 1)].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Band, Value};

    fn result(check: &str, status: Status) -> CheckResult {
        CheckResult::new(check, "", status, Some(Value::Num(1.0)))
    }

    fn names(list: &[Change]) -> Vec<&str> {
        list.iter().map(|c| c.check.as_str()).collect()
    }

    #[test]
    fn changes_sort_series_into_new_recovered_still_and_new_checks() {
        let previous = [
            result("a", Status::Ok),
            result("b", Status::Crit),
            result("c", Status::Error),
            result("d", Status::Warn),
        ];
        let current = [
            result("a", Status::Crit),
            result("b", Status::Ok),
            result("c", Status::Crit),
            result("d", Status::Warn),
            result("e", Status::Error),
            result("f", Status::Ok),
        ];
        let c = compare(&current, Some(&previous));
        assert_eq!(names(&c.new_failures), ["a", "e"]);
        assert_eq!(names(&c.recovered), ["b"]);
        assert_eq!(names(&c.still_failing), ["c"]);
        assert_eq!(names(&c.new_checks), ["e", "f"]);
        assert_eq!(c.recovered[0].previous, Some(Status::Crit));
        assert_eq!(c.new_failures[1].previous, None);
    }

    #[test]
    fn without_a_previous_run_every_failure_is_new_and_no_check_is() {
        let c = compare(&[result("a", Status::Crit), result("b", Status::Ok)], None);
        assert_eq!(names(&c.new_failures), ["a"]);
        assert!(c.new_checks.is_empty() && c.recovered.is_empty());
    }

    #[test]
    fn series_of_one_check_are_compared_one_by_one_and_shadows_never_fail() {
        let s = |series: &str, status| CheckResult::new("db", series, status, None);
        let shadow = CheckResult {
            shadow: true,
            ..result("x", Status::Crit)
        };
        let c = compare(
            &[s("a", Status::Crit), s("b", Status::Ok), shadow],
            Some(&[s("a", Status::Ok), s("b", Status::Crit)]),
        );
        assert_eq!(c.new_failures.len(), 1);
        assert_eq!(c.new_failures[0].series, "a");
        assert_eq!(c.recovered[0].series, "b");
        assert_eq!(names(&c.new_checks), ["x"]);
    }

    #[test]
    fn anomalous_means_a_bad_status_or_a_value_outside_the_band() {
        let band = Band {
            mean: 10.0,
            stddev: 1.0,
            lower: 7.0,
            upper: 13.0,
            samples: 20,
            ..Band::default()
        };
        let with = |v: f64, status| CheckResult {
            baseline: Some(band.clone()),
            ..CheckResult::new("c", "", status, Some(Value::Num(v)))
        };
        assert!(!is_anomalous(&with(10.0, Status::Ok)));
        assert!(is_anomalous(&with(20.0, Status::Ok)), "outside the band");
        assert!(is_anomalous(&with(6.0, Status::Ok)));
        assert!(is_anomalous(&result("c", Status::Warn)));
        assert!(is_anomalous(&result("c", Status::Error)));
        assert!(!is_anomalous(&result("c", Status::Skipped)));
        let all = [
            result("w", Status::Warn),
            with(20.0, Status::Ok),
            result("e", Status::Error),
            with(20.0, Status::Warn),
        ];
        let charted = worth_charting(&all);
        let order: Vec<(&str, Status)> = charted
            .iter()
            .map(|r| (r.check.as_str(), r.status))
            .collect();
        assert_eq!(
            order,
            [
                ("e", Status::Error),
                ("c", Status::Warn),
                ("w", Status::Warn),
                ("c", Status::Ok)
            ]
        );
    }

    #[test]
    fn the_suite_comes_from_the_trigger() {
        assert_eq!(suite_name("suite:nightly"), "nightly");
        assert_eq!(suite_name("cli"), "cli");
        assert_eq!(series_label("db", ""), "db");
        assert_eq!(series_label("db", "replica-1"), "db[replica-1]");
    }

    #[test]
    fn downsampling_keeps_both_ends_and_spacing() {
        let v: Vec<u32> = (0..100).collect();
        let d = downsample(&v, 5);
        assert_eq!(d.len(), 5);
        assert_eq!((d[0], d[4]), (0, 99));
        assert!(d.windows(2).all(|w| w[0] < w[1]), "{d:?}");
        assert_eq!(downsample(&v[..3], 5), [0, 1, 2]);
        assert_eq!(downsample(&v, 40).len(), 40);
    }
}
