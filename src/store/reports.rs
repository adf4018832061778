//! What reports read: runs looked up by what started them (the latest run of a suite, the
//! previous run of the same trigger a report compares with), a series' results up to a run, and
//! a service's scores around a run. Every query is bounded by time as well as by count, so a
//! report regenerated long after its run reads what was there at the run, not what came later.
//! Runs by trigger are served by the index `runs (triggered_by, started_at)` (migration 0009).

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::rows::{RESULT_COLUMNS, RUN_COLUMNS, ResultRow, RunRow, stored_time};
use super::scores::{SCORE_COLUMNS, ScoreRow};
use super::statements::Statements;
use super::{Pool, Store, StoreError, failed, sql_limit};
use crate::result::{CheckResult, RunRecord};
use crate::store::ScoreRecord;

impl Store {
    /// The newest run started by `trigger` (`suite:nightly`, `cli`, …).
    pub async fn latest_run_of(&self, trigger: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE triggered_by = "
            ));
            q.push_bind(trigger);
            q.push(" ORDER BY started_at DESC, id DESC LIMIT 1");
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading the latest run of {trigger}")))?;
        row.map(RunRow::into_record).transpose()
    }

    /// The run of the same trigger as `run` that started just before it (ties broken by id).
    pub async fn run_before(&self, run: &RunRecord) -> Result<Option<RunRecord>, StoreError> {
        let at = stored_time(run.started_at);
        let row: Option<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE triggered_by = "
            ));
            q.push_bind(run.trigger.as_str());
            q.push(" AND (started_at < ");
            <Db as Statements>::push_time(&mut q, at);
            q.push(" OR (started_at = ");
            <Db as Statements>::push_time(&mut q, at);
            q.push(" AND id < ");
            q.push_bind(run.id.as_str());
            q.push(")) ORDER BY started_at DESC, id DESC LIMIT 1");
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading the run before {}", run.id)))?;
        row.map(RunRow::into_record).transpose()
    }

    /// The newest run a report is usually wanted for: a suite run or a `patrol run` (not one
    /// scheduled check, nor an API run of a few checks).
    pub async fn latest_report_run(&self) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RUN_COLUMNS} FROM runs \
                 WHERE triggered_by = 'cli' OR triggered_by LIKE 'suite:%' \
                 ORDER BY started_at DESC, id DESC LIMIT 1"
            ));
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed("reading the latest suite or cli run"))?;
        row.map(RunRow::into_record).transpose()
    }

    /// The last `limit` results of one series of a check taken at or before `until`, newest first.
    pub async fn results_until(
        &self,
        check: &str,
        series: &str,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let rows: Vec<ResultRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE check_name = "
            ));
            q.push_bind(check).push(" AND series = ").push_bind(series);
            q.push(" AND started_at <= ");
            <Db as Statements>::push_time(&mut q, until);
            q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading results of {check}")))?;
        rows.into_iter().map(ResultRow::into_result).collect()
    }

    /// The first score of `service` taken within `[from, to]`.
    pub async fn first_score_between(
        &self,
        service: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<ScoreRecord>, StoreError> {
        let row: Option<ScoreRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {SCORE_COLUMNS} FROM scores WHERE service = "
            ));
            q.push_bind(service).push(" AND at >= ");
            <Db as Statements>::push_time(&mut q, from);
            q.push(" AND at <= ");
            <Db as Statements>::push_time(&mut q, to);
            q.push(" ORDER BY at, id LIMIT 1");
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading scores of {service}")))?;
        Ok(row.map(score_record))
    }

    /// The last score of `service` taken before `before`.
    pub async fn last_score_before(
        &self,
        service: &str,
        before: DateTime<Utc>,
    ) -> Result<Option<ScoreRecord>, StoreError> {
        let row: Option<ScoreRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {SCORE_COLUMNS} FROM scores WHERE service = "
            ));
            q.push_bind(service).push(" AND at < ");
            <Db as Statements>::push_time(&mut q, before);
            q.push(" ORDER BY at DESC, id DESC LIMIT 1");
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading scores of {service}")))?;
        Ok(row.map(score_record))
    }

    /// `(at, score)` of up to `limit` scores of `service` within `[from, to]`, oldest first (the
    /// newest `limit` when there are more): the points of a trend line, without the terms.
    pub async fn score_points(
        &self,
        service: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, f64)>, StoreError> {
        let mut points: Vec<(DateTime<Utc>, f64)> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("SELECT at, score FROM scores WHERE service = ");
            q.push_bind(service).push(" AND at >= ");
            <Db as Statements>::push_time(&mut q, from);
            q.push(" AND at <= ");
            <Db as Statements>::push_time(&mut q, to);
            q.push(" ORDER BY at DESC, id DESC LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading the score trend of {service}")))?;
        points.reverse();
        Ok(points)
    }
}

fn score_record(row: ScoreRow) -> ScoreRecord {
    ScoreRecord {
        service: row.service,
        at: row.at,
        score: row.score,
        model: row.model,
        details: row.details.0,
    }
}
