//! `kind: http` — one HTTP request; measures latency, status, a JSON field, a header, the body size
//! or the days left on the server certificate, and checks `expect:`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues};

pub mod client;
mod outcome;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    #[serde(default)]
    pub request: HttpRequest,
    /// What to measure: `latency_ms` (default), `status`, `json:$.path`, `header:Name`,
    /// `body_bytes`, `cert_days_left`.
    #[serde(default)]
    pub value: HttpValue,
    #[serde(default)]
    pub expect: HttpExpect,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpRequest {
    pub method: String,
    /// Path joined to the target's URL.
    pub path: Option<String>,
    /// Full URL (instead of a target and path).
    pub url: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub follow_redirects: bool,
}

impl Default for HttpRequest {
    fn default() -> Self {
        HttpRequest {
            method: "GET".into(),
            path: None,
            url: None,
            headers: BTreeMap::new(),
            body: None,
            follow_redirects: true,
        }
    }
}

/// Expectations; each one that fails makes the result `crit` with a message naming it.
/// Without `status`, any 2xx or 3xx status is expected.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpExpect {
    pub status: Option<Condition>,
    pub latency_ms: Option<Condition>,
    /// JSONPath → condition on the value found there.
    pub json: BTreeMap<String, Condition>,
    /// Regular expression the body must match.
    pub body_matches: Option<String>,
    /// Header name → condition on its value.
    pub headers: BTreeMap<String, Condition>,
}

/// The measured value of an HTTP check.
#[derive(Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(with = "String")]
pub enum HttpValue {
    #[default]
    LatencyMs,
    Status,
    /// A JSONPath into the response body.
    Json(String),
    /// A response header.
    Header(String),
    BodyBytes,
    CertDaysLeft,
}

impl HttpValue {
    pub fn parse(s: &str) -> Result<HttpValue, String> {
        let s = s.trim();
        Ok(match s {
            "latency_ms" => HttpValue::LatencyMs,
            "status" => HttpValue::Status,
            "body_bytes" => HttpValue::BodyBytes,
            "cert_days_left" => HttpValue::CertDaysLeft,
            _ => {
                if let Some(p) = s.strip_prefix("json:") {
                    HttpValue::Json(p.trim().to_string())
                } else if let Some(h) = s.strip_prefix("header:") {
                    HttpValue::Header(h.trim().to_string())
                } else {
                    return Err(format!(
                        "unknown value {s:?}; expected latency_ms, status, json:$.path, header:Name, body_bytes or cert_days_left"
                    ));
                }
            }
        })
    }

    pub fn unit(&self) -> &'static str {
        match self {
            HttpValue::LatencyMs => "ms",
            HttpValue::BodyBytes => "bytes",
            HttpValue::CertDaysLeft => "days",
            _ => "",
        }
    }
}

impl<'de> Deserialize<'de> for HttpValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HttpValue::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Probe for HttpProbe {
    const TARGET_KINDS: &'static [&'static str] = &["http"];

    fn validate(&self, check: &CheckCommon, issues: &mut Issues) {
        let has_base = check.target.is_some() || check.url.is_some();
        if self.request.url.is_none() && !has_base {
            issues.at(
                &["request"],
                "an http check needs a target, a url, or request.url",
            );
        }
        if let Some(u) = &self.request.url
            && reqwest::Url::parse(u).is_err()
        {
            issues.at(&["request", "url"], format!("invalid URL {u:?}"));
        }
        if reqwest::Method::from_bytes(self.request.method.as_bytes()).is_err() {
            issues.at(
                &["request", "method"],
                format!("invalid HTTP method {:?}", self.request.method),
            );
        }
        if let HttpValue::Json(p) = &self.value {
            issues.json_path(&["value"], p);
        }
        // Only what the file itself says can be judged here; a named target is checked when run.
        let url = self.request.url.as_deref().or(check.url.as_deref());
        if self.value == HttpValue::CertDaysLeft
            && url.is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("http://"))
        {
            issues.at(&["value"], "cert_days_left needs an https URL");
        }
        issues.condition(&["expect", "status"], self.expect.status.as_ref());
        issues.condition(&["expect", "latency_ms"], self.expect.latency_ms.as_ref());
        for (path, cond) in &self.expect.json {
            issues.json_path(&["expect", "json", path], path);
            issues.condition(&["expect", "json", path], Some(cond));
        }
        for (name, cond) in &self.expect.headers {
            issues.condition(&["expect", "headers", name], Some(cond));
        }
        issues.regex(
            &["expect", "body_matches"],
            self.expect.body_matches.as_deref(),
        );
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let plan = client::Plan::new(self, ctx)?;
        let exchange = plan.send(ctx.timeout).await?;
        outcome::measurement(&self.value, &self.expect, &exchange)
    }
}
