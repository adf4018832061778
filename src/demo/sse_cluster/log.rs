//! The event log every node shares: one SQLite file in WAL mode. Nodes append published events
//! and poll for rows they have not seen yet, so nodes can be separate processes and a client can
//! resume on any of them.
//!
//! Event ids are opaque to clients: `<topic>:<base36 log position>.<log epoch>`. The epoch is a
//! random token written once when the log is created, so an id from another (or a recreated) log
//! is recognised as unknown instead of being mistaken for a position in this one.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Writers of other nodes may hold the lock briefly; wait for them rather than failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest topic name accepted; topics appear in ids and URLs.
pub const MAX_TOPIC_LEN: usize = 100;

/// One published event as every node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Position in the shared log, across topics: increasing, and a later position never
    /// becomes visible before an earlier one (SQLite serialises the writers).
    pub pos: i64,
    pub topic: String,
    /// The opaque id sent to clients.
    pub id: String,
    pub body: String,
}

/// A handle on the shared log file.
#[derive(Clone, Debug)]
pub struct EventLog {
    pool: SqlitePool,
    epoch: Arc<str>,
}

impl EventLog {
    /// Opens the log at `path`, creating the file and its tables when missing.
    pub async fn open(path: &Path) -> Result<EventLog, String> {
        let shown = path.display();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| format!("cannot open the event log {shown}: {e}"))?;
        create_tables(&pool)
            .await
            .map_err(|e| format!("cannot create the event log tables in {shown}: {e}"))?;
        let epoch = ensure_epoch(&pool)
            .await
            .map_err(|e| format!("cannot read the event log epoch in {shown}: {e}"))?;
        Ok(EventLog {
            pool,
            epoch: epoch.into(),
        })
    }

    /// Closes the connections (the file stays).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Appends `body` to `topic` and returns the new event's id.
    pub async fn append(&self, topic: &str, body: &str) -> Result<String, String> {
        let pos: i64 =
            sqlx::query_scalar("INSERT INTO sse_events (topic, body) VALUES (?, ?) RETURNING pos")
                .bind(topic)
                .bind(body)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| format!("cannot append to the event log: {e}"))?;
        Ok(self.id_of(topic, pos))
    }

    /// Up to `limit` events after position `after`, oldest first.
    pub async fn after(&self, after: i64, limit: i64) -> Result<Vec<LoggedEvent>, String> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT pos, topic, body FROM sse_events WHERE pos > ? ORDER BY pos LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| format!("cannot read the event log: {e}"))?;
        Ok(self.events(rows))
    }

    /// The newest `count` events, oldest first (what a starting node puts in its buffer).
    pub async fn last(&self, count: i64) -> Result<Vec<LoggedEvent>, String> {
        let mut rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT pos, topic, body FROM sse_events ORDER BY pos DESC LIMIT ?")
                .bind(count)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| format!("cannot read the event log: {e}"))?;
        rows.reverse();
        Ok(self.events(rows))
    }

    /// Position of the newest event (0 when the log is empty).
    pub async fn head(&self) -> Result<i64, String> {
        sqlx::query_scalar("SELECT COALESCE(MAX(pos), 0) FROM sse_events")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("cannot read the event log: {e}"))
    }

    /// The opaque id of the event at `pos` in `topic`.
    pub fn id_of(&self, topic: &str, pos: i64) -> String {
        format!("{topic}:{}.{}", base36(pos), self.epoch)
    }

    /// The log position an id names, or `None` when the id does not come from this log.
    pub fn position_of(&self, id: &str) -> Option<i64> {
        let (_topic, rest) = id.rsplit_once(':')?;
        let (pos, epoch) = rest.split_once('.')?;
        if epoch != &*self.epoch {
            return None;
        }
        i64::from_str_radix(pos, 36).ok().filter(|p| *p > 0)
    }

    fn events(&self, rows: Vec<(i64, String, String)>) -> Vec<LoggedEvent> {
        rows.into_iter()
            .map(|(pos, topic, body)| LoggedEvent {
                pos,
                id: self.id_of(&topic, pos),
                topic,
                body,
            })
            .collect()
    }
}

async fn create_tables(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS sse_events (
             pos INTEGER PRIMARY KEY AUTOINCREMENT,
             topic TEXT NOT NULL,
             body TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS sse_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .execute(pool)
        .await?;
    Ok(())
}

/// The log's epoch: written by whichever node opens a new log first, read by all others.
async fn ensure_epoch(pool: &SqlitePool) -> Result<String, sqlx::Error> {
    let fresh = base36(fastrand::i64(36_i64.pow(5)..36_i64.pow(6)));
    sqlx::query("INSERT OR IGNORE INTO sse_meta (key, value) VALUES ('epoch', ?)")
        .bind(&fresh)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT value FROM sse_meta WHERE key = 'epoch'")
        .fetch_one(pool)
        .await
}

/// Lower-case base 36 of a non-negative number.
pub fn base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Whether `topic` is a usable topic name: it ends up in ids and must not break the stream.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
