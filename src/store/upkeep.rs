//! Housekeeping the daemon needs: the last start of each scheduled job (catch-up after a restart),
//! dropping a check's baselines when what it measures changed, and retention.
//!
//! **Retention deletes in chunks.** A month of history at thousands of checks a minute is millions
//! of rows; one `DELETE` would hold SQLite's write lock (and a long PostgreSQL transaction) for as
//! long as it runs, stalling the daemon's writer. Each chunk is its own short statement, so saves
//! interleave with a prune.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::statements::Statements;
use super::{Pool, Store, StoreError, failed, serialize_writers};

/// Rows deleted per retention statement.
const PRUNE_CHUNK: i64 = 5_000;

/// What a retention pass deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneCounts {
    pub results: u64,
    pub runs: u64,
    pub scores: u64,
    pub events: u64,
    /// Delivered, dead-lettered and folded notifications of the outbox.
    pub notifications: u64,
    /// Finished playbook runs (their steps go with them).
    pub playbook_runs: u64,
    /// Decided or expired approvals.
    pub approvals: u64,
}

/// The rows of one table that a retention pass deletes, as `SELECT id …` (each table's own id
/// column) restricted to rows older than the cutoff bound after it.
struct Expiry {
    table: &'static str,
    /// Selects the ids of expired rows; the cutoff is bound right after this text.
    select_expired: &'static str,
    /// Text after the cutoff (further conditions), before the chunk limit.
    and_then: &'static str,
}

const RESULTS: Expiry = Expiry {
    table: "results",
    select_expired: "SELECT id FROM results WHERE started_at < ",
    and_then: "",
};
/// A run goes once its last result has gone, so no result loses its run (and none is deleted
/// uncounted by the cascade) when a run straddles the cutoff.
const RUNS: Expiry = Expiry {
    table: "runs",
    select_expired: "SELECT id FROM runs WHERE started_at < ",
    and_then: " AND NOT EXISTS (SELECT 1 FROM results WHERE results.run_id = runs.id)",
};
const SCORES: Expiry = Expiry {
    table: "scores",
    select_expired: "SELECT id FROM scores WHERE at < ",
    and_then: "",
};
const EVENTS: Expiry = Expiry {
    table: "events",
    select_expired: "SELECT id FROM events WHERE at < ",
    and_then: "",
};

/// Finished playbook runs (a running one is kept whatever its age); the steps follow by cascade.
const PLAYBOOK_RUNS: Expiry = Expiry {
    table: "playbook_runs",
    select_expired: "SELECT id FROM playbook_runs WHERE status <> 'running' AND started_at < ",
    and_then: "",
};
/// Approvals past their expiry (decided or not: an expired one can no longer be decided).
const APPROVALS: Expiry = Expiry {
    table: "playbook_approvals",
    select_expired: "SELECT id FROM playbook_approvals WHERE expires_at < ",
    and_then: "",
};

/// Finished outbox rows (never pending ones). A digest goes only once no folded row points at it.
const NOTIFICATIONS: Expiry = Expiry {
    table: "notifications",
    select_expired: "SELECT id FROM notifications WHERE status IN ('sent', 'dead', 'folded') AND created_at < ",
    and_then: " AND NOT EXISTS (SELECT 1 FROM notifications f WHERE f.folded_into = notifications.id)",
};

fn delete_chunk<Db: Statements>(expiry: &Expiry, before: DateTime<Utc>) -> QueryBuilder<Db>
where
    i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    let mut q = QueryBuilder::<Db>::new(format!(
        "DELETE FROM {} WHERE id IN ({}",
        expiry.table, expiry.select_expired
    ));
    Db::push_time(&mut q, before);
    q.push(expiry.and_then)
        .push(" LIMIT ")
        .push_bind(PRUNE_CHUNK);
    q.push(")");
    q
}

impl Store {
    /// Remembers that `job` (`check:NAME`, `suite:NAME`) started for its fire time `planned`.
    /// A start recorded late for an older fire time changes nothing.
    pub async fn record_job_start(
        &self,
        job: &str,
        planned: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool, Db| {
            Db::upsert_job_run(job, planned, started)
                .build()
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(failed(&format!("recording the start of {job}")))
    }

    /// The planned time of the newest recorded start of every job.
    pub async fn job_last_runs(&self) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows: Vec<(String, DateTime<Utc>)> = on_pool!(self, |pool, Db| {
            QueryBuilder::<Db>::new("SELECT job, planned_at FROM job_runs")
                .build_query_as()
                .fetch_all(pool)
                .await
        })
        .map_err(failed("reading job starts"))?;
        Ok(rows.into_iter().collect())
    }

    /// Forgets every learned baseline of `check` (all series), for when what it measures changed
    /// and the old mean would judge the new values. Returns how many series were dropped.
    pub async fn delete_baselines(&self, check: &str) -> Result<u64, StoreError> {
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            serialize_writers::<Db>(&mut tx).await?;
            let mut q = QueryBuilder::<Db>::new("DELETE FROM baselines WHERE check_name = ");
            q.push_bind(check);
            let deleted = q.build().execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(deleted)
        }
        .await)
        .map_err(failed(&format!("deleting baselines of {check}")))
    }

    /// Retention: deletes results, runs, scores, events and finished notifications older than
    /// `before`. Baselines, check
    /// states and job starts are state, not history, and are kept. Latest scores older than
    /// `before` (services no longer scored) go too, uncounted.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<PruneCounts, StoreError> {
        // Results first: runs go only once their results have.
        let counts = PruneCounts {
            results: self.delete_expired(&RESULTS, before).await?,
            runs: self.delete_expired(&RUNS, before).await?,
            scores: self.delete_expired(&SCORES, before).await?,
            events: self.delete_expired(&EVENTS, before).await?,
            notifications: self.delete_expired(&NOTIFICATIONS, before).await?,
            playbook_runs: self.delete_expired(&PLAYBOOK_RUNS, before).await?,
            approvals: self.delete_expired(&APPROVALS, before).await?,
        };
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("DELETE FROM latest_scores WHERE at < ");
            Db::push_time(&mut q, before);
            q.build().execute(pool).await.map(|_| ())
        })
        .map_err(failed("pruning latest scores"))?;
        Ok(counts)
    }

    /// Deletes the expired rows of one table chunk by chunk, until a chunk comes back short.
    async fn delete_expired(
        &self,
        expiry: &Expiry,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = on_pool!(self, |pool, Db| {
                delete_chunk::<Db>(expiry, before)
                    .build()
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
            .map_err(failed(&format!("pruning {}", expiry.table)))?;
            total += deleted;
            if deleted < PRUNE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}
