//! Chaos drills in the store: the fault journal (`fault_journal`) and drill runs (`drill_runs`).
//!
//! **The journal is what makes every fault revertible.** A fault is written BEFORE it is
//! injected, then updated with its revert state, then marked reverted; rows not reverted are
//! active and a recovery reverts them from the row alone (see `chaos::fault::journal`). A row's
//! fault fields and revert state are kept verbatim — a revert needs the real command, environment
//! and paths — while error texts and reports, which are for reading, have registered secrets
//! masked.
//!
//! Every write is one single-row statement: no transaction here can deadlock with another or
//! affect the order of event ids, so the writers' advisory lock (`serialize_writers`) is not
//! taken.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::events::redact_json;
use super::outbox::BindTime;
use super::{Pool, Store, StoreError, failed, sql_limit};
use crate::chaos::fault::{
    DrillRunRecord, FaultOwner, JournalEntry, JournalStatus, NewJournalEntry,
};
use crate::secrets;

const JOURNAL_COLUMNS: &str = "id, drill_run, drill, fault_index, kind, spec, state, status, \
     intended_at, injected_at, reverted_at, inject_error, revert_error, outcome, host, owner_pid, \
     owner_start";

const DRILL_RUN_COLUMNS: &str = "id, drill, status, started_at, finished_at, report";

/// A row of `fault_journal`.
#[derive(sqlx::FromRow)]
struct JournalRow {
    id: i64,
    drill_run: String,
    drill: String,
    fault_index: i64,
    kind: String,
    spec: Json<serde_json::Value>,
    state: Option<Json<serde_json::Value>>,
    status: String,
    intended_at: DateTime<Utc>,
    injected_at: Option<DateTime<Utc>>,
    reverted_at: Option<DateTime<Utc>>,
    inject_error: Option<String>,
    revert_error: Option<String>,
    outcome: Option<String>,
    host: String,
    owner_pid: i64,
    owner_start: Option<i64>,
}

impl JournalRow {
    fn into_entry(self) -> Result<JournalEntry, StoreError> {
        Ok(JournalEntry {
            id: self.id,
            drill_run: self.drill_run,
            drill: self.drill,
            index: usize::try_from(self.fault_index).unwrap_or(usize::MAX),
            kind: self.kind,
            spec: self.spec.0,
            state: self.state.map(|s| s.0),
            status: JournalStatus::parse(&self.status).ok_or_else(|| {
                StoreError(format!(
                    "fault journal entry {} has an unknown status '{}'",
                    self.id, self.status
                ))
            })?,
            intended_at: self.intended_at,
            injected_at: self.injected_at,
            reverted_at: self.reverted_at,
            inject_error: self.inject_error,
            revert_error: self.revert_error,
            outcome: self.outcome,
            owner: FaultOwner {
                host: self.host,
                pid: i32::try_from(self.owner_pid).unwrap_or(0),
                start_time: self.owner_start.and_then(|t| u64::try_from(t).ok()),
            },
        })
    }
}

/// A row of `drill_runs`.
#[derive(sqlx::FromRow)]
struct DrillRunRow {
    id: String,
    drill: String,
    status: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    report: Json<serde_json::Value>,
}

impl DrillRunRow {
    fn into_record(self) -> DrillRunRecord {
        DrillRunRecord {
            id: self.id,
            drill: self.drill,
            status: self.status,
            started_at: self.started_at,
            finished_at: self.finished_at,
            report: self.report.0,
        }
    }
}

impl Store {
    /// Journals a fault about to be injected (`intended`) and returns its entry id.
    pub async fn journal_intend(&self, entry: &NewJournalEntry<'_>) -> Result<i64, StoreError> {
        let index = i64::try_from(entry.index).unwrap_or(i64::MAX);
        let owner_start = entry.owner.start_time.and_then(|t| i64::try_from(t).ok());
        let (id,): (i64,) = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO fault_journal (drill_run, drill, fault_index, kind, spec, status, \
                 intended_at, host, owner_pid, owner_start) ",
            );
            q.push_values([entry], |mut b, e| {
                b.push_bind(e.drill_run)
                    .push_bind(e.drill)
                    .push_bind(index)
                    .push_bind(e.kind)
                    .push_bind(Json(e.spec))
                    .push_bind(JournalStatus::Intended.as_str())
                    .push_bind(<Db as BindTime>::time(e.at))
                    .push_bind(e.owner.host.as_str())
                    .push_bind(i64::from(e.owner.pid))
                    .push_bind(owner_start);
            });
            q.push(" RETURNING id");
            q.build_query_as().fetch_one(pool).await
        })
        .map_err(failed(&format!(
            "journaling fault {} of drill run {}",
            entry.index, entry.drill_run
        )))?;
        Ok(id)
    }

    /// Records that entry `id` was injected, with the state its revert needs.
    pub async fn journal_injected(
        &self,
        id: i64,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("UPDATE fault_journal SET status = ");
            q.push_bind(JournalStatus::Injected.as_str())
                .push(", state = ")
                .push_bind(Json(state))
                .push(", injected_at = ")
                .push_bind(<Db as BindTime>::time(at));
            q.push(" WHERE id = ")
                .push_bind(id)
                .push(" AND status = ")
                .push_bind(JournalStatus::Intended.as_str());
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!(
            "journaling the injection of fault entry {id}"
        )))?;
        expect_one(affected, id, "intended")
    }

    /// Records why the inject of entry `id` failed (the entry stays active until reverted).
    pub async fn journal_inject_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let error = secrets::redact_owned(error.to_string());
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("UPDATE fault_journal SET inject_error = ");
            q.push_bind(error.as_str())
                .push(" WHERE id = ")
                .push_bind(id);
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!(
            "journaling the failed inject of fault entry {id}"
        )))?;
        expect_one(affected, id, "journaled")
    }

    /// Records a revert of entry `id`: Ok(what was done) marks it `reverted`; Err(reason) keeps
    /// it active and records the reason.
    pub async fn journal_reverted(
        &self,
        id: i64,
        outcome: Result<&str, &str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("UPDATE fault_journal SET ");
            match outcome {
                Ok(done) => {
                    q.push("status = ")
                        .push_bind(JournalStatus::Reverted.as_str())
                        .push(", reverted_at = ")
                        .push_bind(<Db as BindTime>::time(at))
                        .push(", revert_error = NULL, outcome = ")
                        .push_bind(secrets::redact_owned(done.to_string()));
                }
                Err(why) => {
                    q.push("revert_error = ")
                        .push_bind(secrets::redact_owned(why.to_string()));
                }
            }
            q.push(" WHERE id = ")
                .push_bind(id)
                .push(" AND status <> ")
                .push_bind(JournalStatus::Reverted.as_str());
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!(
            "journaling the revert of fault entry {id}"
        )))?;
        expect_one(affected, id, "active")
    }

    /// Every active entry (intended or injected, not reverted), oldest first.
    pub async fn journal_active(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let rows: Vec<JournalRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {JOURNAL_COLUMNS} FROM fault_journal WHERE status IN ("
            ));
            q.push_bind(JournalStatus::Intended.as_str())
                .push(", ")
                .push_bind(JournalStatus::Injected.as_str())
                .push(") ORDER BY id");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading the active faults"))?;
        rows.into_iter().map(JournalRow::into_entry).collect()
    }

    /// Every entry of one drill run, in journal order.
    pub async fn journal_of_run(&self, drill_run: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let rows: Vec<JournalRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {JOURNAL_COLUMNS} FROM fault_journal WHERE drill_run = "
            ));
            q.push_bind(drill_run).push(" ORDER BY id");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!(
            "reading the faults of drill run {drill_run}"
        )))?;
        rows.into_iter().map(JournalRow::into_entry).collect()
    }

    /// Saves a drill run; saving the same id again replaces it (a run saved when it starts and
    /// again when it ends).
    pub async fn save_drill_run(&self, run: &DrillRunRecord) -> Result<(), StoreError> {
        let report = redact_json(run.report.clone());
        on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("INSERT INTO drill_runs ({DRILL_RUN_COLUMNS}) "));
            q.push_values([run], |mut b, r| {
                b.push_bind(r.id.as_str())
                    .push_bind(r.drill.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(<Db as BindTime>::time(r.started_at))
                    .push_bind(r.finished_at.map(<Db as BindTime>::time))
                    .push_bind(Json(&report));
            });
            q.push(
                " ON CONFLICT (id) DO UPDATE SET drill = excluded.drill, \
                 status = excluded.status, started_at = excluded.started_at, \
                 finished_at = excluded.finished_at, report = excluded.report",
            );
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("saving drill run {}", run.id)))?;
        Ok(())
    }

    /// The last `limit` drill runs, of one drill or of all, newest first.
    pub async fn recent_drill_runs(
        &self,
        drill: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DrillRunRecord>, StoreError> {
        let rows: Vec<DrillRunRow> = on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("SELECT {DRILL_RUN_COLUMNS} FROM drill_runs"));
            if let Some(drill) = drill {
                q.push(" WHERE drill = ").push_bind(drill);
            }
            q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading drill runs"))?;
        Ok(rows.into_iter().map(DrillRunRow::into_record).collect())
    }
}

/// An update of entry `id` must touch exactly that row.
fn expect_one(affected: u64, id: i64, wanted: &str) -> Result<(), StoreError> {
    if affected == 1 {
        Ok(())
    } else {
        Err(StoreError(format!("no {wanted} fault journal entry {id}")))
    }
}
