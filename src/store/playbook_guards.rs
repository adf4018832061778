//! The guardrails of playbook runs in the store: locks (`playbook_locks`), rate-limit admissions
//! (`playbook_admissions`) and approvals (`playbook_approvals`).
//!
//! **Correct under concurrency, on both backends.** Two daemons (or a daemon and a CLI run)
//! share the store, so every decision is made by the database, never by reading then writing:
//! - a lock is taken by ONE upsert that inserts the row, or takes over a row whose holder's time
//!   ran out, and returns it only when it is ours; PostgreSQL re-checks the `WHERE` of an
//!   `ON CONFLICT DO UPDATE` against the row's latest version under its row lock, so two racing
//!   takers cannot both see themselves as the holder;
//! - an admission counts the runs in the window and inserts its own in one transaction that is
//!   serialised per (playbook, key): a transaction-scoped advisory lock on PostgreSQL, a write
//!   transaction (`BEGIN IMMEDIATE`) on SQLite;
//! - an approval is decided by one conditional `UPDATE … WHERE decision IS NULL`: the first
//!   decision wins, a later one changes nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Transaction};

use super::outbox::BindTime;
use super::{Pool, Store, StoreError, failed, sql_limit};
use crate::secrets;

/// Namespace (first key) of the two-key advisory locks serialising admissions ("play"); the
/// two-key space does not overlap the one-key space of the writers' lock.
const ADMISSION_LOCK_SPACE: i32 = 0x706c_6179;

const LOCK_COLUMNS: &str = "run_id, holder, acquired_at, expires_at";

const APPROVAL_COLUMNS: &str = "id, run_id, playbook, step, description, input, token_hash, \
     created_at, expires_at, decision, decided_by, decided_at";

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LockHolder {
    pub run_id: String,
    /// `host:pid` of the process running it.
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What [`Store::admit_playbook_run`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted.
    Admitted,
    /// Not counted: the times of the runs admitted within the window, oldest first (at least
    /// the limit's count of them).
    Refused(Vec<DateTime<Utc>>),
}

/// How an approval was decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalDecision {
    Approved,
    Denied,
    /// Nobody decided before it expired.
    Expired,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Approved => "approved",
            ApprovalDecision::Denied => "denied",
            ApprovalDecision::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalDecision> {
        [
            ApprovalDecision::Approved,
            ApprovalDecision::Denied,
            ApprovalDecision::Expired,
        ]
        .into_iter()
        .find(|d| d.as_str() == text)
    }
}

/// An approval to ask.
#[derive(Clone, Debug)]
pub struct NewApproval<'a> {
    pub id: &'a str,
    pub run_id: &'a str,
    pub playbook: &'a str,
    /// None: the whole run waits.
    pub step: Option<&'a str>,
    pub description: &'a str,
    pub input: &'a Value,
    /// SHA-256 (hex) of the link's token; the token itself is never stored.
    pub token_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An approval as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredApproval {
    pub id: String,
    pub run_id: String,
    pub playbook: String,
    pub step: Option<String>,
    pub description: String,
    pub input: Value,
    /// Never shown: only what a presented token is checked against.
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decision: Option<ApprovalDecision>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A row of `playbook_approvals`.
#[derive(sqlx::FromRow)]
struct ApprovalRow {
    id: String,
    run_id: String,
    playbook: String,
    step: Option<String>,
    description: String,
    input: Json<Value>,
    token_hash: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    decision: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
}

impl ApprovalRow {
    fn into_approval(self) -> Result<StoredApproval, StoreError> {
        let decision = match self.decision.as_deref() {
            None => None,
            Some(text) => Some(ApprovalDecision::parse(text).ok_or_else(|| {
                StoreError(format!(
                    "approval {} has an unknown decision '{text}'",
                    self.id
                ))
            })?),
        };
        Ok(StoredApproval {
            id: self.id,
            run_id: self.run_id,
            playbook: self.playbook,
            step: self.step,
            description: self.description,
            input: self.input.0,
            token_hash: self.token_hash,
            created_at: self.created_at,
            expires_at: self.expires_at,
            decision,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
        })
    }
}

/// How each backend opens a transaction that other admissions of the same (playbook, key) wait
/// for until it ends.
trait SerializedBegin: BindTime {
    async fn begin_serialized(
        pool: &sqlx::Pool<Self>,
        scope: &str,
    ) -> Result<Transaction<'static, Self>, sqlx::Error>;
}

impl SerializedBegin for sqlx::Sqlite {
    /// SQLite has one writer at a time: taking the write lock at BEGIN (not at the first write)
    /// keeps two transactions from both counting before either inserts.
    async fn begin_serialized(
        pool: &sqlx::SqlitePool,
        _scope: &str,
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
}

impl SerializedBegin for sqlx::Postgres {
    async fn begin_serialized(
        pool: &sqlx::PgPool,
        scope: &str,
    ) -> Result<Transaction<'static, Self>, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ADMISSION_LOCK_SPACE)
            .bind(scope)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

impl Store {
    /// Takes the lock `key` for `run_id` until `expires_at`: inserts it, or takes over a row
    /// whose holder's time ran out at `now`. `Ok(Err(holder))` when someone else holds it.
    pub async fn acquire_playbook_lock(
        &self,
        key: &str,
        run_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Result<(), LockHolder>, StoreError> {
        // The row may vanish between a refused upsert and reading its holder (released just
        // then): try again, a few times.
        for _ in 0..3 {
            if self
                .try_playbook_lock(key, run_id, holder, now, expires_at)
                .await?
            {
                return Ok(Ok(()));
            }
            if let Some(current) = self.playbook_lock(key).await? {
                return Ok(Err(current));
            }
        }
        Err(StoreError(format!(
            "taking lock {key}: it changed hands three times in a row"
        )))
    }

    /// The one statement that takes the lock; true when it is ours now.
    async fn try_playbook_lock(
        &self,
        key: &str,
        run_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let taken: Option<String> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO playbook_locks (key, run_id, holder, acquired_at, expires_at) VALUES (",
            );
            q.push_bind(key)
                .push(", ")
                .push_bind(run_id)
                .push(", ")
                .push_bind(holder)
                .push(", ")
                .push_bind(<Db as BindTime>::time(now))
                .push(", ")
                .push_bind(<Db as BindTime>::time(expires_at))
                .push(
                    ") ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, \
                     holder = excluded.holder, acquired_at = excluded.acquired_at, \
                     expires_at = excluded.expires_at WHERE playbook_locks.expires_at <= ",
                )
                .push_bind(<Db as BindTime>::time(now))
                .push(" RETURNING run_id");
            q.build_query_scalar().fetch_optional(pool).await
        })
        .map_err(failed(&format!("taking lock {key}")))?;
        Ok(taken.as_deref() == Some(run_id))
    }

    /// Who holds the lock `key`, if anyone (an expired row included).
    pub async fn playbook_lock(&self, key: &str) -> Result<Option<LockHolder>, StoreError> {
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {LOCK_COLUMNS} FROM playbook_locks WHERE key = "
            ));
            q.push_bind(key);
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading lock {key}")))
    }

    /// Releases the lock `key` when `run_id` holds it (a lock taken over after it expired is
    /// not ours to release); true when it was.
    pub async fn release_playbook_lock(&self, key: &str, run_id: &str) -> Result<bool, StoreError> {
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("DELETE FROM playbook_locks WHERE key = ");
            q.push_bind(key).push(" AND run_id = ").push_bind(run_id);
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("releasing lock {key}")))?;
        Ok(affected == 1)
    }

    /// Admits run `run_id` of (`playbook`, `key`) at `now` when fewer than `count` runs were
    /// admitted since `window_start`, counting it; admissions older than the window are
    /// forgotten on the way.
    pub async fn admit_playbook_run(
        &self,
        playbook: &str,
        key: &str,
        run_id: &str,
        count: u32,
        window_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        // Length-prefixed, so that no two (playbook, key) pairs share a scope.
        let scope = format!("{}:{playbook}:{key}", playbook.len());
        on_pool!(self, |pool, Db| async {
            let mut tx = Db::begin_serialized(pool, &scope).await?;
            let mut q =
                QueryBuilder::<Db>::new("DELETE FROM playbook_admissions WHERE playbook = ");
            q.push_bind(playbook)
                .push(" AND key = ")
                .push_bind(key)
                .push(" AND at <= ")
                .push_bind(<Db as BindTime>::time(window_start));
            q.build().execute(&mut *tx).await?;
            let mut q =
                QueryBuilder::<Db>::new("SELECT at FROM playbook_admissions WHERE playbook = ");
            q.push_bind(playbook)
                .push(" AND key = ")
                .push_bind(key)
                .push(" ORDER BY at, id");
            let admitted: Vec<DateTime<Utc>> = q.build_query_scalar().fetch_all(&mut *tx).await?;
            if admitted.len() >= count as usize {
                tx.rollback().await?;
                return Ok(Admission::Refused(admitted));
            }
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO playbook_admissions (playbook, key, run_id, at) VALUES (",
            );
            q.push_bind(playbook)
                .push(", ")
                .push_bind(key)
                .push(", ")
                .push_bind(run_id)
                .push(", ")
                .push_bind(<Db as BindTime>::time(now))
                .push(")");
            q.build().execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Admission::Admitted)
        }
        .await)
        .map_err(failed(&format!("admitting a run of {key}")))
    }

    /// Stores an approval waiting for a decision.
    pub async fn create_approval(&self, approval: &NewApproval<'_>) -> Result<(), StoreError> {
        let input = crate::playbook::run::redact_value(approval.input);
        let description = secrets::redact_owned(approval.description.to_string());
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "INSERT INTO playbook_approvals (id, run_id, playbook, step, description, input, \
                 token_hash, created_at, expires_at) ",
            );
            q.push_values([approval], |mut b, a| {
                b.push_bind(a.id)
                    .push_bind(a.run_id)
                    .push_bind(a.playbook)
                    .push_bind(a.step)
                    .push_bind(description.as_str())
                    .push_bind(Json(&input))
                    .push_bind(a.token_hash)
                    .push_bind(<Db as BindTime>::time(a.created_at))
                    .push_bind(<Db as BindTime>::time(a.expires_at));
            });
            q.build().execute(pool).await.map(|_| ())
        })
        .map_err(failed(&format!("storing approval {}", approval.id)))
    }

    /// The approval `id`, if stored.
    pub async fn approval(&self, id: &str) -> Result<Option<StoredApproval>, StoreError> {
        let row: Option<ApprovalRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {APPROVAL_COLUMNS} FROM playbook_approvals WHERE id = "
            ));
            q.push_bind(id);
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading approval {id}")))?;
        row.map(ApprovalRow::into_approval).transpose()
    }

    /// Up to `limit` approvals still waiting at `now` (undecided, not expired), oldest first.
    pub async fn pending_approvals(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<StoredApproval>, StoreError> {
        let rows: Vec<ApprovalRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {APPROVAL_COLUMNS} FROM playbook_approvals \
                 WHERE decision IS NULL AND expires_at > "
            ));
            q.push_bind(<Db as BindTime>::time(now))
                .push(" ORDER BY created_at, id LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading pending approvals"))?;
        rows.into_iter().map(ApprovalRow::into_approval).collect()
    }

    /// Decides approval `id` at `at` when nobody did yet; `approved` and `denied` only before it
    /// expires, `expired` only after. True when this call decided it.
    pub async fn decide_approval(
        &self,
        id: &str,
        decision: ApprovalDecision,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let by = secrets::redact_owned(by.to_string());
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("UPDATE playbook_approvals SET decision = ");
            q.push_bind(decision.as_str())
                .push(", decided_by = ")
                .push_bind(by.as_str())
                .push(", decided_at = ")
                .push_bind(<Db as BindTime>::time(at))
                .push(" WHERE id = ")
                .push_bind(id)
                .push(" AND decision IS NULL AND expires_at ");
            q.push(if decision == ApprovalDecision::Expired {
                "<= "
            } else {
                "> "
            });
            q.push_bind(<Db as BindTime>::time(at));
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("deciding approval {id}")))?;
        Ok(affected == 1)
    }

    /// The id of the notification queued under `idempotency_key` while it is still pending (a
    /// sender that delivers it itself marks it sent by this id).
    pub async fn pending_notification_id(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<i64>, StoreError> {
        on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "SELECT id FROM notifications WHERE status = 'pending' AND idempotency_key = ",
            );
            q.push_bind(idempotency_key);
            q.build_query_scalar().fetch_optional(pool).await
        })
        .map_err(failed("reading the outbox"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_back_as_written() {
        for d in [
            ApprovalDecision::Approved,
            ApprovalDecision::Denied,
            ApprovalDecision::Expired,
        ] {
            assert_eq!(ApprovalDecision::parse(d.as_str()), Some(d));
        }
        assert_eq!(ApprovalDecision::parse("maybe"), None);
    }

    #[tokio::test]
    async fn a_lock_is_ours_until_released_or_expired() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let t0 = Utc::now();
        let later = t0 + chrono::Duration::minutes(5);
        assert_eq!(
            store
                .acquire_playbook_lock("p:k", "r1", "h:1", t0, later)
                .await
                .unwrap(),
            Ok(())
        );
        let held = store
            .acquire_playbook_lock("p:k", "r2", "h:2", t0, later)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((held.run_id.as_str(), held.holder.as_str()), ("r1", "h:1"));
        assert!(!store.release_playbook_lock("p:k", "r2").await.unwrap());
        // Past its expiry the row is taken over, and the first holder can no longer release it.
        let after = later + chrono::Duration::seconds(1);
        let until = after + chrono::Duration::minutes(5);
        assert_eq!(
            store
                .acquire_playbook_lock("p:k", "r2", "h:2", after, until)
                .await
                .unwrap(),
            Ok(())
        );
        assert!(!store.release_playbook_lock("p:k", "r1").await.unwrap());
        assert!(store.release_playbook_lock("p:k", "r2").await.unwrap());
        assert_eq!(store.playbook_lock("p:k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn admissions_count_within_the_window_only() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let t0 = Utc::now();
        let hour = chrono::Duration::hours(1);
        let admit = |run: &'static str, at: DateTime<Utc>| {
            let store = store.clone();
            async move {
                store
                    .admit_playbook_run("p", "p", run, 2, at - hour, at)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(admit("a", t0).await, Admission::Admitted);
        let t1 = t0 + chrono::Duration::minutes(10);
        assert_eq!(admit("b", t1).await, Admission::Admitted);
        let t2 = t0 + chrono::Duration::minutes(20);
        assert_eq!(
            admit("c", t2).await,
            Admission::Refused(vec![stored(t0), stored(t1)])
        );
        // Once the first leaves the window, one more fits.
        let t3 = t0 + hour + chrono::Duration::seconds(1);
        assert_eq!(admit("d", t3).await, Admission::Admitted);
    }

    fn stored(at: DateTime<Utc>) -> DateTime<Utc> {
        super::super::rows::stored_time(at)
    }
}
