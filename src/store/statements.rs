//! The write statements of [`super::Store::save_run`], written once and implemented for both
//! backends by a macro. Inside each impl the database type is concrete, so binds need no trait
//! bounds; the only difference between backends is how a timestamp is bound (`$time`).

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::rows::{
    BASELINE_COLUMNS, BaselineRow, RESULT_COLUMNS, RUN_COLUMNS, ResultRow, RunRow, sqlite_time,
    stored_time,
};

pub trait Statements: sqlx::Database {
    fn insert_run(run: &RunRow) -> QueryBuilder<Self>;
    /// One multi-row INSERT; callers keep `rows` to a batch.
    fn insert_results(rows: &[ResultRow]) -> QueryBuilder<Self>;
    /// One multi-row upsert; `rows` must not repeat a key (PostgreSQL refuses that).
    fn upsert_baselines(rows: &[BaselineRow]) -> QueryBuilder<Self>;
}

macro_rules! impl_statements {
    ($db:ty, $time:path) => {
        impl Statements for $db {
            fn insert_run(r: &RunRow) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new(format!("INSERT INTO runs ({RUN_COLUMNS}) "));
                q.push_values([r], |mut b, r| {
                    b.push_bind(r.id.as_str())
                        .push_bind($time(r.started_at))
                        .push_bind($time(r.finished_at))
                        .push_bind(r.revision.as_str())
                        .push_bind(r.triggered_by.as_str())
                        .push_bind(r.count_ok)
                        .push_bind(r.count_warn)
                        .push_bind(r.count_crit)
                        .push_bind(r.count_error)
                        .push_bind(r.count_skipped);
                });
                q
            }

            fn insert_results(rows: &[ResultRow]) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new(format!("INSERT INTO results ({RESULT_COLUMNS}) "));
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.run_id.as_str())
                        .push_bind(r.check_name.as_str())
                        .push_bind(r.kind.as_str())
                        .push_bind(r.target.as_str())
                        .push_bind(r.series.as_str())
                        .push_bind(r.status.as_str())
                        .push_bind(r.value_num)
                        .push_bind(r.value_text.as_deref())
                        .push_bind(r.unit.as_str())
                        .push_bind(r.duration_ms)
                        .push_bind(r.message.as_str())
                        .push_bind(r.baseline_mean)
                        .push_bind(r.baseline_stddev)
                        .push_bind(r.baseline_lower)
                        .push_bind(r.baseline_upper)
                        .push_bind(r.baseline_samples)
                        .push_bind(r.shadow)
                        .push_bind(r.service.as_deref())
                        .push_bind(Json(&r.labels.0))
                        .push_bind(r.revision.as_str())
                        .push_bind($time(r.started_at));
                });
                q
            }

            fn upsert_baselines(rows: &[BaselineRow]) -> QueryBuilder<Self> {
                let mut q =
                    QueryBuilder::new(format!("INSERT INTO baselines ({BASELINE_COLUMNS}) "));
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.check_name.as_str())
                        .push_bind(r.series.as_str())
                        .push_bind(r.mean)
                        .push_bind(r.variance)
                        .push_bind(r.samples)
                        .push_bind(r.updated_at.map($time));
                });
                q.push(
                    " ON CONFLICT (check_name, series) DO UPDATE SET mean = excluded.mean, \
                     variance = excluded.variance, samples = excluded.samples, \
                     updated_at = excluded.updated_at",
                );
                q
            }
        }
    };
}

impl_statements!(sqlx::Sqlite, sqlite_time);
impl_statements!(sqlx::Postgres, postgres_time);

/// PostgreSQL takes the timestamp as TIMESTAMPTZ, at its microsecond precision.
fn postgres_time(at: DateTime<Utc>) -> DateTime<Utc> {
    stored_time(at)
}
