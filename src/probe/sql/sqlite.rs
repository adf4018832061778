//! SQLite: the file opened read-only (never created), `PRAGMA query_only = ON`, a progress handler
//! that interrupts the statement at the deadline (SQLite has no statement timeout of its own), a
//! busy timeout for locked files, `BEGIN` … `ROLLBACK`.

use std::time::Instant;

use sqlx::error::BoxDynError;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection, SqliteValueRef};
use sqlx::{ConnectOptions, Decode};

use super::{Deadline, Reading, Request, db_error, execute, printable_text};
use crate::probe::ProbeError;
use crate::result::Value;

/// Virtual-machine steps between two looks at the clock.
pub(crate) const STEPS_PER_CHECK: i32 = 1000;

/// Reads the wanted columns of every row the request's statement returns, read-only, in time.
pub(super) async fn read(url: &str, request: Request<'_>) -> Result<Vec<Reading>, ProbeError> {
    let deadline = request.deadline;
    let opts = super::connect_options::<SqliteConnectOptions>(url, "SQLite")?
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(deadline.remaining());
    let at = opts.get_filename().display().to_string();
    super::read_once::<Sqlite>(&at, opts.connect(), begin_read_only, request, decode_value)
        .await
        .map_err(|e| interrupted_is_timeout(e, deadline))
}

/// `PRAGMA query_only`, a progress handler that interrupts the statement at its limit, `BEGIN`.
pub(crate) async fn begin_read_only(
    conn: &mut SqliteConnection,
    deadline: Deadline,
) -> Result<(), ProbeError> {
    execute(conn, "PRAGMA query_only = ON").await?;
    let until = Instant::now() + deadline.statement_limit();
    conn.lock_handle()
        .await
        .map_err(db_error)?
        .set_progress_handler(STEPS_PER_CHECK, move || Instant::now() < until);
    execute(conn, "BEGIN").await
}

/// SQLite reports the progress handler's stop as a bare "interrupted"; say why.
pub(crate) fn interrupted_is_timeout(e: ProbeError, deadline: Deadline) -> ProbeError {
    if e.0.starts_with("interrupted") {
        ProbeError::new(format!(
            "statement timeout: the query was interrupted after {}",
            deadline.total_text()
        ))
    } else {
        e
    }
}

/// One non-NULL cell as a [`Value`], by the storage class of the value itself (SQLite types
/// values, not columns).
pub(crate) fn decode_value(
    raw: SqliteValueRef<'_>,
    ty: &str,
) -> Result<Option<Value>, BoxDynError> {
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
