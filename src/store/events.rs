//! The event log behind the SSE stream: results, score changes, reloads, low scores.
//!
//! **Ids only grow, and become visible in order.** A reader that resumes "after id N" must never
//! miss an event committed later with a smaller id. SQLite has one writer at a time and
//! AUTOINCREMENT never reuses an id. On PostgreSQL an identity value is taken at insert but
//! becomes visible at commit, so two concurrent transactions could commit out of order; every
//! transaction that appends therefore holds the writers' lock (see [`super::serialize_writers`])
//! from its start until commit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::chunks::sized_chunks;
use super::rows::stored_time;
use super::statements::Statements;
use super::{Pool, Store, StoreError, failed, serialize_writers, sql_limit};
use crate::secrets;

/// An event to append; the store assigns its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// What happened: `result`, `score`, `reload`, `score_low`, …
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// An event as stored, with its id (strictly increasing in append order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

pub const EVENT_COLUMNS: &str = "id, kind, at, data";

/// An event ready to insert: timestamp at stored precision, registered secrets masked.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEventRow {
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl NewEventRow {
    pub fn from_event(e: &NewEvent) -> NewEventRow {
        NewEventRow {
            kind: e.kind.clone(),
            at: stored_time(e.at),
            data: redact_json(e.data.clone()),
        }
    }
}

/// A row of `events`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub data: Json<serde_json::Value>,
}

impl EventRow {
    pub fn into_event(self) -> StoredEvent {
        StoredEvent {
            id: self.id,
            kind: self.kind,
            at: self.at,
            data: self.data.0,
        }
    }
}

/// `value` with registered secrets masked in every string, keys included: event data is built
/// from results and error messages, and the store is the last place to keep a secret out of it.
pub fn redact_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::String(s) => J::String(secrets::redact_owned(s)),
        J::Array(items) => J::Array(items.into_iter().map(redact_json).collect()),
        J::Object(map) => J::Object(
            map.into_iter()
                .map(|(k, v)| (secrets::redact_owned(k), redact_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Inserts `rows` on `conn`, inside the caller's transaction, which must hold the writers' lock;
/// returns them in id order.
pub async fn append_in<Db>(
    conn: &mut Db::Connection,
    rows: &[NewEventRow],
) -> Result<Vec<StoredEvent>, sqlx::Error>
where
    Db: Statements,
    Db::Arguments: sqlx::IntoArguments<Db>,
    for<'c> &'c mut Db::Connection: sqlx::Executor<'c, Database = Db>,
    EventRow: for<'r> sqlx::FromRow<'r, Db::Row>,
{
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut stored = Vec::with_capacity(rows.len());
    for chunk in sized_chunks(rows) {
        let inserted: Vec<EventRow> = Db::insert_events(chunk)
            .build_query_as()
            .fetch_all(&mut *conn)
            .await?;
        stored.extend(inserted.into_iter().map(EventRow::into_event));
    }
    // RETURNING promises no row order; ids were assigned in VALUES order.
    stored.sort_by_key(|e| e.id);
    Ok(stored)
}

impl Store {
    /// Appends events in one transaction and returns them with their ids, in append order.
    pub async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<NewEventRow> = events.iter().map(NewEventRow::from_event).collect();
        on_pool!(self, |pool, Db| async {
            let mut tx = pool.begin().await?;
            serialize_writers::<Db>(&mut tx).await?;
            let stored = append_in::<Db>(&mut tx, &rows).await?;
            tx.commit().await?;
            Ok(stored)
        }
        .await)
        .map_err(failed("appending events"))
    }

    /// Up to `limit` events with an id greater than `after`, oldest first: the backlog a
    /// reconnecting SSE client missed (`Last-Event-ID`). Served by the primary key.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows: Vec<EventRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new("");
            push_events_after(&mut q, after, limit);
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading events after {after}")))?;
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }
}

/// Appends the query behind [`Store::events_after`] to `q`.
pub fn push_events_after<Db: Statements>(q: &mut QueryBuilder<Db>, after: i64, limit: u32)
where
    i64: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    q.push(format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > "))
        .push_bind(after)
        .push(" ORDER BY id LIMIT ")
        .push_bind(sql_limit(limit as usize));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_every_string_of_the_data() {
        let secret = "store-events-test-secret-91c4";
        secrets::register(secret);
        let data = serde_json::json!({
            "message": format!("login as app:{secret} failed"),
            "nested": [1, {"token": secret}, true, null],
            secret: 2.5,
        });
        let row = NewEventRow::from_event(&NewEvent {
            kind: "result".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            data,
        });
        let shown = row.data.to_string();
        assert!(!shown.contains(secret), "{shown}");
        assert_eq!(row.data["nested"][0], 1);
        assert_eq!(row.data["nested"][1]["token"], secrets::MASK);
        assert_eq!(row.data[secrets::MASK], 2.5);
    }

    #[test]
    fn event_times_are_kept_at_microseconds() {
        let at = DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::nanoseconds(1_234_567);
        let row = NewEventRow::from_event(&NewEvent {
            kind: "reload".into(),
            at,
            data: serde_json::json!({"ok": true}),
        });
        assert_eq!(
            row.at,
            DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::microseconds(1_234)
        );
    }
}
