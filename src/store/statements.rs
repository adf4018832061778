//! The write statements of the store, written once and implemented for both backends by a macro.
//! Inside each impl the database type is concrete, so binds need no trait bounds; what differs
//! between backends is how a timestamp is bound (`$time`) and how event appends are serialised.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::events::{EVENT_COLUMNS, NewEventRow};
use super::memory::{PROBE_MEMORY_COLUMNS, ProbeMemoryRow};
use super::rows::{
    BASELINE_COLUMNS, BaselineRow, RESULT_COLUMNS, RUN_COLUMNS, ResultRow, RunRow, sqlite_time,
    stored_time,
};
use super::scores::{SCORE_COLUMNS, ScoreRow};
use super::state::{CHECK_STATE_COLUMNS, StateUpdate};

/// Key of the PostgreSQL advisory lock that serialises writers (the bytes of "patrolWR").
const WRITERS_LOCK: i64 = 0x7061_7472_6f6c_5752;

pub trait Statements: sqlx::Database {
    /// Binds a timestamp the way this backend stores it.
    fn push_time(q: &mut QueryBuilder<Self>, at: DateTime<Utc>);
    /// A statement that makes concurrent writing transactions wait for each other until commit;
    /// `None` when the backend already has one writer at a time (SQLite). See
    /// [`super::serialize_writers`].
    fn lock_writers() -> Option<QueryBuilder<Self>>;
    /// One multi-row INSERT; callers keep `rows` to a batch.
    fn insert_runs(rows: &[RunRow]) -> QueryBuilder<Self>;
    /// One multi-row INSERT; callers keep `rows` to a batch.
    fn insert_results(rows: &[ResultRow]) -> QueryBuilder<Self>;
    /// One multi-row upsert; `rows` must not repeat a key (PostgreSQL refuses that).
    fn upsert_baselines(rows: &[BaselineRow]) -> QueryBuilder<Self>;
    /// One multi-row upsert of probe memories (one row per check, replaced whole); `rows` must
    /// not repeat a check.
    fn upsert_probe_memories(rows: &[ProbeMemoryRow]) -> QueryBuilder<Self>;
    /// One multi-row upsert of check states (one row per check). A stored state newer than the
    /// update is kept. With `continues_streak`, a check that was already failing keeps its
    /// `failing_since`; otherwise the update's value (set or cleared) replaces it.
    fn upsert_check_states(rows: &[StateUpdate], continues_streak: bool) -> QueryBuilder<Self>;
    /// One multi-row INSERT returning the stored events with their ids.
    fn insert_events(rows: &[NewEventRow]) -> QueryBuilder<Self>;
    fn insert_scores(rows: &[ScoreRow]) -> QueryBuilder<Self>;
    /// One row per service; a stored score newer than the update is kept.
    fn upsert_latest_scores(rows: &[ScoreRow]) -> QueryBuilder<Self>;
    /// Remembers a job's newest start; an older start recorded late changes nothing.
    fn upsert_job_run(
        job: &str,
        planned: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> QueryBuilder<Self>;
    /// The VALUES of score rows, shared by the history insert and the latest-score upsert.
    fn push_score_values(q: &mut QueryBuilder<Self>, rows: &[ScoreRow]);
}

macro_rules! impl_statements {
    ($db:ty, $time:path, $lock:expr) => {
        impl Statements for $db {
            fn push_time(q: &mut QueryBuilder<Self>, at: DateTime<Utc>) {
                q.push_bind($time(at));
            }

            fn lock_writers() -> Option<QueryBuilder<Self>> {
                $lock
            }

            fn insert_runs(rows: &[RunRow]) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new(format!("INSERT INTO runs ({RUN_COLUMNS}) "));
                q.push_values(rows, |mut b, r| {
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
                        .push_bind(r.baseline_method.as_deref())
                        .push_bind(r.anomaly_score)
                        .push_bind(r.shadow)
                        .push_bind(r.service.as_deref())
                        .push_bind(Json(&r.labels.0))
                        .push_bind(r.revision.as_str())
                        .push_bind($time(r.started_at))
                        .push_bind(r.attachment.as_ref().map(|a| Json(&a.0)));
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

            fn upsert_probe_memories(rows: &[ProbeMemoryRow]) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new(format!(
                    "INSERT INTO probe_memory ({PROBE_MEMORY_COLUMNS}) "
                ));
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.check_name.as_str())
                        .push_bind(r.fingerprint.as_str())
                        .push_bind(Json(&r.state.0))
                        .push_bind($time(r.updated_at));
                });
                q.push(
                    " ON CONFLICT (check_name) DO UPDATE SET fingerprint = excluded.fingerprint, \
                     state = excluded.state, updated_at = excluded.updated_at",
                );
                q
            }

            fn upsert_check_states(
                rows: &[StateUpdate],
                continues_streak: bool,
            ) -> QueryBuilder<Self> {
                let mut q =
                    QueryBuilder::new(format!("INSERT INTO check_state ({CHECK_STATE_COLUMNS}) "));
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.check_name.as_str())
                        .push_bind(r.status.as_str())
                        .push_bind(r.failing_since.map($time))
                        .push_bind(r.value)
                        .push_bind($time(r.at));
                });
                q.push(if continues_streak {
                    " ON CONFLICT (check_name) DO UPDATE SET failing_since = \
                     COALESCE(check_state.failing_since, excluded.failing_since), "
                } else {
                    " ON CONFLICT (check_name) DO UPDATE SET \
                     failing_since = excluded.failing_since, "
                });
                q.push(
                    "status = excluded.status, value = excluded.value, at = excluded.at \
                     WHERE excluded.at >= check_state.at",
                );
                q
            }

            fn insert_events(rows: &[NewEventRow]) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new("INSERT INTO events (kind, at, data) ");
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.kind.as_str())
                        .push_bind($time(r.at))
                        .push_bind(Json(&r.data));
                });
                q.push(format!(" RETURNING {EVENT_COLUMNS}"));
                q
            }

            fn insert_scores(rows: &[ScoreRow]) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new(format!("INSERT INTO scores ({SCORE_COLUMNS}) "));
                Self::push_score_values(&mut q, rows);
                q
            }

            fn upsert_latest_scores(rows: &[ScoreRow]) -> QueryBuilder<Self> {
                let mut q =
                    QueryBuilder::new(format!("INSERT INTO latest_scores ({SCORE_COLUMNS}) "));
                Self::push_score_values(&mut q, rows);
                q.push(
                    " ON CONFLICT (service) DO UPDATE SET at = excluded.at, \
                     score = excluded.score, model = excluded.model, details = excluded.details \
                     WHERE excluded.at >= latest_scores.at",
                );
                q
            }

            fn upsert_job_run(
                job: &str,
                planned: DateTime<Utc>,
                started: DateTime<Utc>,
            ) -> QueryBuilder<Self> {
                let mut q = QueryBuilder::new("INSERT INTO job_runs (job, planned_at, started_at) ");
                q.push_values([()], |mut b, ()| {
                    b.push_bind(job)
                        .push_bind($time(planned))
                        .push_bind($time(started));
                });
                q.push(
                    " ON CONFLICT (job) DO UPDATE SET planned_at = excluded.planned_at, \
                     started_at = excluded.started_at WHERE excluded.planned_at >= job_runs.planned_at",
                );
                q
            }

            fn push_score_values(q: &mut QueryBuilder<Self>, rows: &[ScoreRow]) {
                q.push_values(rows, |mut b, r| {
                    b.push_bind(r.service.as_str())
                        .push_bind($time(r.at))
                        .push_bind(r.score)
                        .push_bind(r.model.as_str())
                        .push_bind(Json(&r.details.0));
                });
            }
        }
    };
}

impl_statements!(sqlx::Sqlite, sqlite_time, None);
impl_statements!(
    sqlx::Postgres,
    postgres_time,
    Some({
        let mut q = QueryBuilder::new("SELECT pg_advisory_xact_lock(");
        q.push_bind(WRITERS_LOCK).push(")");
        q
    })
);

/// PostgreSQL takes the timestamp as TIMESTAMPTZ, at its microsecond precision.
fn postgres_time(at: DateTime<Utc>) -> DateTime<Utc> {
    stored_time(at)
}
