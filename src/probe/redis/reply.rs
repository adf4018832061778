//! From a Redis reply to a measurement: the reply itself (numbers, text, an array's length), or
//! with `field:` one field of `name:value` text (INFO, CLUSTER INFO) or of a map-like reply.

use redis::Value as Reply;

use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::Value;

/// The measurement of `reply`; a server error is a [`ProbeError`], a nil reply or a missing field
/// a failure.
pub fn measure_reply(reply: Reply, field: Option<&str>) -> Result<Measurement, ProbeError> {
    let mut m = Measurement::default();
    let value = match field {
        Some(f) => field_of(reply, f)?,
        None => whole(reply)?,
    };
    match value {
        Ok(v) => m.samples.push(Sample::single(v)),
        Err(failure) => m.failures.push(failure),
    }
    Ok(m)
}

/// Outer error: the server refused; inner error: a failure to report (nil, missing field).
type Reading = Result<Result<Value, String>, ProbeError>;

fn whole(reply: Reply) -> Reading {
    Ok(Ok(match reply {
        Reply::Nil => return Ok(Err("nil reply".into())),
        Reply::Int(n) => Value::Num(n as f64),
        Reply::Double(n) => Value::Num(n),
        Reply::Boolean(b) => Value::Num(if b { 1.0 } else { 0.0 }),
        Reply::Okay => Value::Text("OK".into()),
        Reply::Array(items) | Reply::Set(items) | Reply::Push { data: items, .. } => {
            Value::Num(items.len() as f64)
        }
        Reply::Map(pairs) => Value::Num(pairs.len() as f64),
        Reply::Attribute { data, .. } => return whole(*data),
        Reply::ServerError(e) => return Err(server_error(&e)),
        other => match text_of(&other) {
            Some(t) => number_or_text(&t),
            None => return Err(ProbeError::new(format!("unexpected reply {other:?}"))),
        },
    }))
}

fn field_of(reply: Reply, field: &str) -> Reading {
    if let Reply::ServerError(e) = &reply {
        return Err(server_error(e));
    }
    if let Reply::Attribute { data, .. } = reply {
        return field_of(*data, field);
    }
    let found = match &reply {
        Reply::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text_of(k).as_deref() == Some(field))
            .map(|(_, v)| v.clone()),
        // RESP2 sends maps (CONFIG GET, MEMORY STATS) as flat key, value, key, value arrays.
        Reply::Array(items) if items.len() % 2 == 0 => items
            .chunks(2)
            .find(|kv| text_of(&kv[0]).as_deref() == Some(field))
            .map(|kv| kv[1].clone()),
        _ => match text_of(&reply) {
            Some(text) => {
                return Ok(info_field(&text, field)
                    .map(|v| number_or_text(&v))
                    .ok_or_else(|| format!("field {field} is not in the reply")));
            }
            None => return Ok(Err(format!("field {field}: the reply has no fields"))),
        },
    };
    match found {
        Some(v) => whole(v),
        None => Ok(Err(format!("field {field} is not in the reply"))),
    }
}

/// The value of `field` in INFO-style text (`name:value` lines; `#` lines are section headers).
/// `name.key` reaches into values made of `key=value,…` pairs, as in `slave0.lag` or `db0.keys`.
pub fn info_field(text: &str, field: &str) -> Option<String> {
    let lookup = |name: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    if let Some(v) = lookup(field) {
        return Some(v);
    }
    let (name, key) = field.rsplit_once('.')?;
    let pairs = lookup(name)?;
    pairs
        .split(',')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// A finite number when the text spells one (`"42"`, `"1.5"`), the text otherwise (`"up"`).
fn number_or_text(s: &str) -> Value {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Value::Num(n),
        _ => Value::Text(s.to_string()),
    }
}

fn text_of(reply: &Reply) -> Option<String> {
    match reply {
        Reply::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::SimpleString(s) => Some(s.clone()),
        Reply::VerbatimString { text, .. } => Some(text.clone()),
        Reply::Okay => Some("OK".into()),
        Reply::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn server_error(e: &redis::ServerError) -> ProbeError {
    match e.details() {
        Some(d) => ProbeError::new(format!("{} {d}", e.code())),
        None => ProbeError::new(e.code().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=3\r\nmaster_link_status:up\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=0\r\n";

    fn value(reply: Reply, field: Option<&str>) -> Result<Value, String> {
        let m = measure_reply(reply, field).unwrap();
        match m.samples.first() {
            Some(s) => Ok(s.value.clone()),
            None => Err(m.failures.join("; ")),
        }
    }

    #[test]
    fn info_fields_are_numbers_or_text() {
        let bulk = || Reply::BulkString(INFO.as_bytes().to_vec());
        assert_eq!(
            value(bulk(), Some("role")),
            Ok(Value::Text("master".into()))
        );
        assert_eq!(value(bulk(), Some("connected_slaves")), Ok(Value::Num(1.0)));
        assert_eq!(
            value(bulk(), Some("master_link_status")),
            Ok(Value::Text("up".into()))
        );
        assert_eq!(value(bulk(), Some("slave0.lag")), Ok(Value::Num(3.0)));
        assert_eq!(value(bulk(), Some("db0.keys")), Ok(Value::Num(12.0)));
        assert_eq!(
            value(bulk(), Some("used_memory")),
            Err("field used_memory is not in the reply".into())
        );
    }

    #[test]
    fn replies_become_values() {
        assert_eq!(value(Reply::Int(7), None), Ok(Value::Num(7.0)));
        assert_eq!(
            value(Reply::SimpleString("PONG".into()), None),
            Ok(Value::Text("PONG".into()))
        );
        assert_eq!(
            value(Reply::BulkString(b"12.5".to_vec()), None),
            Ok(Value::Num(12.5))
        );
        assert_eq!(
            value(Reply::BulkString(b"inf".to_vec()), None),
            Ok(Value::Text("inf".into()))
        );
        assert_eq!(value(Reply::Nil, None), Err("nil reply".into()));
        assert_eq!(
            value(Reply::Array(vec![Reply::Int(1), Reply::Int(2)]), None),
            Ok(Value::Num(2.0))
        );
        assert_eq!(value(Reply::Boolean(true), None), Ok(Value::Num(1.0)));
    }

    #[test]
    fn fields_of_map_like_replies() {
        let config = Reply::Array(vec![
            Reply::BulkString(b"maxmemory".to_vec()),
            Reply::BulkString(b"0".to_vec()),
        ]);
        assert_eq!(value(config, Some("maxmemory")), Ok(Value::Num(0.0)));
        let map = Reply::Map(vec![(
            Reply::SimpleString("peak.allocated".into()),
            Reply::Int(1024),
        )]);
        assert_eq!(value(map, Some("peak.allocated")), Ok(Value::Num(1024.0)));
        assert_eq!(
            value(Reply::Int(3), Some("x")),
            Err("field x is not in the reply".into())
        );
    }
}
