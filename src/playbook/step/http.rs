//! `http: {method, url, headers, body, status, capture}` — sends one request. The step fails when
//! the response status is not `status` (default: any 2xx). Its output is
//! `steps.<name>.status|body|json` plus each `capture` name (a JSON pointer into the body, e.g.
//! `/data/id`). Only GET and HEAD are sent by `--dry-run`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{StepEnv, StepKind};
use crate::config::{Issues, RuleSet};

fn default_method() -> String {
    "GET".to_string()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One HTTP request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// The expected response status (default: any 2xx).
    #[serde(default)]
    pub status: Option<u16>,
    /// Output name → JSON pointer into the response body.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
}

/// One request as steps send it (`http`, `capture`, `isolate` share it).
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub body: Option<&'a str>,
    pub timeout: Duration,
}

impl Request<'_> {
    /// `GET url` with `headers`.
    pub fn get<'a>(
        url: &'a str,
        headers: &'a BTreeMap<String, String>,
        timeout: Duration,
    ) -> Request<'a> {
        Request {
            method: "GET",
            url,
            headers,
            body: None,
            timeout,
        }
    }

    /// `METHOD url` and what goes wrong before a response, naming both.
    fn what(&self) -> String {
        format!("{} {}", self.method.to_ascii_uppercase(), self.url)
    }

    /// Sends it; the response with its body still to read.
    pub async fn send(&self) -> Result<reqwest::Response, String> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut request = client.request(parse_method(self.method)?, self.url);
        for (k, v) in self.headers {
            request = request.header(k, v);
        }
        if let Some(body) = self.body {
            request = request.body(body.to_string());
        }
        request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.what()))
    }

    /// Sends it and reads the whole body as text.
    pub async fn send_for_text(&self) -> Result<(u16, String), String> {
        let response = self.send().await?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("{}: reading the body: {e}", self.what()))?;
        Ok((status, body))
    }
}

/// `method` as reqwest knows it (any case).
pub(super) fn parse_method(method: &str) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))
}

/// The first 200 characters of a body, for messages.
pub(super) fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

impl HttpStep {
    fn method(&self) -> Result<reqwest::Method, String> {
        parse_method(&self.method)
    }

    async fn send(&self) -> Result<(u16, String), String> {
        Request {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: self.body.as_deref(),
            timeout: self.timeout,
        }
        .send_for_text()
        .await
    }
}

impl StepKind for HttpStep {
    fn validate(&self, _rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if let Err(e) = self.method() {
            issues.at(&["method"], e);
        }
        for (name, pointer) in &self.capture {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                issues.at(
                    &["capture", name],
                    format!(
                        "{pointer:?} is not a JSON pointer: it starts with `/` (e.g. /data/id)"
                    ),
                );
            }
        }
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
    }

    fn dry_run_safe(&self) -> bool {
        matches!(self.method.to_ascii_uppercase().as_str(), "GET" | "HEAD")
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method.to_ascii_uppercase(), self.url)
    }

    async fn run(&self, _env: &StepEnv<'_>) -> Result<Value, String> {
        let (status, body) = self.send().await?;
        let expected = match self.status {
            Some(want) => status == want,
            None => (200..300).contains(&status),
        };
        if !expected {
            let want = self.status.map_or("2xx".to_string(), |s| s.to_string());
            return Err(format!(
                "{} answered {status}, expected {want}: {}",
                self.describe(),
                snippet(&body)
            ));
        }
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        let mut out = Map::new();
        for (name, pointer) in &self.capture {
            let found = parsed.as_ref().and_then(|j| j.pointer(pointer)).cloned();
            let Some(found) = found else {
                return Err(format!(
                    "capture `{name}`: nothing at {pointer} in the response"
                ));
            };
            out.insert(name.clone(), found);
        }
        out.insert("status".into(), json!(status));
        out.insert("body".into(), json!(body));
        out.insert("json".into(), parsed.unwrap_or(Value::Null));
        Ok(Value::Object(out))
    }
}
