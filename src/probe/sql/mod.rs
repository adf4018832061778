//! `kind: sql` — runs a query in a read-only transaction with a statement timeout and measures a
//! column (one series per row when `series:` names a key column).
//!
//! One connection per run, never a pool: a pool turns "connection refused" into "pool timed out".
//! Each backend (`postgres.rs`, `mysql.rs`, `sqlite.rs`) says where to connect, how to open its
//! kind of read-only transaction with a statement limit, and how to decode a cell; `read_once`
//! here connects, runs the statement the [`guard`] let through, reads the chosen columns of every
//! row and always rolls back, and this file turns those readings into samples and expectations.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::error::BoxDynError;
use sqlx::{
    AssertSqlSafe, Column, ColumnIndex, ConnectOptions, Connection, Database, Executor,
    IntoArguments, Row, SqlSafeStr, Statement, TypeInfo, ValueRef,
};

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues, TargetSpec};
use crate::result::Value;

mod guard;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

pub use guard::{Dialect, read_only_statement};

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlProbe {
    /// The query. It runs read-only: a statement that writes fails the check as `error`.
    pub query: String,
    /// Column to measure (default: the first column).
    #[serde(default)]
    pub value: Option<String>,
    /// Column whose value names the series of each row (one sample per row).
    #[serde(default)]
    pub series: Option<String>,
    #[serde(default)]
    pub expect: SqlExpect,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SqlExpect {
    /// Condition on the number of rows returned.
    pub rows: Option<Condition>,
}

impl Probe for SqlProbe {
    const TARGET_KINDS: &'static [&'static str] = &["postgres", "mysql", "sqlite"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if self.query.trim().is_empty() {
            issues.at(&["query"], "query is empty");
        }
        issues.condition(&["expect", "rows"], self.expect.rows.as_ref());
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let target = ctx
            .target()
            .ok_or_else(|| ProbeError::new("an sql check needs a target or a url"))?;
        let url = target
            .spec
            .sql_url()
            .ok_or_else(|| ProbeError::new(format!("target {} is not a database", target.name)))?;
        let dialect = match &target.spec {
            TargetSpec::Postgres(_) => Dialect::Postgres,
            TargetSpec::Mysql(_) => Dialect::MySql,
            _ => Dialect::Sqlite,
        };
        let statement = read_only_statement(dialect, &self.query).map_err(ProbeError)?;
        let wanted = Wanted {
            value: self.value.as_deref(),
            series: self.series.as_deref(),
        };
        let request = Request {
            statement,
            wanted: &wanted,
            deadline: Deadline::after(ctx.timeout),
        };
        let readings = match dialect {
            Dialect::Postgres => postgres::read(url, request).await,
            Dialect::MySql => mysql::read(url, request).await,
            Dialect::Sqlite => sqlite::read(url, request).await,
        };
        let readings =
            readings.map_err(|e| ProbeError(crate::secrets::mask_url_password(&e.0, url)))?;
        measurement(readings, self.series.is_some(), self.expect.rows.as_ref()).map_err(ProbeError)
    }
}

/// What one run asks of its database: the statement the [`guard`] let through, the columns to
/// read, and the time it has.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    pub statement: &'a str,
    pub wanted: &'a Wanted<'a>,
    pub deadline: Deadline,
}

/// The columns a check reads, by the names written in the rule.
pub(crate) struct Wanted<'a> {
    pub value: Option<&'a str>,
    pub series: Option<&'a str>,
}

/// Positions of the wanted columns in the result.
#[derive(Debug, PartialEq)]
pub(crate) struct Picked {
    pub value: usize,
    pub series: Option<usize>,
}

impl Wanted<'_> {
    /// Finds the wanted columns among `columns` (exact name first, then ignoring ASCII case, as
    /// MySQL does and as PostgreSQL folds unquoted names). Unknown names list what exists.
    pub fn pick(&self, columns: &[String]) -> Result<Picked, ProbeError> {
        if columns.is_empty() {
            return Err(ProbeError::new("the query returns no columns"));
        }
        let find = |field: &str, name: &str| -> Result<usize, ProbeError> {
            columns
                .iter()
                .position(|c| c == name)
                .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
                .ok_or_else(|| {
                    ProbeError::new(format!(
                        "{field}: column {name:?} is not in the result; columns: {}",
                        columns.join(", ")
                    ))
                })
        };
        Ok(Picked {
            value: match self.value {
                Some(name) => find("value", name)?,
                None => 0,
            },
            series: self.series.map(|name| find("series", name)).transpose()?,
        })
    }
}

/// One row, reduced to what the check measures. `value` is `None` for SQL NULL.
#[derive(Debug, PartialEq)]
pub(crate) struct Reading {
    pub value: Option<Value>,
    pub series: Option<String>,
}

impl Reading {
    /// Reads the picked cells of one row with a backend's `decode` (column index → value or NULL).
    pub fn of_row(
        picked: &Picked,
        decode: impl Fn(usize) -> Result<Option<Value>, String>,
    ) -> Result<Reading, ProbeError> {
        let value = decode(picked.value).map_err(ProbeError)?;
        let series = match picked.series {
            Some(i) => Some(
                decode(i)
                    .map_err(ProbeError)?
                    .map(|v| v.as_text())
                    .unwrap_or_else(|| "NULL".into()),
            ),
            None => None,
        };
        Ok(Reading { value, series })
    }
}

/// Samples from the rows: one per row with `series:`, else the first row's value. NULL values give
/// no sample. A series key seen twice is an error: its baseline would mix two things.
fn measurement(
    readings: Vec<Reading>,
    per_row: bool,
    rows: Option<&Condition>,
) -> Result<Measurement, String> {
    let mut m = Measurement::default();
    if let Some(cond) = rows {
        let count = Value::Num(readings.len() as f64);
        if !cond.matches(&count) {
            m.failures
                .push(format!("rows: {} rows, expected {cond}", readings.len()));
        }
    }
    if !per_row {
        if let Some(value) = readings.into_iter().next().and_then(|r| r.value) {
            m.samples.push(Sample::single(value));
        }
        return Ok(m);
    }
    for r in readings {
        let series = r.series.unwrap_or_default();
        if m.samples.iter().any(|s| s.series == series) {
            return Err(format!(
                "series: the value {series:?} appears in more than one row; series keys must be unique"
            ));
        }
        if let Some(value) = r.value {
            m.samples.push(Sample { series, value });
        }
    }
    Ok(m)
}

/// How long the database gets to report its own statement timeout before patrol stops waiting:
/// its message ("canceling statement due to statement timeout") says more than patrol's.
const DATABASE_FIRST: Duration = Duration::from_millis(500);

/// Longest patrol waits to roll back and say goodbye after the check's work is done.
const FINISH_WITHIN: Duration = Duration::from_secs(1);

/// When the check's time is up. Connecting, the statement timeout and closing all draw on it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            total: timeout,
        }
    }

    /// Time left, at least a millisecond (a zero statement timeout means "none" to the databases).
    pub fn remaining(self) -> Duration {
        self.at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }

    /// The statement timeout to give the database: what is left, less a tenth (at most 100 ms), so
    /// the database stops the statement and says so just before the runner's own timeout would
    /// cut the check off with a vaguer message.
    pub fn statement_limit(self) -> Duration {
        let left = self.remaining();
        left.saturating_sub((left / 10).min(Duration::from_millis(100)))
            .max(Duration::from_millis(1))
    }

    /// The whole budget as people write it (`1s`).
    pub fn total_text(self) -> String {
        crate::config::duration::format(self.total)
    }

    fn timed_out(self, what: &str) -> ProbeError {
        ProbeError::new(format!("{what} timed out after {}", self.total_text()))
    }

    /// Runs `fut` until the deadline (plus `grace`, so the database's own timeout can speak first).
    pub async fn bound<T>(
        self,
        what: &str,
        grace: Duration,
        fut: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, ProbeError> {
        match tokio::time::timeout(self.remaining() + grace, fut).await {
            Ok(r) => r.map_err(db_error),
            Err(_) => Err(self.timed_out(what)),
        }
    }
}

/// A backend's reading of one non-NULL cell, given the cell and the name of its type.
pub(crate) type DecodeValue<DB> =
    for<'r> fn(<DB as Database>::ValueRef<'r>, &str) -> Result<Option<Value>, BoxDynError>;

/// One run on one connection: connects to `at` within the deadline, lets `begin_read_only` open
/// the backend's kind of read-only transaction with its statement limit, prepares and runs the
/// statement within the deadline (the database's own timeout speaking first), reads the wanted
/// columns of every row with `decode_value`, and always rolls back and closes.
pub(crate) async fn read_once<DB>(
    at: &str,
    connecting: impl Future<Output = Result<DB::Connection, sqlx::Error>>,
    begin_read_only: impl AsyncFnOnce(&mut DB::Connection, Deadline) -> Result<(), ProbeError>,
    request: Request<'_>,
    decode_value: DecodeValue<DB>,
) -> Result<Vec<Reading>, ProbeError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let Request {
        statement,
        wanted,
        deadline,
    } = request;
    let mut conn = connect(at, deadline, connecting).await?;
    let result = async {
        begin_read_only(&mut conn, deadline).await?;
        let grace = DATABASE_FIRST;
        // A prepared statement: MySQL's binary protocol carries exactly one statement.
        let sql = AssertSqlSafe(statement).into_sql_str();
        let prepared = deadline
            .bound("preparing the query", grace, (&mut conn).prepare(sql))
            .await?;
        // Run before looking at columns: a write has none, and the database's refusal is the
        // message.
        let rows = deadline
            .bound("the query", grace, prepared.query().fetch_all(&mut conn))
            .await?;
        readings::<DB>(&prepared, &rows, wanted, decode_value)
    }
    .await;
    // Always roll back: a check never has anything to keep.
    finish(async move {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        let _ = conn.close().await;
    })
    .await;
    result
}

/// The wanted columns (by the names of `prepared`'s columns) of every row.
fn readings<DB>(
    prepared: &DB::Statement,
    rows: &[DB::Row],
    wanted: &Wanted<'_>,
    decode_value: DecodeValue<DB>,
) -> Result<Vec<Reading>, ProbeError>
where
    DB: Database,
    usize: ColumnIndex<DB::Row>,
{
    let columns: Vec<String> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let picked = wanted.pick(&columns)?;
    rows.iter()
        .map(|row| Reading::of_row(&picked, |i| decode_cell::<DB>(row, i, decode_value)))
        .collect()
}

/// One cell as a [`Value`]: `None` for NULL, else what `decode_value` makes of it by its type;
/// a failure names the column and its type.
pub(crate) fn decode_cell<DB>(
    row: &DB::Row,
    i: usize,
    decode_value: DecodeValue<DB>,
) -> Result<Option<Value>, String>
where
    DB: Database,
    usize: ColumnIndex<DB::Row>,
{
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    let ty = raw.type_info().name().to_string();
    decode_value(raw, &ty).map_err(|e| format!("column {} ({ty}): {e}", row.column(i).name()))
}

/// Runs one statement of a run's set-up (`BEGIN …`, `SET …`); an error is the database's refusal.
pub(crate) async fn execute<C>(conn: &mut C, sql: impl SqlSafeStr) -> Result<(), ProbeError>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(db_error)
}

/// Opens the one connection of a run, naming `at` (host:port or file) when that fails.
pub(crate) async fn connect<C>(
    at: &str,
    deadline: Deadline,
    fut: impl Future<Output = Result<C, sqlx::Error>>,
) -> Result<C, ProbeError> {
    match tokio::time::timeout(deadline.remaining(), fut).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ProbeError::new(format!(
            "cannot connect to {at}: {}",
            db_error(e)
        ))),
        Err(_) => Err(deadline.timed_out(&format!("connecting to {at}"))),
    }
}

/// Rolls back and closes (`work`), bounded: a wedged connection must not hold the check.
async fn finish(work: impl Future<Output = ()>) {
    let _ = tokio::time::timeout(FINISH_WITHIN, work).await;
}

/// The database's own words for a refused statement (`cannot execute DELETE in a read-only
/// transaction`), with its code; other errors with their whole chain.
pub(crate) fn db_error(e: sqlx::Error) -> ProbeError {
    match &e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => ProbeError::new(format!("{} (code {code})", d.message())),
            None => ProbeError::new(d.message()),
        },
        _ => ProbeError::from(e),
    }
}

/// The connect options of a `backend` URL (`PostgreSQL`, `MySQL`…), statements not logged.
pub(crate) fn connect_options<O: ConnectOptions>(
    url: &str,
    backend: &str,
) -> Result<O, ProbeError> {
    let opts =
        O::from_str(url).map_err(|e| ProbeError::new(format!("invalid {backend} URL: {e}")))?;
    Ok(opts.disable_statement_logging())
}

/// `host:port` of a database URL, for messages (never the whole URL: it may hold a password).
pub(crate) fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A decoded number, as a backend's [`DecodeValue`] returns it.
pub(crate) fn num(n: f64) -> Result<Option<Value>, BoxDynError> {
    Ok(Some(Value::Num(n)))
}

/// Decoded text, as a backend's [`DecodeValue`] returns it.
pub(crate) fn text(s: impl Into<String>) -> Result<Option<Value>, BoxDynError> {
    Ok(Some(Value::Text(s.into())))
}

/// Text that is not control characters, for columns of types patrol has no decoder for (PostgreSQL
/// sends enums and domains over text as their label).
pub(crate) fn printable_text(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .then(|| s.to_string())
}

/// A number spelled as text (MySQL DECIMAL arrives as text): `Num` when it parses.
pub(crate) fn decimal_text(s: &str) -> Result<Option<Value>, String> {
    s.trim()
        .parse::<f64>()
        .map(|n| Some(Value::Num(n)))
        .map_err(|_| format!("decimal value {s:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(value: Option<f64>, series: Option<&str>) -> Reading {
        Reading {
            value: value.map(Value::Num),
            series: series.map(String::from),
        }
    }

    #[test]
    fn columns_are_picked_by_name_or_first() {
        let cols: Vec<String> = ["Region", "lag"].iter().map(|s| s.to_string()).collect();
        let w = Wanted {
            value: None,
            series: None,
        };
        assert_eq!(
            w.pick(&cols).unwrap(),
            Picked {
                value: 0,
                series: None
            }
        );
        let w = Wanted {
            value: Some("LAG"),
            series: Some("region"),
        };
        assert_eq!(
            w.pick(&cols).unwrap(),
            Picked {
                value: 1,
                series: Some(0)
            }
        );
        let err = Wanted {
            value: Some("delay"),
            series: None,
        }
        .pick(&cols)
        .unwrap_err();
        assert_eq!(
            err.0,
            "value: column \"delay\" is not in the result; columns: Region, lag"
        );
    }

    #[test]
    fn without_series_only_the_first_row_counts() {
        let m = measurement(
            vec![reading(Some(3.0), None), reading(Some(4.0), None)],
            false,
            None,
        )
        .unwrap();
        assert_eq!(m.samples, vec![Sample::single(Value::Num(3.0))]);
        let m = measurement(vec![reading(None, None)], false, None).unwrap();
        assert!(m.samples.is_empty());
    }

    #[test]
    fn series_give_a_sample_per_row_and_skip_nulls() {
        let rows = vec![
            reading(Some(1.0), Some("a")),
            reading(None, Some("b")),
            reading(Some(2.0), Some("c")),
        ];
        let m = measurement(rows, true, None).unwrap();
        let series: Vec<&str> = m.samples.iter().map(|s| s.series.as_str()).collect();
        assert_eq!(series, ["a", "c"]);
        let dup = measurement(
            vec![reading(Some(1.0), Some("a")), reading(Some(2.0), Some("a"))],
            true,
            None,
        );
        assert!(dup.unwrap_err().contains("more than one row"));
    }

    #[test]
    fn row_count_expectation_names_itself() {
        let cond = Condition::parse("ge(1)");
        let m = measurement(Vec::new(), false, Some(&cond)).unwrap();
        assert_eq!(m.failures, vec!["rows: 0 rows, expected ge(1)".to_string()]);
        let m = measurement(vec![reading(Some(1.0), None)], false, Some(&cond)).unwrap();
        assert!(m.failures.is_empty());
    }
}
