//! Silences in the store (`silences`): made through the API or the CLI, matchers kept as JSON in
//! the shape the silence module gives them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::outbox::BindTime;
use super::rows::stored_time;
use super::{Pool, Store, StoreError, failed};

/// A silence to create; the store assigns its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSilence {
    /// The matchers as the silence module serialises them.
    pub matchers: serde_json::Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSilence {
    pub id: String,
    pub matchers: serde_json::Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

const SILENCE_COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment";

/// A row of `silences`.
#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: String,
    matchers: Json<serde_json::Value>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

impl SilenceRow {
    fn into_silence(self) -> StoredSilence {
        StoredSilence {
            id: self.id,
            matchers: self.matchers.0,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            created_by: self.created_by,
            comment: self.comment,
        }
    }
}

impl Store {
    /// Stores a new silence and returns it with its id.
    pub async fn add_silence(&self, silence: &NewSilence) -> Result<StoredSilence, StoreError> {
        let stored = StoredSilence {
            id: uuid::Uuid::now_v7().to_string(),
            matchers: silence.matchers.clone(),
            starts_at: stored_time(silence.starts_at),
            ends_at: stored_time(silence.ends_at),
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
        };
        on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("INSERT INTO silences ({SILENCE_COLUMNS}) "));
            q.push_values([&stored], |mut b, s| {
                b.push_bind(s.id.as_str())
                    .push_bind(Json(&s.matchers))
                    .push_bind(<Db as BindTime>::time(s.starts_at))
                    .push_bind(<Db as BindTime>::time(s.ends_at))
                    .push_bind(s.created_by.as_str())
                    .push_bind(s.comment.as_str());
            });
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed("adding a silence"))?;
        Ok(stored)
    }

    /// Silences by start time: all of them, or with `not_ended_at`, those still active or yet to
    /// start at that time.
    pub async fn list_silences(
        &self,
        not_ended_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<StoredSilence>, StoreError> {
        let rows: Vec<SilenceRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!("SELECT {SILENCE_COLUMNS} FROM silences"));
            if let Some(at) = not_ended_at {
                q.push(" WHERE ends_at > ")
                    .push_bind(<Db as BindTime>::time(at));
            }
            q.push(" ORDER BY starts_at, id");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading silences"))?;
        Ok(rows.into_iter().map(SilenceRow::into_silence).collect())
    }

    /// Ends silence `id` at `now` (one that had not started yet starts and ends at `now`). False
    /// when there is no such silence or it had already ended.
    pub async fn expire_silence(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let affected = on_pool!(self, |pool, Db| {
            let at = || <Db as BindTime>::time(now);
            let mut q = QueryBuilder::<Db>::new("UPDATE silences SET ends_at = ");
            q.push_bind(at())
                .push(", starts_at = CASE WHEN starts_at > ");
            q.push_bind(at()).push(" THEN ").push_bind(at());
            q.push(" ELSE starts_at END WHERE id = ").push_bind(id);
            q.push(" AND ends_at > ").push_bind(at());
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("expiring silence {id}")))?;
        Ok(affected == 1)
    }
}
