//! Label and field selectors as the API server reads them (`app=web,tier!=cache`,
//! `env in (prod,staging)`, `!canary`; `status.phase=Running`, `metadata.name!=x`).

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits at commas outside parentheses.
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn set_of(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected (values) in {rest:?}"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn parse_label_term(t: &str) -> Result<LabelReq, String> {
    if let Some(key) = t.strip_prefix('!') {
        return Ok(LabelReq::NotExists(key.trim().to_string()));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(LabelReq::NotEquals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
        return Ok(LabelReq::Equals(k.trim().into(), v.trim().into()));
    }
    if let Some((k, rest)) = t.split_once(" notin ") {
        return Ok(LabelReq::NotIn(k.trim().into(), set_of(rest)?));
    }
    if let Some((k, rest)) = t.split_once(" in ") {
        return Ok(LabelReq::In(k.trim().into(), set_of(rest)?));
    }
    if t.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Ok(LabelReq::Exists(t.to_string()));
    }
    Err(format!("unable to parse requirement: {t:?}"))
}

/// Whether `obj`'s labels satisfy `selector`; an error for a selector the server would refuse.
pub fn labels_match(selector: &str, obj: &Value) -> Result<bool, String> {
    let labels = &obj["metadata"]["labels"];
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    for term in split_terms(selector) {
        let ok = match parse_label_term(&term)? {
            LabelReq::Equals(k, v) => label(&k) == Some(v.as_str()),
            LabelReq::NotEquals(k, v) => label(&k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(&k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(&k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(&k).is_some(),
            LabelReq::NotExists(k) => label(&k).is_none(),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The text of a dotted field (`status.phase`); a missing field reads as "" (as the server's).
fn field_text(obj: &Value, path: &str) -> String {
    let mut v = obj;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether `obj` satisfies the field selector (`=`, `==`, `!=` terms).
pub fn fields_match(selector: &str, obj: &Value) -> Result<bool, String> {
    for term in split_terms(selector) {
        let ok = if let Some((k, v)) = term.split_once("!=") {
            field_text(obj, k.trim()) != v.trim()
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            field_text(obj, k.trim()) == v.trim()
        } else {
            return Err(format!("invalid field selector term {term:?}"));
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}
