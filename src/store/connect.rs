//! Opening and migrating each backend.
//!
//! The first connection is made directly, not through a pool: a pool retries and finally says
//! "pool timed out", where a single connection reports the real cause ("connection refused",
//! "password authentication failed"). Migrations run on that connection; the pool the store
//! then uses connects lazily with the same options.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, PgConnection, SqliteConnection};

use super::StoreError;
use super::location::{describe_postgres, missing_parent_dir};
use crate::secrets;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a writer waits for another process's write lock (a daemon and a CLI run sharing one
/// file) before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(15);
/// Pool size: runs write in one transaction and reports read a few queries at a time.
const MAX_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating when missing) the SQLite file at `path` in WAL mode and migrates it.
pub async fn open_sqlite_file(path: &Path) -> Result<SqlitePool, StoreError> {
    let shown = path.display();
    if let Some(dir) = missing_parent_dir(path) {
        return Err(StoreError(format!(
            "cannot create SQLite store {shown}: directory {} does not exist",
            dir.display()
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| StoreError(format!("cannot open SQLite store {shown}: {e}")))?;
    let migrated = SQLITE_MIGRATIONS.run(&mut conn).await;
    let _ = conn.close().await;
    migrated.map_err(|e| StoreError(format!("migrating SQLite store {shown}: {e}")))?;
    Ok(SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_lazy_with(options))
}

/// A private in-memory SQLite database. Its connections share one cache, and the pool keeps one
/// connection open for good: the database lives exactly as long as its last connection.
pub async fn open_sqlite_memory() -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")
        .map_err(|e| StoreError(format!("in-memory SQLite store: {e}")))?
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(|e| StoreError(format!("cannot open in-memory SQLite store: {e}")))?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| StoreError(format!("migrating in-memory SQLite store: {e}")))?;
    Ok(pool)
}

/// Connects to PostgreSQL at `url` and migrates it. Messages name `host:port/database`, never the
/// URL, and the URL's password is registered as a secret in case a driver message echoes it.
pub async fn open_postgres(url: &str) -> Result<PgPool, StoreError> {
    // sqlx negotiates TLS (`sslmode=prefer`) and needs the process-wide rustls provider.
    crate::install_crypto_provider();
    if let Some(password) = secrets::url_password(url) {
        secrets::register(&secrets::percent_decode(password));
        secrets::register(password);
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| redacted(format!("invalid PostgreSQL store URL: {e}")))?;
    let at = describe_postgres(
        options.get_host(),
        options.get_port(),
        options.get_database(),
    );
    let mut conn = connect_postgres(&options, &at).await?;
    let migrated = POSTGRES_MIGRATIONS.run(&mut conn).await;
    let _ = conn.close().await;
    migrated.map_err(|e| redacted(format!("migrating PostgreSQL store at {at}: {e}")))?;
    Ok(PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_lazy_with(options))
}

async fn connect_postgres(
    options: &PgConnectOptions,
    at: &str,
) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(
        POSTGRES_CONNECT_TIMEOUT,
        PgConnection::connect_with(options),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(redacted(format!(
            "cannot connect to PostgreSQL store at {at}: {e}"
        ))),
        Err(_) => Err(StoreError(format!(
            "cannot connect to PostgreSQL store at {at}: no answer within {}s",
            POSTGRES_CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn redacted(message: String) -> StoreError {
    StoreError(secrets::redact_owned(message))
}
