//! `kind: pagerduty`: PagerDuty Events API v2, one event per alert. A firing alert triggers, a
//! resolved one resolves, both keyed by the alert's fingerprint as `dedup_key`, so PagerDuty folds
//! re-sent triggers into the open incident and the resolve closes exactly that incident.
//!
//! PagerDuty answers 202 when it accepted an event, 400 with its reasons (`errors`) for an event it
//! will never accept, and 429 when the routing key sends too fast.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::webhook::{timestamp, validate_http_url};
use super::{Notifier, SendContext, SendError};
use crate::alert::template::{self, AlertView};
use crate::alert::{Alert, AlertStatus, Notification, truncate};
use crate::config::Issues;

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty caps `payload.summary` at 1024 characters.
const SUMMARY_MAX_CHARS: usize = 1024;

/// A PagerDuty service integration (Events API v2).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDuty {
    /// Events API endpoint (default https://events.pagerduty.com/v2/enqueue).
    #[serde(default = "default_url")]
    pub url: String,
    /// The integration's routing key (32 characters). Write it as `${env:…}` or `${file:…}`.
    pub routing_key: String,
    /// `payload.source`: the affected system (default: the alert's `instance`, `series` or
    /// `service` label, else "patrol").
    #[serde(default)]
    pub source: Option<String>,
    /// minijinja template for `payload.summary`, rendered once per alert with a notification of
    /// that one alert (so `alerts[0]` is the alert).
    #[serde(default)]
    pub template: Option<String>,
}

fn default_url() -> String {
    DEFAULT_URL.to_string()
}

impl Notifier for PagerDuty {
    fn validate(&self, issues: &mut Issues) {
        validate_http_url(issues, "url", &self.url);
        let len = self.routing_key.trim().chars().count();
        if len != 32 {
            issues.at(
                &["routing_key"],
                format!("a PagerDuty routing key has 32 characters, this one {len}"),
            );
        }
        if let Some(source) = &self.template
            && let Err(e) = template::compile_check(source)
        {
            issues.at(&["template"], e);
        }
    }

    /// Sends every alert's event even when one fails, so one bad event does not hold back the
    /// others; a retry repeats the accepted ones harmlessly (PagerDuty dedupes by `dedup_key`).
    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let mut failures = Vec::new();
        for alert in &n.alerts {
            let event = self.event(n, alert)?;
            if let Err(e) = self.enqueue(&event, ctx).await {
                failures.push(e);
            }
        }
        combine(failures)
    }
}

impl PagerDuty {
    /// The Events API v2 event for one alert of `n`: a trigger with payload and links while it
    /// fires, a bare resolve once it resolved.
    pub fn event(&self, n: &Notification, a: &Alert) -> Result<Value, SendError> {
        let routing_key = self.routing_key.trim();
        if a.status == AlertStatus::Resolved {
            return Ok(json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": a.fingerprint,
            }));
        }
        let mut payload = Map::new();
        payload.insert("summary".into(), self.summary(n, a)?.into());
        payload.insert("source".into(), self.source_of(a).into());
        payload.insert("severity".into(), severity(a.labels.get("severity")).into());
        payload.insert("timestamp".into(), timestamp(a.starts_at).into());
        let label = |k: &str| a.labels.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(check) = label("check").or_else(|| label("alertname")) {
            payload.insert("component".into(), check.into());
        }
        if let Some(service) = label("service") {
            payload.insert("group".into(), service.into());
        }
        payload.insert(
            "custom_details".into(),
            json!({"labels": a.labels, "annotations": a.annotations}),
        );
        let mut event = json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": a.fingerprint,
            "client": "patrol",
            "payload": payload,
        });
        if !n.external_url.is_empty() {
            event["client_url"] = n.external_url.clone().into();
        }
        if !a.generator_url.is_empty() {
            event["links"] = json!([{"href": a.generator_url, "text": "patrol"}]);
        }
        Ok(event)
    }

    /// The user's template rendered for this one alert, or "check on series (service): summary".
    fn summary(&self, n: &Notification, a: &Alert) -> Result<String, SendError> {
        let text = match &self.template {
            Some(source) => template::render(source, &single(n, a))
                .map_err(|e| SendError::Permanent(format!("pagerduty template: {e}")))?,
            None => default_summary(a),
        };
        let text = template::one_line(text.trim());
        Ok(truncate::chars(&text, SUMMARY_MAX_CHARS - 1))
    }

    fn source_of(&self, a: &Alert) -> String {
        if let Some(s) = self.source.as_ref().filter(|s| !s.trim().is_empty()) {
            return s.clone();
        }
        ["instance", "series", "service"]
            .iter()
            .find_map(|k| a.labels.get(*k).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_else(|| "patrol".into())
    }

    async fn enqueue(&self, event: &Value, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let response = ctx
            .http
            .post(&self.url)
            .timeout(ctx.timeout)
            .json(event)
            .send()
            .await
            .map_err(|e| SendError::from_transport(&e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(self.mask_key(classify(status, &body)))
    }

    /// PagerDuty does not echo routing keys, but a proxy in between might.
    fn mask_key(&self, e: SendError) -> SendError {
        let key = self.routing_key.trim();
        if key.is_empty() {
            return e;
        }
        let masked = e.message().replace(key, crate::secrets::MASK);
        match e {
            SendError::Retryable(_) => SendError::Retryable(masked),
            SendError::Permanent(_) => SendError::Permanent(masked),
        }
    }
}

/// The notification narrowed to one alert, for per-alert templates.
fn single(n: &Notification, a: &Alert) -> Notification {
    Notification {
        status: a.status,
        alerts: vec![a.clone()],
        ..n.clone()
    }
}

/// "disk-usage on node-1 (orders): disk almost full — value 93 % (baseline 40 – 70 %)".
fn default_summary(a: &Alert) -> String {
    let v = AlertView::new(a);
    let mut s = v.check.clone();
    if let Some(series) = &v.series {
        s.push_str(&format!(" on {series}"));
    }
    if let Some(service) = &v.service {
        s.push_str(&format!(" ({service})"));
    }
    if let Some(detail) = v.summary.as_ref().or(v.description.as_ref()) {
        s.push_str(&format!(": {detail}"));
    }
    match (&v.value, &v.baseline) {
        (Some(value), Some(band)) => s.push_str(&format!(" — value {value} (baseline {band})")),
        (Some(value), None) => s.push_str(&format!(" — value {value}")),
        _ => {}
    }
    s
}

/// PagerDuty's four severities from the check's: unknown or missing ones page as `warning`,
/// patrol's default severity.
pub fn severity(label: Option<&String>) -> &'static str {
    match label.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("critical" | "crit" | "page") => "critical",
        Some("error" | "err") => "error",
        Some("info" | "informational" | "none") => "info",
        _ => "warning",
    }
}

/// 400 carries PagerDuty's reasons (`{"status", "message", "errors": [...]}`) and is permanent;
/// 429 and 5xx are retried; other statuses are classified the generic way.
fn classify(status: u16, body: &str) -> SendError {
    if status != 400 {
        return match SendError::from_status(status, body) {
            SendError::Retryable(m) => SendError::Retryable(format!("pagerduty: {m}")),
            SendError::Permanent(m) => {
                SendError::Permanent(format!("pagerduty rejected the event: {m}"))
            }
        };
    }
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = parsed["message"].as_str().unwrap_or("invalid event");
    let errors: Vec<&str> = parsed["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let reason = if errors.is_empty() {
        message.to_string()
    } else {
        format!("{message}: {}", errors.join("; "))
    };
    SendError::Permanent(format!(
        "pagerduty rejected the event (HTTP 400): {}",
        truncate::chars(&reason, 300)
    ))
}

/// No failures is success; any retryable failure makes the whole notification worth retrying
/// (PagerDuty dedupes the events that went through); otherwise the first permanent one.
fn combine(failures: Vec<SendError>) -> Result<(), SendError> {
    if failures.is_empty() {
        return Ok(());
    }
    let count = failures.len();
    let retryable = failures.iter().any(SendError::is_retryable);
    let first = failures
        .into_iter()
        .find(|e| e.is_retryable() == retryable)
        .expect("one failure of the chosen kind exists");
    let message = if count > 1 {
        format!("{} (and {} more failed events)", first.message(), count - 1)
    } else {
        first.message().to_string()
    };
    Err(if retryable {
        SendError::Retryable(message)
    } else {
        SendError::Permanent(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_to_pagerduty_levels() {
        let s = |v: &str| severity(Some(&v.to_string()));
        assert_eq!(s("critical"), "critical");
        assert_eq!(s("Error"), "error");
        assert_eq!(s("warning"), "warning");
        assert_eq!(s("info"), "info");
        assert_eq!(s("sev-9"), "warning");
        assert_eq!(severity(None), "warning");
    }

    #[test]
    fn bad_requests_carry_pagerduty_errors_and_rate_limits_retry() {
        let body = r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}"#;
        let e = classify(400, body);
        assert!(!e.is_retryable());
        assert!(
            e.message()
                .contains("Event object is invalid: Length of 'routing_key'"),
            "{e:?}"
        );
        assert!(classify(429, "").is_retryable());
        assert!(classify(502, "bad gateway").is_retryable());
        assert!(!classify(403, "").is_retryable());
    }

    #[test]
    fn one_retryable_failure_makes_the_notification_retryable() {
        assert_eq!(combine(vec![]), Ok(()));
        let both = combine(vec![
            SendError::Permanent("p".into()),
            SendError::Retryable("r".into()),
        ]);
        assert_eq!(
            both,
            Err(SendError::Retryable("r (and 1 more failed events)".into()))
        );
        assert_eq!(
            combine(vec![SendError::Permanent("p".into())]),
            Err(SendError::Permanent("p".into()))
        );
    }
}
