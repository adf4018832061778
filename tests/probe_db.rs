//! `kind: sql` against real PostgreSQL, MariaDB and SQLite files: values, series per row,
//! expectations, NULLs, text, timeouts, refused connections — and writes that fail the check as
//! `error` while the data stays as it was.

mod common;
mod net_support;

use std::time::{Duration, Instant};

use net_support::{
    assert_refused_connection, check, check_item, closed_port, judged_error, load_with_url,
    measure, quick_error, single, verdict,
};
use patrol::config::RuleSet;
use patrol::probe::Sample;
use patrol::result::{Status, Value};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

/// A database of one backend, seeded with table `t`.
enum Db {
    Postgres(String),
    Mysql(String),
    /// The folder holds the file and goes with it.
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
}

impl Db {
    async fn postgres() -> Db {
        Db::Postgres(common::fresh_pg_database().await)
            .seeded()
            .await
    }

    async fn mysql() -> Db {
        Db::Mysql(common::fresh_mysql_database().await)
            .seeded()
            .await
    }

    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        Db::Sqlite { _dir: dir, url }.seeded().await
    }

    async fn seeded(self) -> Db {
        self.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, region VARCHAR(20), lag DECIMAL(10,2), note VARCHAR(50))").await;
        self.exec("INSERT INTO t VALUES (1, 'eu', 1.50, 'fine'), (2, 'us', NULL, 'late'), (3, 'ap', 4.25, NULL)").await;
        self
    }

    fn kind(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Mysql(_) => "mysql",
            Db::Sqlite { .. } => "sqlite",
        }
    }

    fn url(&self) -> &str {
        match self {
            Db::Postgres(u) | Db::Mysql(u) | Db::Sqlite { url: u, .. } => u,
        }
    }

    /// A read-write connection of the test itself (SQLite creates its file).
    async fn admin(&self) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = match self {
            Db::Sqlite { url, .. } => format!("{url}?mode=rwc"),
            other => other.url().to_string(),
        };
        AnyConnection::connect(&url).await.unwrap()
    }

    async fn exec(&self, sql: &str) {
        let mut c = self.admin().await;
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    }

    async fn scalar(&self, sql: &str) -> i64 {
        let mut c = self.admin().await;
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    /// Rules with one sql check per `(name, query, extra YAML lines)` against this database.
    fn rules(&self, checks: &[(&str, &str, &str)]) -> RuleSet {
        load_with_url(&sql_rules(self.kind(), "3s", checks), self.url())
            .unwrap_or_else(|d| panic!("{d:?}"))
    }
}

fn sql_rules(kind: &str, timeout: &str, checks: &[(&str, &str, &str)]) -> String {
    let mut yaml = format!("targets:\n  db: {{ kind: {kind}, url: \"${{env:URL}}\" }}\nchecks:\n");
    for (name, query, extra) in checks {
        yaml.push_str(&check_item(&format!(
            "name: {name}\nkind: sql\ntarget: db\ntimeout: {timeout}\nquery: {query:?}\n{extra}"
        )));
    }
    yaml
}

/// Rules with the single check `c` (`SELECT 1`) against the `kind` database at `url`.
fn select_one(kind: &str, url: &str) -> RuleSet {
    load_with_url(&sql_rules(kind, "3s", &[("c", "SELECT 1", "")]), url).unwrap()
}

/// Three tests per scenario, one per backend.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn postgres() {
                super::$scenario(super::Db::postgres().await).await
            }
            #[tokio::test]
            async fn mariadb() {
                super::$scenario(super::Db::mysql().await).await
            }
            #[tokio::test]
            async fn sqlite() {
                super::$scenario(super::Db::sqlite().await).await
            }
        }
    )*};
}

on_every_backend!(
    series_per_row_skip_nulls,
    first_column_of_first_row,
    rows_expectation,
    unknown_column_names_the_columns,
    writes_fail_as_error_and_change_nothing,
    statement_timeout_is_an_error,
);

async fn series_per_row_skip_nulls(db: Db) {
    let rules = db.rules(&[(
        "lag",
        "SELECT region, lag FROM t ORDER BY id",
        "value: lag\nseries: region",
    )]);
    let m = measure(check(&rules, "lag")).await.unwrap();
    let sample = |series: &str, n: f64| Sample {
        series: series.into(),
        value: Value::Num(n),
    };
    let expected = vec![sample("eu", 1.5), sample("ap", 4.25)];
    assert_eq!(m.samples, expected, "the NULL lag of 'us' gives no sample");
    assert!(m.failures.is_empty());
}

async fn first_column_of_first_row(db: Db) {
    let rules = db.rules(&[
        ("note", "SELECT note, id FROM t ORDER BY id", ""),
        ("count", "SELECT COUNT(*) AS n FROM t", ""),
        ("nullrow", "SELECT lag FROM t WHERE id = 2", ""),
    ]);
    let m = measure(check(&rules, "note")).await.unwrap();
    assert_eq!(m.samples, vec![Sample::single(Value::Text("fine".into()))]);
    let m = measure(check(&rules, "count")).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Num(3.0)));
    let null = check(&rules, "nullrow");
    let m = measure(null).await.unwrap();
    assert!(m.samples.is_empty(), "{m:?}");
    assert_eq!(
        verdict(null, Ok(m)),
        (Status::Ok, "no value measured".to_string())
    );
}

async fn rows_expectation(db: Db) {
    let rules = db.rules(&[
        (
            "none",
            "SELECT id FROM t WHERE id > 100",
            "expect: { rows: ge(1) }",
        ),
        ("three", "SELECT id FROM t", "expect: { rows: eq(3) }"),
    ]);
    let none = check(&rules, "none");
    let m = measure(none).await.unwrap();
    assert!(m.samples.is_empty());
    assert_eq!(m.failures, vec!["rows: 0 rows, expected ge(1)".to_string()]);
    assert_eq!(
        verdict(none, Ok(m)),
        (Status::Crit, "rows: 0 rows, expected ge(1)".to_string())
    );
    let three = check(&rules, "three");
    let m = measure(three).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Num(1.0)));
    assert_eq!(verdict(three, Ok(m)).0, Status::Ok);
}

async fn unknown_column_names_the_columns(db: Db) {
    let rules = db.rules(&[("c", "SELECT region, lag FROM t", "value: delay")]);
    assert_eq!(
        judged_error(check(&rules, "c")).await,
        "value: column \"delay\" is not in the result; columns: region, lag"
    );
}

async fn writes_fail_as_error_and_change_nothing(db: Db) {
    let refusal = match db.kind() {
        "postgres" => "in a read-only transaction",
        "mysql" => "Cannot execute statement in a READ ONLY transaction",
        _ => "attempt to write a readonly database",
    };
    let writes = [
        ("delete", "DELETE FROM t", refusal),
        ("insert", "INSERT INTO t VALUES (9, 'x', 1, 'y')", refusal),
        ("update", "UPDATE t SET lag = 0", refusal),
        ("drop", "DROP TABLE t", "patrol refuses DROP statements"),
        (
            "create",
            "CREATE TABLE z (x INTEGER)",
            "patrol refuses CREATE statements",
        ),
        ("two", "SELECT 1; DELETE FROM t", "more than one statement"),
    ];
    let checks: Vec<(&str, &str, &str)> = writes.iter().map(|(n, q, _)| (*n, *q, "")).collect();
    let rules = db.rules(&checks);
    for (name, query, fragment) in writes {
        let c = check(&rules, name);
        let err = measure(c).await.expect_err(query);
        assert!(err.0.contains(fragment), "{query}: {err}");
        assert_eq!(verdict(c, Err(err)).0, Status::Error, "{query}");
    }
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t").await, 3);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t WHERE lag = 0").await, 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t WHERE id = 9").await, 0);
    let tables_named_z = match db.kind() {
        "postgres" => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'z'",
        "mysql" => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'z'"
        }
        _ => "SELECT COUNT(*) FROM sqlite_master WHERE name = 'z'",
    };
    assert_eq!(db.scalar(tables_named_z).await, 0);
}

async fn statement_timeout_is_an_error(db: Db) {
    let (query, fragment) = match db.kind() {
        "postgres" => ("SELECT pg_sleep(5)", "statement timeout"),
        "mysql" => ("SELECT SLEEP(5)", "max_statement_time exceeded"),
        _ => (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
            "statement timeout: the query was interrupted after 1s",
        ),
    };
    let rules = load_with_url(
        &sql_rules(db.kind(), "1s", &[("slow", query, "")]),
        db.url(),
    )
    .unwrap();
    let started = Instant::now();
    let err = measure(check(&rules, "slow")).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.0.contains(fragment), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The session was cancelled, not left running: the database is usable at once.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM t").await, 3);
}

/// The value each of `columns` of `query`'s first row measures (one check per column).
async fn values_of(db: &Db, query: &str, columns: &[&str]) -> Vec<Option<Value>> {
    let extras: Vec<String> = columns.iter().map(|c| format!("value: {c}")).collect();
    let checks: Vec<(&str, &str, &str)> = columns
        .iter()
        .zip(&extras)
        .map(|(c, e)| (*c, query, e.as_str()))
        .collect();
    let rules = db.rules(&checks);
    let mut values = Vec::new();
    for c in columns {
        let m = measure(check(&rules, c)).await.unwrap();
        values.push(single(&m).cloned());
    }
    values
}

#[tokio::test]
async fn postgres_types_become_values() {
    let db = Db::postgres().await;
    let query = "SELECT true AS b, 12.50::numeric AS n, interval '90 seconds' AS i, 'x'::text AS t, \
                 NULL::int AS z, '{\"a\": 2}'::jsonb -> 'a' AS j, 7::int2 AS s, 2.5::float4 AS f";
    let got = values_of(&db, query, &["b", "n", "i", "t", "z", "j", "s", "f"]).await;
    let num = |n: f64| Some(Value::Num(n));
    let expected = [
        num(1.0),
        num(12.5),
        num(90.0),
        Some(Value::Text("x".into())),
        None,
        num(2.0),
        num(7.0),
        num(2.5),
    ];
    assert_eq!(got, expected);
}

#[tokio::test]
async fn mariadb_types_become_values() {
    let db = Db::mysql().await;
    let query = "SELECT TRUE AS b, CAST(12.50 AS DECIMAL(6,2)) AS n, 'x' AS t, DATE('2024-05-06') AS d, \
                 CAST(18446744073709551615 AS UNSIGNED) AS u, 2.5e0 AS f, NULL AS z";
    let got = values_of(&db, query, &["b", "n", "t", "d", "u", "f", "z"]).await;
    let num = |n: f64| Some(Value::Num(n));
    let text = |t: &str| Some(Value::Text(t.into()));
    let expected = [
        num(1.0),
        num(12.5),
        text("x"),
        text("2024-05-06"),
        num(18446744073709551615.0),
        num(2.5),
        None,
    ];
    assert_eq!(got, expected);
}

#[tokio::test]
async fn refused_connections_are_errors_that_name_the_server_not_the_password() {
    let port = closed_port().await;
    for (kind, url) in [
        (
            "postgres",
            format!("postgres://postgres:hunter2-secret@127.0.0.1:{port}/x"),
        ),
        (
            "mysql",
            format!("mysql://root:hunter2-secret@127.0.0.1:{port}/x"),
        ),
    ] {
        let rules = select_one(kind, &url);
        let err = quick_error(check(&rules, "c"), Duration::from_secs(2), kind).await;
        assert_refused_connection(&err, port, kind);
        assert!(!err.0.contains("hunter2"), "{kind}: {err}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_error_without_the_password() {
    let db = Db::mysql().await;
    let url = db.url().replace("root@", "root:hunter2-secret@");
    let rules = select_one("mysql", &url);
    let message = judged_error(check(&rules, "c")).await;
    assert!(message.contains("Access denied"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn a_missing_sqlite_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sqlite");
    let url = format!("sqlite://{}", path.display());
    let rules = select_one("sqlite", &url);
    let err = measure(check(&rules, "c")).await.unwrap_err();
    assert!(err.0.starts_with("cannot connect to "), "{err}");
    assert!(!path.exists(), "a check must never create the database");
}
