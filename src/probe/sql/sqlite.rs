//! SQLite: the file opened read-only (never created), `PRAGMA query_only = ON`, a progress handler
//! that interrupts the statement at the deadline (SQLite has no statement timeout of its own), a
//! busy timeout for locked files, `BEGIN` … `ROLLBACK`.

use std::str::FromStr;
use std::time::Instant;

use sqlx::error::BoxDynError;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection, SqliteRow, SqliteValueRef};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection, Decode, Executor, Row, SqlSafeStr,
    Statement, TypeInfo, ValueRef,
};

use super::{Deadline, Reading, Wanted, db_error, printable_text};
use crate::probe::ProbeError;
use crate::result::Value;

/// Virtual-machine steps between two looks at the clock.
const STEPS_PER_CHECK: i32 = 1000;

/// Reads the wanted columns of every row `statement` returns, read-only, within `deadline`.
pub(super) async fn read(
    url: &str,
    statement: &str,
    wanted: &Wanted<'_>,
    deadline: Deadline,
) -> Result<Vec<Reading>, ProbeError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| ProbeError::new(format!("invalid SQLite URL: {e}")))?
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(deadline.remaining())
        .disable_statement_logging();
    let at = opts.get_filename().display().to_string();
    let mut conn = super::connect(&at, deadline, opts.connect()).await?;
    let result = read_only(&mut conn, statement, wanted, deadline).await;
    super::finish(async move {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        let _ = conn.close().await;
    })
    .await;
    result.map_err(|e| interrupted_is_timeout(e, deadline))
}

async fn read_only(
    conn: &mut SqliteConnection,
    statement: &str,
    wanted: &Wanted<'_>,
    deadline: Deadline,
) -> Result<Vec<Reading>, ProbeError> {
    sqlx::raw_sql("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let until = Instant::now() + deadline.statement_limit();
    conn.lock_handle()
        .await
        .map_err(db_error)?
        .set_progress_handler(STEPS_PER_CHECK, move || Instant::now() < until);
    sqlx::raw_sql("BEGIN")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let grace = super::DATABASE_FIRST;
    let prepared = deadline
        .bound(
            "preparing the query",
            grace,
            conn.prepare(AssertSqlSafe(statement).into_sql_str()),
        )
        .await?;
    // Run before looking at columns: a write has none, and the database's refusal is the message.
    let rows = deadline
        .bound("the query", grace, prepared.query().fetch_all(&mut *conn))
        .await?;
    let columns: Vec<String> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let picked = wanted.pick(&columns)?;
    rows.iter()
        .map(|row| Reading::of_row(&picked, |i| decode(row, i)))
        .collect()
}

/// SQLite reports the progress handler's stop as a bare "interrupted"; say why.
fn interrupted_is_timeout(e: ProbeError, deadline: Deadline) -> ProbeError {
    if e.0.starts_with("interrupted") {
        ProbeError::new(format!(
            "statement timeout: the query was interrupted after {}",
            deadline.total_text()
        ))
    } else {
        e
    }
}

/// One cell as a [`Value`], by the storage class of the value itself (SQLite types values, not columns).
fn decode(row: &SqliteRow, i: usize) -> Result<Option<Value>, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    let ty = raw.type_info().name().to_string();
    decode_value(raw, &ty).map_err(|e| format!("column {} ({ty}): {e}", row.column(i).name()))
}

fn decode_value(raw: SqliteValueRef<'_>, ty: &str) -> Result<Option<Value>, BoxDynError> {
    Ok(Some(match ty {
        "INTEGER" | "BOOLEAN" => Value::Num(<i64 as Decode<Sqlite>>::decode(raw)? as f64),
        "REAL" | "NUMERIC" => Value::Num(<f64 as Decode<Sqlite>>::decode(raw)?),
        "BLOB" => match printable_text(&<Vec<u8> as Decode<Sqlite>>::decode(raw)?) {
            Some(s) => Value::Text(s),
            None => {
                return Err(
                    "binary data patrol cannot show; convert it in the query (e.g. hex(col))"
                        .into(),
                );
            }
        },
        _ => Value::Text(<String as Decode<Sqlite>>::decode(raw)?),
    }))
}
