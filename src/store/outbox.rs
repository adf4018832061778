//! Alerting in the store: alert states (`alerts`) and the durable outbox (`notifications`);
//! silences are in `silences.rs`.
//!
//! **No alert lost (issue #4 §4).** [`Store::save_alert_changes`] writes the changed alert states
//! and the notifications those changes produced in ONE transaction: after a crash either both are
//! there (and the sender delivers the pending rows on restart) or neither is (and the change is
//! observed again). A notification is queued once per idempotency key; saving the same key again
//! changes nothing, so replaying a change after a crash cannot queue a second copy.
//!
//! Alert states are opaque JSON here: the lifecycle module owns their shape.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::chunks::{StatementSize, sized_chunks};
use super::events::redact_json;
use super::rows::{sqlite_time, stored_time};
use super::{Pool, Store, StoreError, failed, serialize_writers, sql_limit};
use crate::alert::Notification;
use crate::secrets;

/// A notification to queue in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    pub receiver: String,
    pub group_key: String,
    /// Unique across the outbox: a second notification with the same key is not queued.
    pub idempotency_key: String,
    pub payload: Notification,
    /// Not delivered before this time (a route's `group_wait`/`group_interval`); None: at once.
    pub not_before: Option<DateTime<Utc>>,
}

/// Where a notification is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Accepted by the receiver.
    Sent,
    /// Refused for good; `last_error` says why.
    Dead,
    /// Merged into a digest (`folded_into`) because its receiver's rate budget ran out.
    Folded,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
            OutboxStatus::Folded => "folded",
        }
    }

    fn parse(s: &str) -> Result<OutboxStatus, StoreError> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sent" => Ok(OutboxStatus::Sent),
            "dead" => Ok(OutboxStatus::Dead),
            "folded" => Ok(OutboxStatus::Folded),
            other => Err(StoreError(format!("unknown notification status '{other}'"))),
        }
    }
}

/// A notification as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub receiver: String,
    pub group_key: String,
    pub idempotency_key: String,
    pub payload: Notification,
    pub status: OutboxStatus,
    /// Delivery attempts made so far (successful or not).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The digest this notification was merged into (status `folded`).
    pub folded_into: Option<i64>,
    /// For a delivery made of several messages (WeCom's Markdown + mentions): how many leading
    /// parts earlier attempts delivered; the next attempt resumes after them.
    #[serde(default)]
    pub parts_done: u32,
}

const NOTIFICATION_COLUMNS: &str = "id, receiver, group_key, idempotency_key, payload, status, \
     attempts, next_attempt_at, last_error, created_at, sent_at, folded_into, parts_done";

/// How each backend binds a timestamp (fixed-width text on SQLite, TIMESTAMPTZ on PostgreSQL).
pub(super) trait BindTime: sqlx::Database {
    type Time: for<'q> sqlx::Encode<'q, Self> + sqlx::Type<Self> + Send + 'static;
    fn time(at: DateTime<Utc>) -> Self::Time;
}

impl BindTime for sqlx::Sqlite {
    type Time = String;
    fn time(at: DateTime<Utc>) -> String {
        sqlite_time(at)
    }
}

impl BindTime for sqlx::Postgres {
    type Time = DateTime<Utc>;
    fn time(at: DateTime<Utc>) -> DateTime<Utc> {
        stored_time(at)
    }
}

/// An alert state ready to upsert.
struct AlertRow {
    fingerprint: String,
    state: serde_json::Value,
    bytes: usize,
}

impl StatementSize for AlertRow {
    fn statement_bytes(&self) -> usize {
        self.fingerprint.len() + self.bytes + 60
    }
}

/// A notification ready to insert (payload as redacted JSON).
struct NotificationRow {
    receiver: String,
    group_key: String,
    idempotency_key: String,
    payload: serde_json::Value,
    not_before: Option<DateTime<Utc>>,
    bytes: usize,
}

impl StatementSize for NotificationRow {
    fn statement_bytes(&self) -> usize {
        self.receiver.len() + self.group_key.len() + self.idempotency_key.len() + self.bytes + 180
    }
}

impl NotificationRow {
    fn from_new(n: &NewNotification) -> Result<NotificationRow, StoreError> {
        // The payload carries the row's identity, so a receiver sees the key the outbox dedupes by.
        let mut payload = n.payload.clone();
        payload.receiver.clone_from(&n.receiver);
        payload.group_key.clone_from(&n.group_key);
        payload.idempotency_key.clone_from(&n.idempotency_key);
        let payload = serde_json::to_value(&payload)
            .map_err(|e| StoreError(format!("encoding notification {}: {e}", n.idempotency_key)))?;
        let payload = redact_json(payload);
        Ok(NotificationRow {
            receiver: n.receiver.clone(),
            group_key: n.group_key.clone(),
            idempotency_key: n.idempotency_key.clone(),
            not_before: n.not_before,
            bytes: json_len(&payload),
            payload,
        })
    }
}

fn json_len(v: &serde_json::Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0)
}

/// The latest state of each fingerprint in `states` (the later one wins): PostgreSQL refuses an
/// upsert that touches one row twice.
fn alert_rows(states: &[(&str, &serde_json::Value)]) -> Vec<AlertRow> {
    let mut position: HashMap<&str, usize> = HashMap::new();
    let mut rows: Vec<AlertRow> = Vec::new();
    for (fingerprint, state) in states {
        let state = redact_json((*state).clone());
        let row = AlertRow {
            fingerprint: fingerprint.to_string(),
            bytes: json_len(&state),
            state,
        };
        match position.get(fingerprint) {
            Some(&i) => rows[i] = row,
            None => {
                position.insert(fingerprint, rows.len());
                rows.push(row);
            }
        }
    }
    rows
}

/// A row of `notifications`.
#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    receiver: String,
    group_key: String,
    idempotency_key: String,
    payload: Json<serde_json::Value>,
    status: String,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    folded_into: Option<i64>,
    parts_done: i32,
}

impl EntryRow {
    fn into_entry(self) -> Result<OutboxEntry, StoreError> {
        let payload = serde_json::from_value(self.payload.0).map_err(|e| {
            StoreError(format!(
                "stored notification {} is unreadable: {e}",
                self.id
            ))
        })?;
        Ok(OutboxEntry {
            id: self.id,
            receiver: self.receiver,
            group_key: self.group_key,
            idempotency_key: self.idempotency_key,
            payload,
            status: OutboxStatus::parse(&self.status)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            folded_into: self.folded_into,
            parts_done: u32::try_from(self.parts_done).unwrap_or(0),
        })
    }
}

impl Store {
    /// Upserts alert states (`(fingerprint, state as JSON)`) and queues `notifications`, all in ONE
    /// transaction, and returns how many notifications were newly queued (a notification whose
    /// idempotency key is already in the outbox is skipped). A failure leaves neither the states
    /// nor the notifications behind.
    pub async fn save_alert_changes(
        &self,
        states: &[(&str, &serde_json::Value)],
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let alert_rows = alert_rows(states);
        let notification_rows: Vec<NotificationRow> = notifications
            .iter()
            .map(NotificationRow::from_new)
            .collect::<Result<_, _>>()?;
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            serialize_writers::<Db>(&mut tx).await?;
            for chunk in sized_chunks(&alert_rows) {
                let mut q =
                    QueryBuilder::<Db>::new("INSERT INTO alerts (fingerprint, state, updated_at) ");
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.fingerprint.as_str())
                        .push_bind(Json(&r.state))
                        .push_bind(<Db as BindTime>::time(now));
                });
                q.push(
                    " ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state, \
                     updated_at = excluded.updated_at",
                );
                q.build().execute(&mut *tx).await?;
            }
            let mut queued = 0;
            for chunk in sized_chunks(&notification_rows) {
                let mut q = QueryBuilder::<Db>::new("");
                push_insert_notifications(&mut q, chunk, now);
                queued += q.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(queued)
        }
        .await)
        .map_err(failed("saving alert changes"))
    }

    /// Every stored alert state, by fingerprint.
    pub async fn load_alerts(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows: Vec<(String, Json<serde_json::Value>)> = on_pool!(self, |pool, Db| {
            QueryBuilder::<Db>::new("SELECT fingerprint, state FROM alerts ORDER BY fingerprint")
                .build_query_as()
                .fetch_all(pool)
                .await
        })
        .map_err(failed("reading alert states"))?;
        Ok(rows.into_iter().map(|(f, s)| (f, s.0)).collect())
    }

    /// Up to `limit` pending notifications whose next attempt is due at `now`, oldest first.
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows: Vec<EntryRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications \
                 WHERE status = 'pending' AND next_attempt_at <= "
            ));
            q.push_bind(<Db as BindTime>::time(now));
            q.push(" ORDER BY next_attempt_at, id LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading due notifications"))?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    /// Up to `limit` notifications, newest first, all or only those with `status`.
    pub async fn outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows: Vec<EntryRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications"
            ));
            if let Some(status) = status {
                q.push(" WHERE status = ").push_bind(status.as_str());
            }
            q.push(" ORDER BY id DESC LIMIT ")
                .push_bind(sql_limit(limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading the outbox"))?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    /// How many notifications are pending (the `patrol_outbox_pending` gauge).
    pub async fn pending_notifications(&self) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |pool, Db| {
            QueryBuilder::<Db>::new("SELECT COUNT(*) FROM notifications WHERE status = 'pending'")
                .build_query_scalar()
                .fetch_one(pool)
                .await
        })
        .map_err(failed("counting pending notifications"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records that the receiver accepted notification `id`. False when it was not pending.
    pub async fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.finish_attempt(id, "sent", None, at, None).await
    }

    /// Records a failed attempt worth retrying at `next_attempt_at`, and how many leading parts
    /// of a multi-message delivery are delivered so far (`parts_done`, 0 for single messages), so
    /// the retry resumes after them. False when it was not pending.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        parts_done: u32,
    ) -> Result<bool, StoreError> {
        self.finish_attempt(
            id,
            "pending",
            Some(error),
            next_attempt_at,
            Some(parts_done),
        )
        .await
    }

    /// Dead-letters notification `id` with the reason the receiver gave. False when it was not
    /// pending.
    pub async fn mark_dead(
        &self,
        id: i64,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.finish_attempt(id, "dead", Some(reason), at, None)
            .await
    }

    /// Counts an attempt on a pending row and moves it to `status`: `sent` stamps `sent_at`,
    /// `pending` sets the next attempt, `dead` keeps `at` as the time it died (in
    /// `next_attempt_at`); `parts_done`, when given, is stored too. Errors are stored with
    /// registered secrets masked.
    async fn finish_attempt(
        &self,
        id: i64,
        status: &'static str,
        error: Option<&str>,
        at: DateTime<Utc>,
        parts_done: Option<u32>,
    ) -> Result<bool, StoreError> {
        let parts_done = parts_done.map(|p| i32::try_from(p).unwrap_or(i32::MAX));
        let error = error.map(|e| secrets::redact_owned(e.to_string()));
        let affected = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(
                "UPDATE notifications SET attempts = attempts + 1, status = ",
            );
            q.push_bind(status)
                .push(", last_error = ")
                .push_bind(error.as_deref());
            if status == "sent" {
                q.push(", sent_at = ").push_bind(<Db as BindTime>::time(at));
            } else {
                q.push(", next_attempt_at = ")
                    .push_bind(<Db as BindTime>::time(at));
            }
            if let Some(parts) = parts_done {
                q.push(", parts_done = ").push_bind(parts);
            }
            q.push(" WHERE status = 'pending' AND id = ").push_bind(id);
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("updating notification {id}")))?;
        Ok(affected == 1)
    }

    /// Replaces the pending notifications `ids` by one `digest` notification, in one transaction,
    /// and returns the digest's id. None (and nothing changed) when one of them is no longer
    /// pending or the digest's idempotency key is already queued.
    pub async fn fold_notifications(
        &self,
        ids: &[i64],
        digest: &NewNotification,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let row = NotificationRow::from_new(digest)?;
        let wanted = ids.len() as u64;
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            let mut q = QueryBuilder::<Db>::new("");
            push_insert_notifications(&mut q, std::slice::from_ref(&row), now);
            q.push(" RETURNING id");
            let Some(digest_id): Option<i64> =
                q.build_query_scalar().fetch_optional(&mut *tx).await?
            else {
                return Ok(None);
            };
            let mut q = QueryBuilder::<Db>::new(
                "UPDATE notifications SET status = 'folded', folded_into = ",
            );
            q.push_bind(digest_id)
                .push(" WHERE status = 'pending' AND id IN (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            q.push(")");
            if q.build().execute(&mut *tx).await?.rows_affected() != wanted {
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(digest_id))
        }
        .await)
        .map_err(failed(&format!("folding {} notifications", ids.len())))
    }
}

/// `INSERT` of pending notifications created at `now` and due at once (or at their
/// `not_before`); a row whose idempotency
/// key is already stored is skipped.
fn push_insert_notifications<Db: BindTime>(
    q: &mut QueryBuilder<Db>,
    rows: &[NotificationRow],
    now: DateTime<Utc>,
) where
    for<'q> &'q str: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    for<'q> Json<&'q serde_json::Value>: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    q.push(
        "INSERT INTO notifications (receiver, group_key, idempotency_key, payload, status, \
         attempts, next_attempt_at, created_at) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.receiver.as_str())
            .push_bind(r.group_key.as_str())
            .push_bind(r.idempotency_key.as_str())
            .push_bind(Json(&r.payload))
            .push_bind("pending")
            .push_bind(0_i64)
            .push_bind(Db::time(r.not_before.map_or(now, |t| t.max(now))))
            .push_bind(Db::time(now));
    });
    q.push(" ON CONFLICT (idempotency_key) DO NOTHING");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_state_of_a_repeated_fingerprint_is_kept_in_first_place() {
        let (a1, b, a2) = (
            serde_json::json!({"n": 1}),
            serde_json::json!({"n": 2}),
            serde_json::json!({"n": 3}),
        );
        let rows = alert_rows(&[("a", &a1), ("b", &b), ("a", &a2)]);
        let got: Vec<(&str, &serde_json::Value)> = rows
            .iter()
            .map(|r| (r.fingerprint.as_str(), &r.state))
            .collect();
        assert_eq!(got, [("a", &a2), ("b", &b)]);
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in [
            OutboxStatus::Pending,
            OutboxStatus::Sent,
            OutboxStatus::Dead,
            OutboxStatus::Folded,
        ] {
            assert_eq!(OutboxStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(OutboxStatus::parse("lost").is_err());
    }
}
