//! `sql: {target, statement, params, write, capture, timeout, max_rows}` — one statement on a
//! `postgres`, `mysql` or `sqlite` target of the rules. Output: `steps.<name>.rows` (each row a
//! mapping of column → value, at most `max_rows` of them, default 1000; `truncated` says when
//! more came), `row_count` (all rows returned), `rows_affected`, plus each `capture` name (a
//! column of the first row).
//!
//! Read-only unless the step says `write: true` AND its target `allow_write: true` (`validate`
//! refuses a write step on a target that does not allow it). Read-only is the database's doing,
//! not patrol's guess: the statement runs in a READ ONLY transaction (PostgreSQL `BEGIN READ
//! ONLY`, MariaDB/MySQL `START TRANSACTION READ ONLY`, SQLite `PRAGMA query_only` on a file opened
//! read-only), after the same statement guard as `kind: sql` checks (one statement; none of the
//! statements a read-only transaction does not stop, such as MySQL DDL). A `DELETE` in a read
//! step therefore fails with the database's own refusal.
//!
//! Under `--dry-run` a write step still runs, in a transaction that is always rolled back, so the
//! plan shows `rows_affected`; only statements that transaction can undo are rehearsed (one
//! INSERT/UPDATE/DELETE/MERGE/REPLACE or reading statement: MySQL DDL would commit on its own).
//!
//! `params` are bound by their JSON type; a value rendered from a template is a string, so on
//! PostgreSQL cast it where a number is meant (`WHERE id = $1::int`). Cells come back as the
//! `kind: sql` check reads them: numbers (booleans as 1/0), text (dates, UUIDs…) or null.
//!
//! Connecting, the read-only transactions and the decoding of cells are the `kind: sql` probe's
//! ([`crate::probe::sql`]); this file adds writes, parameters and rows as JSON.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Number, Value, json};
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection};
use sqlx::{
    AssertSqlSafe, Column, ColumnIndex, ConnectOptions, Connection, Database, Either, Executor,
    IntoArguments, Row,
};

use super::{StepEnv, StepKind, targets};
use crate::config::{Issues, PathSeg, RuleSet, Target, TargetSpec};
use crate::probe::ProbeError;
use crate::probe::sql::{
    self as probe_sql, Deadline, DecodeValue, Dialect, mysql, postgres, read_only_statement, sqlite,
};

/// Target kinds a `sql` step runs on.
const KINDS: &[&str] = &["postgres", "mysql", "sqlite"];

/// How long the database gets to report its own statement timeout before the step stops waiting.
const DATABASE_FIRST: Duration = Duration::from_millis(500);

/// Longest the step waits to roll back and close after its work is done.
const FINISH_WITHIN: Duration = Duration::from_secs(2);

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_rows() -> usize {
    1000
}

/// One statement on a database target.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// A `postgres`, `mysql` or `sqlite` target of the rules.
    pub target: String,
    pub statement: String,
    /// Values for the statement's placeholders (`$1`… on PostgreSQL, `?` elsewhere): strings,
    /// numbers, booleans or null.
    #[serde(default)]
    pub params: Vec<Value>,
    /// Let the statement change data (the target must say `allow_write: true` too).
    #[serde(default)]
    pub write: bool,
    /// Output name → column of the first row.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    /// Rows kept in the output (the rest are counted in `row_count`).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
}

/// How a statement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In a read-only transaction, rolled back.
    Read,
    /// In a transaction that is committed.
    Write,
    /// A write under `--dry-run`: in a transaction that is rolled back.
    Rehearse,
}

impl Mode {
    fn of(step: &SqlStep, dry_run: bool) -> Mode {
        match (step.write, dry_run) {
            (false, _) => Mode::Read,
            (true, false) => Mode::Write,
            (true, true) => Mode::Rehearse,
        }
    }

    fn read_only(self) -> bool {
        self == Mode::Read
    }
}

fn dialect_of(target: &Target) -> Dialect {
    match target.spec {
        TargetSpec::Postgres(_) => Dialect::Postgres,
        TargetSpec::Mysql(_) => Dialect::MySql,
        _ => Dialect::Sqlite,
    }
}

fn allows_writes(target: &Target) -> bool {
    match &target.spec {
        TargetSpec::Postgres(t) | TargetSpec::Mysql(t) | TargetSpec::Sqlite(t) => t.allow_write,
        _ => false,
    }
}

impl SqlStep {
    /// The statement to send in `mode`, or why it is refused.
    fn statement_for(&self, dialect: Dialect, mode: Mode) -> Result<&str, String> {
        match mode {
            Mode::Write => Ok(self.statement.trim()),
            Mode::Read => read_only_statement(dialect, &self.statement).map_err(|e| {
                format!(
                    "{e}. This step is read-only; a step that changes data needs `write: true` \
                     (and `allow_write: true` on its target)"
                )
            }),
            Mode::Rehearse => read_only_statement(dialect, &self.statement).map_err(|e| {
                format!(
                    "--dry-run cannot rehearse this statement: it rehearses one INSERT, UPDATE, \
                     DELETE (or reading) statement in a transaction it rolls back, and this one \
                     could escape it ({e})"
                )
            }),
        }
    }

    fn validate_params(&self, issues: &mut Issues) {
        for (i, p) in self.params.iter().enumerate() {
            if p.is_array() || p.is_object() {
                issues.items.push((
                    vec![PathSeg::key("params"), PathSeg::Index(i)],
                    "a parameter is a string, a number, a boolean or null".into(),
                ));
            }
        }
    }
}

impl StepKind for SqlStep {
    fn validate(&self, rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if self.statement.trim().is_empty() {
            issues.at(&["statement"], "statement is empty");
        }
        self.validate_params(issues);
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
        if self.max_rows == 0 {
            issues.at(&["max_rows"], "max_rows must be at least 1");
        }
        let Some(target) = targets::validate(rules, &self.target, KINDS, issues) else {
            return;
        };
        if self.write && !allows_writes(target) {
            issues.at(&["write"], targets::writes_not_allowed(target));
        }
        if !self.write
            && !self.statement.trim().is_empty()
            && let Err(e) = self.statement_for(dialect_of(target), Mode::Read)
        {
            issues.at(&["statement"], e);
        }
    }

    /// A write runs in a rolled-back transaction under `--dry-run`.
    fn dry_run_safe(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let what = if self.write { "write" } else { "read-only" };
        format!(
            "sql ({what}) on {}: {}",
            self.target,
            shortened(&self.statement, 80)
        )
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let target = targets::named(env.rules, &self.target, KINDS)?;
        if self.write && !allows_writes(target) {
            return Err(targets::writes_not_allowed(target));
        }
        let mode = Mode::of(self, env.dry_run);
        let dialect = dialect_of(target);
        let plan = Plan {
            statement: self.statement_for(dialect, mode)?,
            params: &self.params,
            mode,
            deadline: Deadline::after(self.timeout),
            max_rows: self.max_rows,
        };
        let url = target.spec.sql_url().unwrap_or_default();
        let outcome = match dialect {
            Dialect::Postgres => on_postgres(url, &plan).await,
            Dialect::MySql => on_mysql(url, &plan).await,
            Dialect::Sqlite => on_sqlite(url, &plan).await,
        }
        .map_err(|e| crate::secrets::mask_url_password(&e, url))?;
        self.output(outcome, &plan)
    }
}

impl SqlStep {
    /// `{rows, row_count, rows_affected, truncated}` plus the captures (and `rolled_back` for a
    /// rehearsal).
    fn output(&self, outcome: Outcome, plan: &Plan<'_>) -> Result<Value, String> {
        let mut out = Map::new();
        for (name, column) in &self.capture {
            let first = outcome
                .rows
                .first()
                .ok_or_else(|| format!("capture `{name}`: the statement returned no rows"))?;
            let value = first.get(column).ok_or_else(|| {
                format!(
                    "capture `{name}`: no column {column:?} in the result; columns: {}",
                    first.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            out.insert(name.clone(), value.clone());
        }
        let rows_affected = if reads(plan.statement) {
            0
        } else {
            outcome.rows_affected
        };
        out.insert("row_count".into(), json!(outcome.row_count));
        out.insert("rows_affected".into(), json!(rows_affected));
        out.insert(
            "truncated".into(),
            json!(outcome.row_count > outcome.rows.len() as u64),
        );
        if outcome.row_count > outcome.rows.len() as u64 {
            out.insert(
                "note".into(),
                json!(format!(
                    "only the first {} of {} rows are kept (max_rows)",
                    outcome.rows.len(),
                    outcome.row_count
                )),
            );
        }
        if plan.mode == Mode::Rehearse {
            out.insert("rolled_back".into(), json!(true));
        }
        let rows: Vec<Value> = outcome.rows.into_iter().map(Value::Object).collect();
        out.insert("rows".into(), Value::Array(rows));
        Ok(Value::Object(out))
    }
}

/// Whether the statement only reads (the databases disagree on what `rows_affected` means for a
/// SELECT: PostgreSQL counts the rows, SQLite repeats the previous write's count).
fn reads(statement: &str) -> bool {
    matches!(
        first_word(statement).as_str(),
        "SELECT" | "VALUES" | "TABLE" | "SHOW" | "EXPLAIN" | "DESCRIBE" | "DESC" | "PRAGMA"
    )
}

/// The statement's first word, upper-cased, after blanks, comments and opening parentheses.
fn first_word(statement: &str) -> String {
    let mut rest = statement;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return trimmed
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_ascii_uppercase();
        }
    }
}

/// At most `max` characters of `text` on one line.
fn shortened(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut short: String = line.chars().take(max).collect();
    short.push('…');
    short
}

/// What one run sends and how.
struct Plan<'a> {
    statement: &'a str,
    params: &'a [Value],
    mode: Mode,
    deadline: Deadline,
    max_rows: usize,
}

/// What came back.
#[derive(Debug, Default)]
struct Outcome {
    rows: Vec<Map<String, Value>>,
    row_count: u64,
    rows_affected: u64,
}

/// What differs between the databases once connected: binding a JSON parameter, reading the
/// affected-rows count, decoding a cell.
trait Backend: Database {
    fn bind_json<'q>(
        query: Query<'q, Self, <Self as Database>::Arguments>,
        value: &Value,
    ) -> Query<'q, Self, <Self as Database>::Arguments>;

    fn rows_affected(result: &Self::QueryResult) -> u64;

    const DECODE: DecodeValue<Self>;
}

macro_rules! backend {
    ($db:ty, $decode:path) => {
        impl Backend for $db {
            fn bind_json<'q>(
                query: Query<'q, Self, <Self as Database>::Arguments>,
                value: &Value,
            ) -> Query<'q, Self, <Self as Database>::Arguments> {
                match value {
                    Value::Null => query.bind(None::<String>),
                    Value::Bool(b) => query.bind(*b),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => query.bind(i),
                        None => query.bind(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    Value::String(s) => query.bind(s.clone()),
                    other => query.bind(other.to_string()),
                }
            }

            fn rows_affected(result: &Self::QueryResult) -> u64 {
                result.rows_affected()
            }

            const DECODE: DecodeValue<Self> = $decode;
        }
    };
}

backend!(Postgres, postgres::decode_value);
backend!(MySql, mysql::decode_value);
backend!(Sqlite, sqlite::decode_value);

async fn on_postgres(url: &str, plan: &Plan<'_>) -> Result<Outcome, String> {
    let opts: PgConnectOptions = probe_sql::connect_options(url, "PostgreSQL").map_err(text)?;
    let at = probe_sql::endpoint(opts.get_host(), opts.get_port());
    let read_only = plan.mode.read_only();
    let begin = async |conn: &mut PgConnection, deadline: Deadline| {
        if read_only {
            return postgres::begin_read_only(conn, deadline).await;
        }
        probe_sql::execute(&mut *conn, "BEGIN").await?;
        let ms = deadline.statement_limit().as_millis();
        let limit = format!("SET LOCAL statement_timeout = {ms}");
        probe_sql::execute(conn, AssertSqlSafe(limit)).await
    };
    run_on::<Postgres>(&at, opts.connect(), begin, plan).await
}

async fn on_mysql(url: &str, plan: &Plan<'_>) -> Result<Outcome, String> {
    let opts: MySqlConnectOptions = probe_sql::connect_options(url, "MySQL").map_err(text)?;
    let at = probe_sql::endpoint(opts.get_host(), opts.get_port());
    let read_only = plan.mode.read_only();
    let begin = async |conn: &mut MySqlConnection, deadline: Deadline| {
        if read_only {
            return mysql::begin_read_only(conn, deadline).await;
        }
        mysql::limit_statement_time(&mut *conn, deadline).await?;
        probe_sql::execute(conn, "START TRANSACTION").await
    };
    run_on::<MySql>(&at, opts.connect(), begin, plan).await
}

async fn on_sqlite(url: &str, plan: &Plan<'_>) -> Result<Outcome, String> {
    let read_only = plan.mode.read_only();
    let opts = probe_sql::connect_options::<SqliteConnectOptions>(url, "SQLite")
        .map_err(text)?
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(plan.deadline.remaining());
    let at = opts.get_filename().display().to_string();
    let begin = async |conn: &mut SqliteConnection, deadline: Deadline| {
        if read_only {
            return sqlite::begin_read_only(conn, deadline).await;
        }
        // SQLite has no statement timeout: a progress handler interrupts at the deadline.
        let until = Instant::now() + deadline.statement_limit();
        conn.lock_handle()
            .await
            .map_err(probe_sql::db_error)?
            .set_progress_handler(sqlite::STEPS_PER_CHECK, move || Instant::now() < until);
        probe_sql::execute(conn, "BEGIN").await
    };
    run_on::<Sqlite>(&at, opts.connect(), begin, plan)
        .await
        .map_err(|e| sqlite::interrupted_is_timeout(ProbeError(e), plan.deadline).0)
}

fn text(e: ProbeError) -> String {
    e.0
}

/// One run on one connection: connects to `at`, lets `begin` open the transaction the mode
/// needs, runs the statement, commits a write, and always ends with a rollback and a close (which
/// undoes a rehearsal or a failed write; after a commit there is nothing left to undo).
async fn run_on<DB>(
    at: &str,
    connecting: impl Future<Output = Result<DB::Connection, sqlx::Error>>,
    begin: impl AsyncFnOnce(&mut DB::Connection, Deadline) -> Result<(), ProbeError>,
    plan: &Plan<'_>,
) -> Result<Outcome, String>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut conn = probe_sql::connect(at, plan.deadline, connecting)
        .await
        .map_err(text)?;
    let result = async {
        begin(&mut conn, plan.deadline).await.map_err(text)?;
        let outcome = statement::<DB>(&mut conn, plan).await?;
        if plan.mode == Mode::Write {
            let commit = sqlx::raw_sql("COMMIT").execute(&mut conn);
            match tokio::time::timeout(plan.deadline.remaining() + DATABASE_FIRST, commit).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("COMMIT: {}", probe_sql::db_error(e).0)),
                Err(_) => return Err("COMMIT timed out: the write may or may not be kept".into()),
            }
        }
        Ok(outcome)
    }
    .await;
    let finish = async {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        let _ = conn.close().await;
    };
    // Closing without a COMMIT rolls back too, so a wedged connection loses nothing by this bound.
    let _ = tokio::time::timeout(FINISH_WITHIN, finish).await;
    result
}

/// Runs the statement with its parameters; every row's columns (up to `max_rows` rows) and the
/// affected-rows count.
async fn statement<DB>(conn: &mut DB::Connection, plan: &Plan<'_>) -> Result<Outcome, String>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut query = sqlx::query::<DB>(AssertSqlSafe(plan.statement.to_string()));
    for value in plan.params {
        query = DB::bind_json(query, value);
    }
    let work = async {
        let mut stream = conn.fetch_many(query);
        let mut out = Outcome::default();
        while let Some(item) = stream.next().await {
            match item.map_err(|e| probe_sql::db_error(e).0)? {
                Either::Left(result) => out.rows_affected += DB::rows_affected(&result),
                Either::Right(row) => {
                    out.row_count += 1;
                    if out.rows.len() < plan.max_rows {
                        out.rows.push(row_json::<DB>(&row)?);
                    }
                }
            }
        }
        Ok(out)
    };
    match tokio::time::timeout(plan.deadline.remaining() + DATABASE_FIRST, work).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the statement timed out after {}",
            plan.deadline.total_text()
        )),
    }
}

/// A row as `{column: value}`: numbers, text, or null.
fn row_json<DB>(row: &DB::Row) -> Result<Map<String, Value>, String>
where
    DB: Backend,
    usize: ColumnIndex<DB::Row>,
{
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let cell = probe_sql::decode_cell::<DB>(row, i, DB::DECODE)?;
        out.insert(column.name().to_string(), cell_json(cell));
    }
    Ok(out)
}

/// A decoded cell as JSON: whole numbers as integers, other numbers as floats, text as strings.
fn cell_json(cell: Option<crate::result::Value>) -> Value {
    use crate::result::Value as Cell;
    match cell {
        None => Value::Null,
        Some(Cell::Num(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(n as i64),
        Some(Cell::Num(n)) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Some(Cell::Text(t)) => Value::String(t),
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
