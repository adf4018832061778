//! MySQL / MariaDB: a statement time limit, `START TRANSACTION READ ONLY`, the statement, `ROLLBACK`.
//!
//! DDL commits implicitly in these servers and escapes the transaction; the [`super::guard`]
//! refuses it before it is sent. Ordinary writes are refused by the server
//! ("Cannot execute statement in a READ ONLY transaction").

use sqlx::error::BoxDynError;
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlValueRef};
use sqlx::{AssertSqlSafe, ConnectOptions, Decode};

use super::{
    Deadline, Reading, Request, decimal_text, endpoint, execute, num, printable_text, text,
};
use crate::probe::ProbeError;
use crate::result::Value;

/// Reads the wanted columns of every row the request's statement returns, read-only, in time.
pub(super) async fn read(url: &str, request: Request<'_>) -> Result<Vec<Reading>, ProbeError> {
    let opts: MySqlConnectOptions = super::connect_options(url, "MySQL")?;
    let at = endpoint(opts.get_host(), opts.get_port());
    super::read_once::<MySql>(&at, opts.connect(), begin_read_only, request, decode_value).await
}

/// A statement time limit for the session, then `START TRANSACTION READ ONLY`.
pub(crate) async fn begin_read_only(
    conn: &mut MySqlConnection,
    deadline: Deadline,
) -> Result<(), ProbeError> {
    limit_statement_time(conn, deadline).await?;
    execute(conn, "START TRANSACTION READ ONLY").await
}

/// MariaDB knows `max_statement_time` (seconds), MySQL `max_execution_time` (milliseconds, for
/// SELECT). Each refuses the other's variable, so try MariaDB's first and MySQL's on refusal.
pub(crate) async fn limit_statement_time(
    conn: &mut MySqlConnection,
    deadline: Deadline,
) -> Result<(), ProbeError> {
    let left = deadline.statement_limit();
    let mariadb = format!(
        "SET SESSION max_statement_time = {:.3}",
        left.as_secs_f64().max(0.001)
    );
    if execute(conn, AssertSqlSafe(mariadb)).await.is_ok() {
        return Ok(());
    }
    let mysql = format!(
        "SET SESSION max_execution_time = {}",
        left.as_millis().max(1)
    );
    execute(conn, AssertSqlSafe(mysql))
        .await
        .map_err(|e| ProbeError::new(format!("cannot set a statement time limit: {e}")))
}

/// One cell as a [`Value`]; NULL never gets here (MySQL's zero dates count as NULL).
pub(crate) fn decode_value(raw: MySqlValueRef<'_>, ty: &str) -> Result<Option<Value>, BoxDynError> {
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
