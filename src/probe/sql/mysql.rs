//! MySQL / MariaDB: a statement time limit, `START TRANSACTION READ ONLY`, the statement, `ROLLBACK`.
//!
//! DDL commits implicitly in these servers and escapes the transaction; the [`super::guard`]
//! refuses it before it is sent. Ordinary writes are refused by the server
//! ("Cannot execute statement in a READ ONLY transaction").

use std::str::FromStr;

use sqlx::error::BoxDynError;
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlRow, MySqlValueRef};
use sqlx::{
    AssertSqlSafe, Column, ConnectOptions, Connection, Decode, Executor, Row, SqlSafeStr,
    Statement, TypeInfo, ValueRef,
};

use super::{Deadline, Reading, Wanted, db_error, decimal_text, endpoint, printable_text};
use crate::probe::ProbeError;
use crate::result::Value;

/// Reads the wanted columns of every row `statement` returns, read-only, within `deadline`.
pub(super) async fn read(
    url: &str,
    statement: &str,
    wanted: &Wanted<'_>,
    deadline: Deadline,
) -> Result<Vec<Reading>, ProbeError> {
    let opts = MySqlConnectOptions::from_str(url)
        .map_err(|e| ProbeError::new(format!("invalid MySQL URL: {e}")))?
        .disable_statement_logging();
    let at = endpoint(opts.get_host(), opts.get_port());
    let mut conn = super::connect(&at, deadline, opts.connect()).await?;
    let result = read_only(&mut conn, statement, wanted, deadline).await;
    // Always roll back: a check never has anything to keep.
    super::finish(async move {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
        let _ = conn.close().await;
    })
    .await;
    result
}

async fn read_only(
    conn: &mut MySqlConnection,
    statement: &str,
    wanted: &Wanted<'_>,
    deadline: Deadline,
) -> Result<Vec<Reading>, ProbeError> {
    limit_statement_time(conn, deadline).await?;
    sqlx::raw_sql("START TRANSACTION READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let grace = super::DATABASE_FIRST;
    // A prepared statement: the binary protocol carries exactly one statement.
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

/// MariaDB knows `max_statement_time` (seconds), MySQL `max_execution_time` (milliseconds, for
/// SELECT). Each refuses the other's variable, so try MariaDB's first and MySQL's on refusal.
async fn limit_statement_time(
    conn: &mut MySqlConnection,
    deadline: Deadline,
) -> Result<(), ProbeError> {
    let left = deadline.statement_limit();
    let mariadb = format!(
        "SET SESSION max_statement_time = {:.3}",
        left.as_secs_f64().max(0.001)
    );
    if sqlx::raw_sql(AssertSqlSafe(mariadb))
        .execute(&mut *conn)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let mysql = format!(
        "SET SESSION max_execution_time = {}",
        left.as_millis().max(1)
    );
    sqlx::raw_sql(AssertSqlSafe(mysql))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| {
            ProbeError::new(format!(
                "cannot set a statement time limit: {}",
                db_error(e)
            ))
        })
}

/// One cell as a [`Value`]; `None` for NULL (MySQL's zero dates count as NULL).
fn decode(row: &MySqlRow, i: usize) -> Result<Option<Value>, String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    let ty = raw.type_info().name().to_string();
    decode_value(raw, &ty).map_err(|e| format!("column {} ({ty}): {e}", row.column(i).name()))
}

fn decode_value(raw: MySqlValueRef<'_>, ty: &str) -> Result<Option<Value>, BoxDynError> {
    fn num(n: f64) -> Result<Option<Value>, BoxDynError> {
        Ok(Some(Value::Num(n)))
    }
    fn text(s: impl Into<String>) -> Result<Option<Value>, BoxDynError> {
        Ok(Some(Value::Text(s.into())))
    }
    match ty {
        "NULL" => Ok(None),
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
            num(<i64 as Decode<MySql>>::decode(raw)? as f64)
        }
        t if t.ends_with(" UNSIGNED") || t == "BIT" => {
            num(<u64 as Decode<MySql>>::decode(raw)? as f64)
        }
        "FLOAT" | "DOUBLE" => num(<f64 as Decode<MySql>>::decode(raw)?),
        "DECIMAL" => Ok(decimal_text(&<String as Decode<MySql>>::decode(raw)?)?),
        "DATE" => text(<chrono::NaiveDate as Decode<MySql>>::decode(raw)?.to_string()),
        "DATETIME" | "TIMESTAMP" => {
            text(<chrono::NaiveDateTime as Decode<MySql>>::decode(raw)?.to_string())
        }
        "TIME" => text(<MySqlTime as Decode<MySql>>::decode(raw)?.to_string()),
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            match printable_text(&<Vec<u8> as Decode<MySql>>::decode(raw)?) {
                Some(s) => text(s),
                None => Err(
                    "binary data patrol cannot show; convert it in the query (e.g. HEX(col))"
                        .into(),
                ),
            }
        }
        _ => text(<String as Decode<MySql>>::decode(raw)?),
    }
}
