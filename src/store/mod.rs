//! The store: runs, results and baseline state in SQLite (default) or PostgreSQL, same schema.
//!
//! **Two pools, one code path.** The store holds a small enum over `SqlitePool` and `PgPool`
//! rather than `sqlx::Any`: the Any driver carries no timestamp or JSON types, so TIMESTAMPTZ
//! and JSONB columns could not be used on PostgreSQL. Each query is written once inside the
//! `on_pool!` macro, which expands it for both pools with `Db` naming the backend; the write
//! statements are written once in `statements.rs`. What differs between backends is how a
//! timestamp is bound, how writers are serialised (see `serialize_writers`) and the migration
//! folders. SQL gets its placeholders from `QueryBuilder`,
//! which writes `?` or `$n` as each backend wants.
//!
//! **Schema** (`migrations/sqlite`, `migrations/postgres`: same tables and columns):
//! `runs` (one row per run), `results` (one row per check and series, indexed by
//! `(check_name, series, started_at)`, `(check_name, started_at, id)`, `(started_at, id)` and
//! `run_id`), `baselines` (EWMA state keyed by `(check_name, series)`), `probe_memory` (what a
//! probe keeps between runs, one row per check, `memory.rs`), and for the daemon
//! `check_state` (latest state per check, see `state.rs`), `events` (the SSE log, `events.rs`),
//! `scores` + `latest_scores` and `job_runs`. Timestamps are TIMESTAMPTZ on PostgreSQL and
//! fixed-format UTC text on SQLite, both at microsecond precision.
//!
//! **Sharing.** SQLite files run in WAL mode with a busy timeout, so a daemon and a CLI run can
//! use one file at once. [`Store::save_runs`] writes a batch of runs, their results, baseline
//! updates, probe memories, check states and events in one transaction of multi-row statements: a failure
//! leaves none of them behind.

mod chunks;
mod connect;
mod location;
mod rows;
mod statements;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::baseline::EwmaState;
use crate::result::{CheckResult, RunRecord};
use crate::score::CheckState;
use chunks::sized_chunks;
pub use location::{ACCEPTED_SCHEMES, Location};
use rows::{
    BASELINE_COLUMNS, BaselineRow, RESULT_COLUMNS, RUN_COLUMNS, ResultRow, RunRow, baseline_rows,
};
use statements::Statements;

#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Identity of a baseline: (check name, series key).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BaselineKey {
    pub check: String,
    pub series: String,
}

/// Rows per multi-row INSERT or names per `IN (…)` list: 500 results × 21 columns stays well
/// below the bind-parameter limits of SQLite (32,766) and PostgreSQL (65,535).
const BATCH: usize = 500;

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` against whichever pool `$store` holds, with `$pool` bound to it and `$db` naming
/// its `sqlx::Database` type. The body is type-checked once per backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => {
                type $db = sqlx::Sqlite;
                $body
            }
            Pool::Postgres($pool) => {
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

// Declared after `on_pool!`, which they use.
mod drills;
mod events;
mod history;
mod memory;
mod outbox;
mod plans;
mod playbook_guards;
mod playbooks;
mod reports;
mod scores;
pub mod shadow;
mod silences;
mod state;
mod upkeep;

pub use events::{NewEvent, StoredEvent};
pub use history::HistoryPoint;
pub use memory::ProbeMemory;
pub use outbox::{NewNotification, OutboxEntry, OutboxStatus};
pub use plans::QueryPlan;
pub use playbook_guards::{Admission, ApprovalDecision, LockHolder, NewApproval, StoredApproval};
pub use playbooks::{DEFAULT_RUN_LIMIT, RunFilter};
pub use scores::ScoreRecord;
pub use silences::{NewSilence, StoredSilence};
pub use upkeep::PruneCounts;

/// Runs, results and baselines, in SQLite or PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// Only the backend: nothing that could ever carry connection details (hosts, users, passwords)
/// ends up in a log line that prints a store.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating when needed) and migrates the store at `url`: `sqlite://PATH` (relative
    /// to the current directory), `sqlite::memory:`, `postgres://…` or `postgresql://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let pool = match Location::parse(url)? {
            Location::SqliteFile(path) => Pool::Sqlite(connect::open_sqlite_file(&path).await?),
            Location::SqliteMemory => Pool::Sqlite(connect::open_sqlite_memory().await?),
            Location::Postgres(url) => Pool::Postgres(connect::open_postgres(&url).await?),
        };
        Ok(Store { pool })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Stored baselines of every series of the named checks.
    pub async fn baselines(
        &self,
        checks: &[String],
    ) -> Result<HashMap<BaselineKey, EwmaState>, StoreError> {
        let mut found = Vec::new();
        for names in checks.chunks(BATCH) {
            let rows: Vec<BaselineRow> = on_pool!(self, |pool, Db| {
                let mut q = QueryBuilder::<Db>::new(format!(
                    "SELECT {BASELINE_COLUMNS} FROM baselines WHERE check_name IN ("
                ));
                let mut list = q.separated(", ");
                for name in names {
                    list.push_bind(name.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(pool).await
            })
            .map_err(failed("reading baselines"))?;
            found.extend(rows);
        }
        found.into_iter().map(BaselineRow::into_entry).collect()
    }

    /// Writes a run, its results and the baseline updates in one transaction (see
    /// [`Store::save_runs`]). Results must name this run (`run_id`); a failure at any point
    /// leaves nothing of the run behind.
    pub async fn save_run(
        &self,
        run: &RunRecord,
        results: &[CheckResult],
        baselines: &[(BaselineKey, EwmaState)],
    ) -> Result<(), StoreError> {
        self.save_run_with_memory(run, results, baselines, &[])
            .await
    }

    /// [`Store::save_run`], also replacing the probe memories of the checks in `memories`, in
    /// the same transaction.
    pub async fn save_run_with_memory(
        &self,
        run: &RunRecord,
        results: &[CheckResult],
        baselines: &[(BaselineKey, EwmaState)],
        memories: &[ProbeMemory],
    ) -> Result<(), StoreError> {
        self.save_batch(&[(run, results)], baselines, memories, &[])
            .await
            .map(|_| ())
    }

    /// Writes a batch of runs with their results, the baseline updates, the resulting check states
    /// and `events`, in ONE transaction of multi-row statements, and returns the events with
    /// their ids. Results must name a run of the batch. This is the daemon's writer: it collects
    /// finished runs for a moment and saves them together, so a transaction (and on SQLite an
    /// fsync) is paid per batch, not per check.
    pub async fn save_runs(
        &self,
        batch: &[(RunRecord, Vec<CheckResult>)],
        baselines: &[(BaselineKey, EwmaState)],
        events: &[NewEvent],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.save_runs_with_memory(batch, baselines, &[], events)
            .await
    }

    /// [`Store::save_runs`], also replacing the probe memories of the checks in `memories` (the
    /// last of a check winning), in the same transaction.
    pub async fn save_runs_with_memory(
        &self,
        batch: &[(RunRecord, Vec<CheckResult>)],
        baselines: &[(BaselineKey, EwmaState)],
        memories: &[ProbeMemory],
        events: &[NewEvent],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let borrowed: Vec<(&RunRecord, &[CheckResult])> = batch
            .iter()
            .map(|(run, results)| (run, results.as_slice()))
            .collect();
        self.save_batch(&borrowed, baselines, memories, events)
            .await
    }

    async fn save_batch(
        &self,
        batch: &[(&RunRecord, &[CheckResult])],
        baselines: &[(BaselineKey, EwmaState)],
        memories: &[ProbeMemory],
        events: &[NewEvent],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let run_rows: Vec<RunRow> = batch
            .iter()
            .map(|(run, _)| RunRow::from_record(run))
            .collect::<Result<_, _>>()?;
        let all_results = || batch.iter().flat_map(|(_, results)| results.iter());
        let result_rows: Vec<ResultRow> = all_results()
            .map(ResultRow::from_result)
            .collect::<Result<_, _>>()?;
        let baseline_rows = baseline_rows(baselines)?;
        let memory_rows = memory::memory_rows(memories);
        let (continuing, replacing): (Vec<_>, Vec<_>) = state::fold_batch(all_results())
            .into_iter()
            .partition(|u| u.continues_streak);
        let event_rows: Vec<events::NewEventRow> =
            events.iter().map(events::NewEventRow::from_event).collect();
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            serialize_writers::<Db>(&mut tx).await?;
            for chunk in sized_chunks(&run_rows) {
                Db::insert_runs(chunk).build().execute(&mut *tx).await?;
            }
            for chunk in sized_chunks(&result_rows) {
                Db::insert_results(chunk).build().execute(&mut *tx).await?;
            }
            for chunk in sized_chunks(&baseline_rows) {
                Db::upsert_baselines(chunk)
                    .build()
                    .execute(&mut *tx)
                    .await?;
            }
            for chunk in sized_chunks(&memory_rows) {
                Db::upsert_probe_memories(chunk)
                    .build()
                    .execute(&mut *tx)
                    .await?;
            }
            for (updates, continues) in [(&continuing, true), (&replacing, false)] {
                for chunk in sized_chunks(updates) {
                    Db::upsert_check_states(chunk, continues)
                        .build()
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let stored = events::append_in::<Db>(&mut tx, &event_rows).await?;
            tx.commit().await?;
            Ok(stored)
        }
        .await)
        .map_err(failed(&describe_batch(batch)))
    }

    /// The latest state of every check that has one, by check name.
    pub async fn check_states(&self) -> Result<HashMap<String, CheckState>, StoreError> {
        let rows: Vec<state::CheckStateRow> = on_pool!(self, |pool, Db| {
            QueryBuilder::<Db>::new(format!(
                "SELECT {} FROM check_state",
                state::CHECK_STATE_COLUMNS
            ))
            .build_query_as()
            .fetch_all(pool)
            .await
        })
        .map_err(failed("reading check states"))?;
        rows.into_iter()
            .map(state::CheckStateRow::into_entry)
            .collect()
    }

    /// Up to `limit` results, newest first, of one check or of all, taken at or after `since`.
    /// Served by the indexes `results (check_name, started_at, id)` and `results (started_at, id)`.
    pub async fn query_results(
        &self,
        check: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let rows: Vec<ResultRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("");
            push_query_results(&mut q, check, since, limit);
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading results"))?;
        rows.into_iter().map(ResultRow::into_result).collect()
    }

    /// The run with this id, if stored.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row: Option<RunRow> = on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = "));
            q.push_bind(id);
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading run {id}")))?;
        row.map(RunRow::into_record).transpose()
    }

    /// The last `limit` runs, newest first.
    pub async fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let rows: Vec<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT "
            ));
            q.push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading recent runs"))?;
        rows.into_iter().map(RunRow::into_record).collect()
    }

    /// Every result of a run, in the order they were saved.
    pub async fn results_of_run(&self, run_id: &str) -> Result<Vec<CheckResult>, StoreError> {
        let rows: Vec<ResultRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE run_id = "
            ));
            q.push_bind(run_id);
            q.push(" ORDER BY id");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading results of run {run_id}")))?;
        rows.into_iter().map(ResultRow::into_result).collect()
    }

    /// The last `limit` results of one series of a check, newest first.
    pub async fn recent_results(
        &self,
        check: &str,
        series: &str,
        limit: usize,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let rows: Vec<ResultRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE check_name = "
            ));
            q.push_bind(check).push(" AND series = ").push_bind(series);
            q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading results of {check}")))?;
        rows.into_iter().map(ResultRow::into_result).collect()
    }
}

/// Appends the query behind [`Store::query_results`] to `q`.
fn push_query_results<Db: Statements>(
    q: &mut QueryBuilder<Db>,
    check: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: u32,
) where
    for<'q> &'q str: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    q.push(format!("SELECT {RESULT_COLUMNS} FROM results"));
    let mut glue = " WHERE ";
    if let Some(check) = check {
        q.push(glue).push("check_name = ").push_bind(check);
        glue = " AND ";
    }
    if let Some(since) = since {
        q.push(glue).push("started_at >= ");
        Db::push_time(q, since);
    }
    q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
        .push_bind(sql_limit(limit as usize));
}

/// Makes the transaction on `conn` wait for other writers, and them for it, until it ends.
///
/// On PostgreSQL this is a transaction-scoped advisory lock, taken first by every transaction
/// that saves runs, appends events or deletes baselines. It gives two guarantees: event ids
/// become visible in increasing order (an id taken by a transaction that commits later than a
/// larger one would be skipped by a reader resuming after the larger), and two writers (a daemon
/// and a CLI run) never deadlock on baseline and check-state rows they upsert in different
/// orders. Writes are short batches, so waiting costs little; SQLite works this way anyway.
async fn serialize_writers<Db>(conn: &mut Db::Connection) -> Result<(), sqlx::Error>
where
    Db: Statements,
    Db::Arguments: sqlx::IntoArguments<Db>,
    for<'c> &'c mut Db::Connection: sqlx::Executor<'c, Database = Db>,
{
    if let Some(mut lock) = Db::lock_writers() {
        lock.build().execute(conn).await?;
    }
    Ok(())
}

/// What a failed batch save was, for its error message.
fn describe_batch(batch: &[(&RunRecord, &[CheckResult])]) -> String {
    match batch {
        [(run, _)] => format!("saving run {}", run.id),
        [(first, _), ..] => format!("saving {} runs ({} …)", batch.len(), first.id),
        [] => "saving an empty batch".into(),
    }
}

/// `LIMIT` takes a signed 64-bit integer in both backends.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Wraps a database error with what the store was doing. Registered secrets are masked, in case
/// a driver message quotes a value that holds one.
fn failed(doing: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError(crate::secrets::redact_owned(format!("{doing}: {e}")))
}
