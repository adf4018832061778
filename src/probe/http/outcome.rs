//! From a response to a measurement: the measured `value:` and every unmet `expect:` entry, each
//! named in its own message so a person sees which expectation failed and what came back instead.

use std::cell::OnceCell;
use std::time::SystemTime;

use regex::Regex;
use serde_json_path::JsonPath;

use super::client::Exchange;
use super::{HttpExpect, HttpValue};
use crate::condition::Condition;
use crate::probe::{Measurement, ProbeError, Sample};
use crate::result::{Value, format_number};

/// Longest piece of a response quoted in a message.
const QUOTE_LIMIT: usize = 120;

/// The response with its body parsed as JSON at most once, and only when something needs it.
struct Response<'a> {
    ex: &'a Exchange,
    json: OnceCell<Result<serde_json::Value, String>>,
}

impl Response<'_> {
    fn json(&self) -> Result<&serde_json::Value, String> {
        self.json
            .get_or_init(|| {
                if self.ex.body_truncated() {
                    return Err(format!(
                        "body of {} bytes is too large to parse",
                        self.ex.body_bytes
                    ));
                }
                serde_json::from_slice(&self.ex.body).map_err(|e| format!("body is not JSON ({e})"))
            })
            .as_ref()
            .map_err(String::clone)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.ex
            .headers
            .get(name.trim())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// The measurement of one exchange. Only a missing server certificate is a probe error; anything
/// else that cannot be read (no JSON match, a missing header) is a failure that makes it `crit`.
pub(super) fn measurement(
    value: &HttpValue,
    expect: &HttpExpect,
    ex: &Exchange,
) -> Result<Measurement, ProbeError> {
    let response = Response {
        ex,
        json: OnceCell::new(),
    };
    let mut m = Measurement {
        unit: value.unit().to_string(),
        ..Measurement::default()
    };
    match read_value(value, &response)? {
        Ok(v) => m.samples.push(Sample::single(v)),
        Err(failure) => m.failures.push(failure),
    }
    m.failures.extend(unmet_expectations(expect, &response));
    Ok(m)
}

fn read_value(value: &HttpValue, r: &Response<'_>) -> Result<Result<Value, String>, ProbeError> {
    Ok(match value {
        HttpValue::LatencyMs => Ok(Value::Num(r.ex.latency_ms)),
        HttpValue::Status => Ok(Value::Num(f64::from(r.ex.status))),
        HttpValue::BodyBytes => Ok(Value::Num(r.ex.body_bytes as f64)),
        HttpValue::Json(path) => match r.json().and_then(|doc| json_lookup(doc, path)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(format!("json {path}: no match")),
            Err(e) => Err(format!("json {path}: {e}")),
        },
        HttpValue::Header(name) => match r.header(name) {
            Some(v) => Ok(Value::Text(v)),
            None => Err(format!("header {name}: missing")),
        },
        HttpValue::CertDaysLeft => {
            let der = r
                .ex
                .peer_certificate
                .as_deref()
                .ok_or_else(|| ProbeError::new("cert_days_left: the response carried no server certificate (plain http after a redirect?)"))?;
            Ok(Value::Num(
                crate::tls::days_left(der, SystemTime::now()).map_err(ProbeError::new)?,
            ))
        }
    })
}

/// One message per expectation that was not met, in a stable order.
fn unmet_expectations(expect: &HttpExpect, r: &Response<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    let status = Value::Num(f64::from(r.ex.status));
    match &expect.status {
        Some(cond) => failures.extend(unmet("expect.status", &status, cond)),
        None if !(200..=399).contains(&r.ex.status) => {
            failures.push(format!(
                "expect.status: got {}, want 2xx or 3xx",
                r.ex.status
            ));
        }
        None => {}
    }
    if let Some(cond) = &expect.latency_ms {
        failures.extend(unmet(
            "expect.latency_ms",
            &Value::Num(round3(r.ex.latency_ms)),
            cond,
        ));
    }
    for (path, cond) in &expect.json {
        let what = format!("expect.json {path}");
        match r.json().and_then(|doc| json_lookup(doc, path)) {
            Ok(Some(v)) => failures.extend(unmet(&what, &v, cond)),
            Ok(None) => failures.push(format!("{what}: no match")),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    if let Some(re) = &expect.body_matches {
        failures.extend(body_mismatch(re, r.ex));
    }
    for (name, cond) in &expect.headers {
        let what = format!("expect.headers {name}");
        match r.header(name) {
            Some(v) => failures.extend(unmet(&what, &Value::Text(v), cond)),
            None => failures.push(format!("{what}: missing")),
        }
    }
    failures
}

/// `"<what>: got X, want cond"` when `v` does not satisfy `cond`.
fn unmet(what: &str, v: &Value, cond: &Condition) -> Option<String> {
    (!cond.matches(v)).then(|| format!("{what}: got {}, want {cond}", quoted(v)))
}

fn body_mismatch(pattern: &str, ex: &Exchange) -> Option<String> {
    let re = match Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => return Some(format!("expect.body_matches: invalid regex: {e}")),
    };
    let body = String::from_utf8_lossy(&ex.body);
    if re.is_match(&body) {
        return None;
    }
    let mut body_start: String = body.chars().take(QUOTE_LIMIT).collect();
    if body.chars().nth(QUOTE_LIMIT).is_some() {
        body_start.push('…');
    }
    Some(format!(
        "expect.body_matches: body does not match {pattern:?} (body starts {body_start:?})"
    ))
}

/// The first node `path` selects, as a value: numbers stay numbers, strings and booleans become
/// text, anything else its JSON text. `Ok(None)` when nothing matches.
pub(super) fn json_lookup(doc: &serde_json::Value, path: &str) -> Result<Option<Value>, String> {
    let path = JsonPath::parse(path.trim()).map_err(|e| format!("invalid JSONPath: {e}"))?;
    Ok(path.query(doc).first().map(json_to_value))
}

fn json_to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Value::Num)
            .unwrap_or_else(|| Value::Text(n.to_string())),
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Bool(b) => Value::Text(b.to_string()),
        other => Value::Text(other.to_string()),
    }
}

/// A value as messages show it: numbers plain, text quoted (and shortened).
fn quoted(v: &Value) -> String {
    match v {
        Value::Num(n) => format_number(*n),
        Value::Text(t) if t.chars().count() > QUOTE_LIMIT => {
            format!("{:?}…", t.chars().take(QUOTE_LIMIT).collect::<String>())
        }
        Value::Text(t) => format!("{t:?}"),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn exchange(status: u16, body: &str) -> Exchange {
        let mut headers = HeaderMap::new();
        headers.insert("x-version", HeaderValue::from_static("1.4.2"));
        Exchange {
            status,
            latency_ms: 12.5,
            headers,
            body: body.as_bytes().to_vec(),
            body_bytes: body.len() as u64,
            peer_certificate: None,
        }
    }

    fn lookup(doc: &str, path: &str) -> Option<Value> {
        json_lookup(&serde_json::from_str(doc).unwrap(), path).unwrap()
    }

    #[test]
    fn json_values_keep_numbers_and_turn_the_rest_into_text() {
        let doc = r#"{"n": 3.5, "s": "UP", "b": true, "z": null, "a": [1, 2], "o": {"k": 1}}"#;
        assert_eq!(lookup(doc, "$.n"), Some(Value::Num(3.5)));
        assert_eq!(lookup(doc, "$.s"), Some(Value::Text("UP".into())));
        assert_eq!(lookup(doc, "$.b"), Some(Value::Text("true".into())));
        assert_eq!(lookup(doc, "$.z"), Some(Value::Text("null".into())));
        assert_eq!(lookup(doc, "$.a[*]"), Some(Value::Num(1.0)), "first match");
        assert_eq!(lookup(doc, "$.o"), Some(Value::Text(r#"{"k":1}"#.into())));
        assert_eq!(lookup(doc, "$.missing"), None);
    }

    #[test]
    fn default_status_expectation_accepts_2xx_and_3xx_only() {
        let none = HttpExpect::default();
        for ok in [200, 204, 301, 399] {
            let m = measurement(&HttpValue::Status, &none, &exchange(ok, "")).unwrap();
            assert!(m.failures.is_empty(), "{ok}: {:?}", m.failures);
        }
        let m = measurement(&HttpValue::Status, &none, &exchange(404, "")).unwrap();
        assert_eq!(m.failures, vec!["expect.status: got 404, want 2xx or 3xx"]);
        assert_eq!(m.samples, vec![Sample::single(Value::Num(404.0))]);
    }

    #[test]
    fn value_that_cannot_be_read_is_a_failure_not_an_error() {
        let none = HttpExpect::default();
        let m = measurement(
            &HttpValue::Json("$.x".into()),
            &none,
            &exchange(200, r#"{"y": 1}"#),
        )
        .unwrap();
        assert!(m.samples.is_empty());
        assert_eq!(m.failures, vec!["json $.x: no match"]);
        let m = measurement(
            &HttpValue::Json("$.x".into()),
            &none,
            &exchange(200, "<html>"),
        )
        .unwrap();
        assert!(
            m.failures[0].starts_with("json $.x: body is not JSON"),
            "{:?}",
            m.failures
        );
        let m = measurement(
            &HttpValue::Header("X-Missing".into()),
            &none,
            &exchange(200, ""),
        )
        .unwrap();
        assert_eq!(m.failures, vec!["header X-Missing: missing"]);
    }

    #[test]
    fn every_unmet_expectation_is_named() {
        let expect: HttpExpect = serde_json::from_value(serde_json::json!({
            "status": "eq(201)",
            "latency_ms": "lt(10)",
            "json": {"$.state": "eq(\"UP\")", "$.gone": "eq(1)"},
            "body_matches": "healthy",
            "headers": {"X-Version": "matches(\"^2\\\\.\")", "X-Absent": "eq(\"1\")"}
        }))
        .unwrap();
        let m = measurement(
            &HttpValue::LatencyMs,
            &expect,
            &exchange(200, r#"{"state": "DOWN"}"#),
        )
        .unwrap();
        assert_eq!(
            m.failures,
            vec![
                "expect.status: got 200, want eq(201)",
                "expect.latency_ms: got 12.5, want lt(10)",
                "expect.json $.gone: no match",
                "expect.json $.state: got \"DOWN\", want eq(\"UP\")",
                "expect.body_matches: body does not match \"healthy\" (body starts \"{\\\"state\\\": \\\"DOWN\\\"}\")",
                "expect.headers X-Absent: missing",
                "expect.headers X-Version: got \"1.4.2\", want matches(\"^2\\\\.\")",
            ]
        );
        assert_eq!(m.unit, "ms");
    }

    #[test]
    fn cert_days_left_without_a_certificate_is_a_probe_error() {
        let err = measurement(
            &HttpValue::CertDaysLeft,
            &HttpExpect::default(),
            &exchange(200, ""),
        )
        .unwrap_err();
        assert!(err.0.contains("no server certificate"), "{err}");
    }

    #[test]
    fn long_text_is_shortened_in_messages() {
        let long = "x".repeat(500);
        let shown = quoted(&Value::Text(long));
        assert!(
            shown.chars().count() < 130 && shown.ends_with('…'),
            "{shown}"
        );
    }
}
