//! Shared harness for integration tests: real services on loopback, each test isolated in its
//! own database (PostgreSQL, MariaDB) or key prefix / database number (Redis).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

pub mod sse;

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MYSQL_ADMIN_URL: &str = "mysql://root@127.0.0.1:3306/test";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let name = unique_name("patrol_t");
    let mut c = sqlx::PgConnection::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (run scripts/test.sh)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// Creates a fresh MariaDB database and returns its URL.
pub async fn fresh_mysql_database() -> String {
    use sqlx::Connection;
    let name = unique_name("patrol_t");
    let mut c = sqlx::MySqlConnection::connect(MYSQL_ADMIN_URL)
        .await
        .expect("MariaDB on 127.0.0.1:3306 (run scripts/test.sh)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    format!("mysql://root@127.0.0.1:3306/{name}")
}

/// A SQLite database `data.db` in `dir` whose table `gauge(name, v)` holds exactly one row per
/// `(name, v)`; called again, it replaces the rows (for tests that change what a check measures).
pub async fn sqlite_gauge_db(dir: &std::path::Path, rows: &[(&str, f64)]) -> std::path::PathBuf {
    use sqlx::Connection;
    let path = dir.join("data.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS gauge (name TEXT PRIMARY KEY, v REAL)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("DELETE FROM gauge")
        .execute(&mut c)
        .await
        .unwrap();
    for (name, v) in rows {
        sqlx::query("INSERT INTO gauge (name, v) VALUES (?, ?)")
            .bind(name)
            .bind(v)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();
    path
}

/// Path of the built `patrol` binary (for black-box CLI tests).
pub fn patrol_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_patrol"))
}

/// Runs `cmd`, asserts it exited 0 (showing both streams otherwise) and returns (stdout, stderr).
pub fn output_ok(cmd: &mut std::process::Command) -> (String, String) {
    let out = cmd.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// Generates `NAME::sqlite` and `NAME::postgres` tests that run `async fn NAME(url: &str)` against
/// a fresh SQLite file and a fresh PostgreSQL database.
#[allow(unused_macros)] // only the store tests use it
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                patrol::install_crypto_provider();
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("patrol.db").display());
                super::$name(&url).await;
            }

            #[tokio::test]
            async fn postgres() {
                patrol::install_crypto_provider();
                let url = crate::common::fresh_pg_database().await;
                super::$name(&url).await;
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;

/// A finished command's exit code, stdout and stderr, for assertion messages.
pub fn streams(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `patrol run --format json` of `rules` into the store `store` (bounded to 60 s): the exit code
/// and the result lines.
pub async fn patrol_run_json(
    rules: &std::path::Path,
    store: &str,
) -> (i32, Vec<serde_json::Value>) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(patrol_bin())
            .args(["run", "--format", "json", "--rules"])
            .arg(rules)
            .args(["--store", store])
            .env_remove("PATROL_STORE")
            .output(),
    )
    .await
    .expect("patrol run finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("{e}: {l}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
            })
        })
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}
