//! `isolate: {url, method, body, headers, timeout, verify: {url, headers, expect, timeout, every}}`
//! — calls an isolation endpoint (cut the abnormal SSE connections, drain a node, fence a
//! replica), then polls `verify.url` every `every` (default 1s) until its expectation holds, or
//! fails when `verify.timeout` (default 30s) passes first: an isolation whose effect is not seen
//! did not happen, as far as the playbook knows.
//!
//! `expect` is written as a check's: `status` (a condition; default any 2xx) and `json`, a
//! JSONPath (`$.abnormal`) or JSON pointer (`/abnormal`) → a condition (`eq(0)`, `lt(5)`…).
//! Output: `steps.<name>.status|body|json` of the isolation call, and `verify.status|json|attempts|
//! waited_ms` of the check that held. Not run by `--dry-run` (the call has side effects).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Request, parse_method, snippet};
use super::{StepEnv, StepKind};
use crate::condition::Condition;
use crate::config::{Issues, RuleSet};
use crate::result::{Value as Measured, format_number};

fn default_method() -> String {
    "POST".to_string()
}

fn default_call_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_verify_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_every() -> Duration {
    Duration::from_secs(1)
}

/// An isolation call and the check of its effect.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolateStep {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long the isolation call may take.
    #[serde(default = "default_call_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    pub verify: Verify,
}

/// Where and how the effect is seen.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub expect: Expect,
    /// How long the effect may take to show.
    #[serde(default = "default_verify_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    /// Time between two looks.
    #[serde(default = "default_every", with = "crate::config::duration")]
    pub every: Duration,
}

/// What the verify URL must answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Condition on the status (default: any 2xx).
    pub status: Option<Condition>,
    /// JSONPath (`$.abnormal`) or JSON pointer (`/abnormal`) → condition on the value there.
    pub json: BTreeMap<String, Condition>,
}

impl Expect {
    fn validate(&self, issues: &mut Issues) {
        issues.condition(&["verify", "expect", "status"], self.status.as_ref());
        for (path, cond) in &self.json {
            let at = ["verify", "expect", "json", path.as_str()];
            if path.starts_with('$') {
                issues.json_path(&at, path);
            } else if !path.starts_with('/') {
                issues.at(
                    &at,
                    format!(
                        "{path:?} is neither a JSONPath ($.abnormal) nor a JSON pointer (/abnormal)"
                    ),
                );
            }
            issues.condition(&at, Some(cond));
        }
    }

    /// One message per expectation the answer does not meet (none: it holds).
    pub fn unmet(&self, status: u16, body: &str) -> Vec<String> {
        let mut failures = Vec::new();
        match &self.status {
            Some(cond) if !cond.matches(&Measured::Num(f64::from(status))) => {
                failures.push(format!("status: got {status}, want {cond}"));
            }
            None if !(200..300).contains(&status) => {
                failures.push(format!("status: got {status}, want 2xx"));
            }
            _ => {}
        }
        if self.json.is_empty() {
            return failures;
        }
        let doc: Value = match serde_json::from_str(body) {
            Ok(doc) => doc,
            Err(e) => {
                failures.push(format!("body is not JSON ({e}): {}", snippet(body)));
                return failures;
            }
        };
        for (path, cond) in &self.json {
            match lookup(&doc, path) {
                Ok(Some(v)) if cond.matches(&v) => {}
                Ok(Some(v)) => {
                    failures.push(format!("json {path}: got {}, want {cond}", shown(&v)))
                }
                Ok(None) => failures.push(format!("json {path}: no match")),
                Err(e) => failures.push(format!("json {path}: {e}")),
            }
        }
        failures
    }
}

/// The value at `path` (JSON pointer or JSONPath, first match): numbers stay numbers, anything
/// else is compared as text.
fn lookup(doc: &Value, path: &str) -> Result<Option<Measured>, String> {
    let found = if path.starts_with('/') {
        doc.pointer(path).cloned()
    } else {
        let parsed = serde_json_path::JsonPath::parse(path.trim())
            .map_err(|e| format!("invalid JSONPath: {e}"))?;
        parsed.query(doc).first().cloned()
    };
    Ok(found.map(|v| match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| Measured::Text(n.to_string()), Measured::Num),
        Value::String(s) => Measured::Text(s),
        other => Measured::Text(other.to_string()),
    }))
}

fn shown(v: &Measured) -> String {
    match v {
        Measured::Num(n) => format_number(*n),
        Measured::Text(t) => format!("{:?}", snippet(t)),
    }
}

impl IsolateStep {
    /// The isolation call; its status and body, a non-2xx answer an error.
    async fn call(&self) -> Result<(u16, String), String> {
        let (status, body) = Request {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: self.body.as_deref(),
            timeout: self.timeout,
        }
        .send_for_text()
        .await?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{} {} answered {status}, expected 2xx: {}",
                self.method.to_ascii_uppercase(),
                self.url,
                snippet(&body)
            ));
        }
        Ok((status, body))
    }

    /// Polls the verify URL until the expectation holds; what it answered then, or the last
    /// reason it did not hold.
    async fn verify(&self) -> Result<Value, String> {
        let v = &self.verify;
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = v.timeout.saturating_sub(started.elapsed());
            let timeout = left.max(Duration::from_millis(100));
            let why = match Request::get(&v.url, &v.headers, timeout)
                .send_for_text()
                .await
            {
                Ok((status, body)) => {
                    let unmet = v.expect.unmet(status, &body);
                    if unmet.is_empty() {
                        return Ok(json!({
                            "status": status,
                            "json": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
                            "attempts": attempts,
                            "waited_ms": started.elapsed().as_millis() as u64,
                        }));
                    }
                    unmet.join("; ")
                }
                Err(e) => e,
            };
            if started.elapsed() + v.every >= v.timeout {
                return Err(format!(
                    "the isolation was not verified within {} ({attempts} look(s) at {}); last: {why}",
                    crate::config::duration::format(v.timeout),
                    v.url
                ));
            }
            tokio::time::sleep(v.every).await;
        }
    }
}

impl StepKind for IsolateStep {
    fn validate(&self, _rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if let Err(e) = parse_method(&self.method) {
            issues.at(&["method"], e);
        }
        for (path, url) in [
            (&["url"][..], &self.url),
            (&["verify", "url"], &self.verify.url),
        ] {
            if let Err(e) = reqwest::Url::parse(url) {
                issues.at(path, format!("{url:?} is not a URL: {e}"));
            }
        }
        for (path, d) in [
            (&["timeout"][..], self.timeout),
            (&["verify", "timeout"], self.verify.timeout),
            (&["verify", "every"], self.verify.every),
        ] {
            if d.is_zero() {
                issues.at(path, "must be above 0s");
            }
        }
        self.verify.expect.validate(issues);
    }

    fn dry_run_safe(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!(
            "isolate: {} {}, then verify {} within {}",
            self.method.to_ascii_uppercase(),
            self.url,
            self.verify.url,
            crate::config::duration::format(self.verify.timeout)
        )
    }

    async fn run(&self, _env: &StepEnv<'_>) -> Result<Value, String> {
        let (status, body) = self.call().await?;
        let verified = self.verify().await?;
        Ok(json!({
            "status": status,
            "body": body,
            "json": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
            "verify": verified,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(v: Value) -> Expect {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults() {
        let s: IsolateStep = serde_json::from_value(json!({
            "url": "http://h:1/isolate",
            "verify": {"url": "http://h:1/connections"}
        }))
        .unwrap();
        assert_eq!(s.method, "POST");
        assert_eq!(s.verify.timeout, Duration::from_secs(30));
        assert_eq!(s.verify.every, Duration::from_secs(1));
        assert!(!s.dry_run_safe());
    }

    #[test]
    fn expectations_read_pointers_and_json_paths() {
        let e = expect(json!({"status": 200, "json": {"/abnormal": "eq(0)", "$.total": "lt(10)"}}));
        assert!(e.unmet(200, r#"{"abnormal": 0, "total": 3}"#).is_empty());
        assert_eq!(
            e.unmet(200, r#"{"abnormal": 2, "total": 30}"#),
            [
                "json $.total: got 30, want lt(10)",
                "json /abnormal: got 2, want eq(0)"
            ]
        );
        assert_eq!(
            e.unmet(503, r#"{"total": 1}"#),
            ["status: got 503, want eq(200)", "json /abnormal: no match"]
        );
        assert!(e.unmet(200, "nope")[0].starts_with("body is not JSON"));
        assert_eq!(
            Expect::default().unmet(404, ""),
            ["status: got 404, want 2xx"]
        );
    }

    #[test]
    fn validation_names_the_field() {
        let s: IsolateStep = serde_json::from_value(json!({
            "url": "http://h:1/isolate",
            "method": "NOT A METHOD",
            "verify": {"url": "x", "every": "0s", "expect": {"json": {"abnormal": "lt(", "$[": 1}}}
        }))
        .unwrap();
        let mut issues = Issues::default();
        s.validate(&crate::config::load(&[]).unwrap(), &[], &mut issues);
        let got: Vec<String> = issues
            .items
            .iter()
            .map(|(p, m)| format!("{}: {m}", crate::config::path_text(p)))
            .collect();
        assert!(got.iter().any(|m| m.starts_with("method: ")), "{got:?}");
        assert!(
            got.iter()
                .any(|m| m.starts_with("verify.url: \"x\" is not a URL")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m == "verify.every: must be above 0s"),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|m| m.contains("neither a JSONPath ($.abnormal) nor a JSON pointer")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m.contains("invalid JSONPath")),
            "{got:?}"
        );
    }
}
