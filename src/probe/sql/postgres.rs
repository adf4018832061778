//! PostgreSQL: `BEGIN READ ONLY` + `SET LOCAL statement_timeout`, the statement, `ROLLBACK`.

use sqlx::error::BoxDynError;
use sqlx::postgres::types::{Oid, PgInterval};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgValueRef, Postgres};
use sqlx::{AssertSqlSafe, ConnectOptions, Decode};

use super::{Deadline, Reading, Request, endpoint, execute, num, printable_text, text};
use crate::probe::ProbeError;
use crate::result::Value;

/// Reads the wanted columns of every row the request's statement returns, read-only, in time.
pub(super) async fn read(url: &str, request: Request<'_>) -> Result<Vec<Reading>, ProbeError> {
    let opts: PgConnectOptions = super::connect_options(url, "PostgreSQL")?;
    let at = endpoint(opts.get_host(), opts.get_port());
    super::read_once::<Postgres>(&at, opts.connect(), begin_read_only, request, decode_value).await
}

/// `BEGIN READ ONLY` with a `statement_timeout` for this transaction only.
pub(crate) async fn begin_read_only(
    conn: &mut PgConnection,
    deadline: Deadline,
) -> Result<(), ProbeError> {
    execute(conn, "BEGIN READ ONLY").await?;
    let ms = deadline.statement_limit().as_millis();
    execute(
        conn,
        AssertSqlSafe(format!("SET LOCAL statement_timeout = {ms}")),
    )
    .await
}

/// One non-NULL cell as a [`Value`] (JSON null is `None` too).
pub(crate) fn decode_value(raw: PgValueRef<'_>, ty: &str) -> Result<Option<Value>, BoxDynError> {
    match ty {
        "BOOL" => num(if <bool as Decode<Postgres>>::decode(raw)? {
            1.0
        } else {
            0.0
        }),
        "INT2" => num(<i16 as Decode<Postgres>>::decode(raw)?.into()),
        "INT4" => num(<i32 as Decode<Postgres>>::decode(raw)?.into()),
        "INT8" => num(<i64 as Decode<Postgres>>::decode(raw)? as f64),
        "OID" => num(<Oid as Decode<Postgres>>::decode(raw)?.0.into()),
        "FLOAT4" => num(<f32 as Decode<Postgres>>::decode(raw)?.into()),
        "FLOAT8" => num(<f64 as Decode<Postgres>>::decode(raw)?),
        "NUMERIC" => num(numeric(raw.as_bytes()?)?),
        "INTERVAL" => num(interval_seconds(&<PgInterval as Decode<Postgres>>::decode(
            raw,
        )?)),
        "TIMESTAMPTZ" => {
            text(<chrono::DateTime<chrono::Utc> as Decode<Postgres>>::decode(raw)?.to_rfc3339())
        }
        "TIMESTAMP" => text(<chrono::NaiveDateTime as Decode<Postgres>>::decode(raw)?.to_string()),
        "DATE" => text(<chrono::NaiveDate as Decode<Postgres>>::decode(raw)?.to_string()),
        "TIME" => text(<chrono::NaiveTime as Decode<Postgres>>::decode(raw)?.to_string()),
        "UUID" => text(uuid::Uuid::from_slice(raw.as_bytes()?)?.to_string()),
        "JSON" | "JSONB" => Ok(json_value(<serde_json::Value as Decode<Postgres>>::decode(
            raw,
        )?)),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "UNKNOWN" => {
            text(<String as Decode<Postgres>>::decode(raw)?)
        }
        _ => match printable_text(raw.as_bytes()?) {
            Some(s) => text(s),
            None => Err(
                "patrol cannot read this type; cast the column in the query (e.g. col::text)"
                    .into(),
            ),
        },
    }
}

/// An interval in seconds (a month counts 30 days, as PostgreSQL's `EXTRACT(EPOCH …)` does).
fn interval_seconds(i: &PgInterval) -> f64 {
    (i64::from(i.months) * 30 + i64::from(i.days)) as f64 * 86_400.0 + i.microseconds as f64 / 1e6
}

/// JSON scalars as values: numbers and booleans measure, strings are text, null is no value.
fn json_value(v: serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Bool(b) => Some(Value::Num(if b { 1.0 } else { 0.0 })),
        serde_json::Value::Number(n) => n.as_f64().map(Value::Num),
        serde_json::Value::String(s) => Some(Value::Text(s)),
        other => Some(Value::Text(other.to_string())),
    }
}

/// PostgreSQL's binary NUMERIC: `ndigits, weight, sign, dscale` (i16/u16 each) then base-10000
/// digits, the first worth 10000^weight. Spelled out in decimal and parsed, so `0.1` stays `0.1`.
fn numeric(bytes: &[u8]) -> Result<f64, String> {
    let word = |i: usize| -> Result<u16, String> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated NUMERIC value".to_string())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    match sign {
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    if ndigits == 0 {
        return Ok(0.0);
    }
    let mut spelled = String::from(if sign == 0x4000 { "-" } else { "" });
    for i in 0..ndigits {
        spelled.push_str(&format!("{:04}", word(4 + i)?));
    }
    let exponent = 4 * (weight - ndigits as i64 + 1);
    format!("{spelled}e{exponent}")
        .parse()
        .map_err(|e| format!("NUMERIC: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, 0] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_binary_decodes_exactly() {
        assert_eq!(numeric(&encode(0, 0, &[12, 3400])).unwrap(), 12.34);
        assert_eq!(numeric(&encode(-1, 0, &[1000])).unwrap(), 0.1);
        assert_eq!(numeric(&encode(1, 0x4000, &[1, 5])).unwrap(), -10005.0);
        assert_eq!(numeric(&encode(0, 0, &[])).unwrap(), 0.0);
        assert!(numeric(&encode(0, 0xC000, &[])).unwrap().is_nan());
        assert!(numeric(&[0, 1]).is_err());
    }

    #[test]
    fn intervals_are_seconds() {
        let i = PgInterval {
            months: 0,
            days: 1,
            microseconds: 1_500_000,
        };
        assert_eq!(interval_seconds(&i), 86_401.5);
    }

    #[test]
    fn json_scalars_measure() {
        assert_eq!(json_value(serde_json::json!(3)), Some(Value::Num(3.0)));
        assert_eq!(
            json_value(serde_json::json!("up")),
            Some(Value::Text("up".into()))
        );
        assert_eq!(json_value(serde_json::json!(null)), None);
        assert_eq!(
            json_value(serde_json::json!([1])),
            Some(Value::Text("[1]".into()))
        );
    }
}
