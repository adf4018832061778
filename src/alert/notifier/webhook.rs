//! `kind: webhook`: a JSON POST in exactly the shape of Alertmanager's webhook payload (version 4),
//! so anything that already consumes Alertmanager webhooks (chat bridges, ticketing, custom
//! automations) consumes patrol's alerts unchanged. A `template:` replaces the body for receivers
//! that want their own format.
//!
//! The notification's idempotency key travels twice: as the `Idempotency-Key` header (the common
//! HTTP convention) and as `idempotencyKey` in the JSON body, so a receiver that sees the same
//! notification again after a retry or a restart can drop the duplicate.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Notifier, SendContext, SendError};
use crate::alert::{Alert, Notification, template};
use crate::config::Issues;

/// What Alertmanager sends as `endsAt` of an alert that still fires (Go's zero time).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The header carrying the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

const JSON: &str = "application/json";

/// A generic webhook receiving the Alertmanager webhook payload (version 4).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// URL the payload is POSTed to.
    pub url: String,
    /// Extra request headers, e.g. `Authorization: Bearer ${env:HOOK_TOKEN}`; values may reference
    /// secrets. They override the defaults (`Content-Type`, `Idempotency-Key`) of the same name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// minijinja template whose output replaces the JSON body (the notification's fields are
    /// available: `status`, `alerts`, `common_labels`, `external_url`, …).
    #[serde(default)]
    pub template: Option<String>,
    /// `Content-Type` of a templated body (default `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// At most this many alerts in the payload; the others are counted in `truncatedAlerts`
    /// (0, the default, sends them all — as Alertmanager's `max_alerts`).
    #[serde(default)]
    pub max_alerts: usize,
}

impl Notifier for Webhook {
    fn validate(&self, issues: &mut Issues) {
        validate_http_url(issues, "url", &self.url);
        validate_headers(issues, &self.headers);
        if let Some(source) = &self.template
            && let Err(e) = template::compile_check(source)
        {
            issues.at(&["template"], e);
        }
        match &self.content_type {
            Some(_) if self.template.is_none() => issues.at(
                &["content_type"],
                "content_type applies only to a templated body (set template, or remove content_type)",
            ),
            Some(ct) if HeaderValue::from_str(ct).is_err() => {
                issues.at(&["content_type"], "not a valid Content-Type header value")
            }
            _ => {}
        }
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let (body, content_type) = match &self.template {
            Some(source) => {
                let text = template::render(source, n)
                    .map_err(|e| SendError::Permanent(format!("webhook template: {e}")))?;
                (text, self.content_type.as_deref().unwrap_or(JSON))
            }
            None => (payload(n, self.max_alerts).to_string(), JSON),
        };
        let headers = request_headers(content_type, &n.idempotency_key, &self.headers)?;
        let response = ctx
            .http
            .post(&self.url)
            .timeout(ctx.timeout)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::from_transport(&e))?;
        expect_success(response).await
    }
}

/// The Alertmanager webhook payload (version 4) of `n`, with at most `max_alerts` alerts (0 = all)
/// and the idempotency key as `idempotencyKey`.
pub fn payload(n: &Notification, max_alerts: usize) -> Value {
    let kept = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": n.alerts.len() - kept,
        "status": n.status.as_str(),
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": n.common_labels,
        "commonAnnotations": n.common_annotations,
        "externalURL": n.external_url,
        "alerts": n.alerts[..kept].iter().map(alert_json).collect::<Vec<_>>(),
        "idempotencyKey": n.idempotency_key,
    })
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "status": a.status.as_str(),
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": timestamp(a.starts_at),
        "endsAt": a.ends_at.map(timestamp).unwrap_or_else(|| ZERO_TIME.to_string()),
        "generatorURL": a.generator_url,
        "fingerprint": a.fingerprint,
    })
}

/// RFC 3339 in UTC with only the fraction digits needed, as Go's `time.Time` marshals.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Content type and idempotency key, then the user's headers (which win over ours).
fn request_headers(
    content_type: &str,
    idempotency_key: &str,
    extra: &BTreeMap<String, String>,
) -> Result<HeaderMap, SendError> {
    let mut headers = HeaderMap::new();
    let value = |v: &str, what: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| SendError::Permanent(format!("webhook: invalid value for header {what}")))
    };
    headers.insert(CONTENT_TYPE, value(content_type, "Content-Type")?);
    if !idempotency_key.is_empty() {
        headers.insert(
            IDEMPOTENCY_HEADER,
            value(idempotency_key, IDEMPOTENCY_HEADER)?,
        );
    }
    for (name, v) in extra {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SendError::Permanent(format!("webhook: invalid header name {name:?}")))?;
        let mut v = value(v, name.as_str())?;
        v.set_sensitive(true);
        headers.insert(name, v);
    }
    Ok(headers)
}

/// Any 2xx is a delivery; everything else is classified by status (429/5xx retry, 4xx do not).
pub(super) async fn expect_success(response: reqwest::Response) -> Result<(), SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(SendError::from_status(status.as_u16(), &body))
}

/// Reports `url` at `field` unless it is an absolute http(s) URL. The message never repeats the
/// URL: webhook URLs carry tokens.
pub(super) fn validate_http_url(issues: &mut Issues, field: &str, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => issues.at(
            &[field],
            format!(
                "must be an http:// or https:// URL with a host (scheme is {:?})",
                u.scheme()
            ),
        ),
        Err(e) => issues.at(&[field], format!("not a valid URL: {e}")),
    }
}

/// Header names must be valid tokens and values valid header text; a value is never repeated in
/// the message, since it is often a secret.
fn validate_headers(issues: &mut Issues, headers: &BTreeMap<String, String>) {
    for (name, value) in headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            issues.at_key(
                &["headers", name.as_str()],
                format!("invalid header name {name:?}"),
            );
        } else if HeaderValue::from_str(value).is_err() {
            issues.at(
                &["headers", name.as_str()],
                "invalid header value (control characters or non-visible text)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;
    use chrono::TimeZone;

    fn alert(i: u32, status: AlertStatus) -> Alert {
        let start = Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap();
        Alert {
            status,
            labels: BTreeMap::from([("alertname".into(), format!("check-{i}"))]),
            annotations: BTreeMap::new(),
            starts_at: start,
            ends_at: (status == AlertStatus::Resolved)
                .then(|| start + chrono::Duration::milliseconds(1500)),
            generator_url: format!("http://patrol/checks/{i}"),
            fingerprint: format!("fp{i}"),
        }
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "hook".into(),
            group_key: "{}:{alertname=\"x\"}".into(),
            status: AlertStatus::Firing,
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            alerts,
            external_url: "http://patrol".into(),
            idempotency_key: "k1".into(),
        }
    }

    #[test]
    fn firing_alerts_end_at_go_zero_time_and_resolved_at_their_end() {
        let n = notification(vec![
            alert(0, AlertStatus::Firing),
            alert(1, AlertStatus::Resolved),
        ]);
        let p = payload(&n, 0);
        assert_eq!(p["alerts"][0]["endsAt"], ZERO_TIME);
        assert_eq!(p["alerts"][0]["startsAt"], "2026-03-01T02:00:00Z");
        assert_eq!(p["alerts"][1]["endsAt"], "2026-03-01T02:00:01.500Z");
        assert_eq!(p["truncatedAlerts"], 0);
        assert_eq!(p["version"], "4");
    }

    #[test]
    fn max_alerts_keeps_the_first_and_counts_the_rest() {
        let n = notification((0..5).map(|i| alert(i, AlertStatus::Firing)).collect());
        let p = payload(&n, 2);
        assert_eq!(p["alerts"].as_array().unwrap().len(), 2);
        assert_eq!(p["alerts"][1]["fingerprint"], "fp1");
        assert_eq!(p["truncatedAlerts"], 3);
        assert_eq!(payload(&n, 9)["truncatedAlerts"], 0);
    }

    #[test]
    fn user_headers_override_defaults_and_bad_ones_are_reported_without_values() {
        let extra = BTreeMap::from([("content-type".to_string(), "text/x".to_string())]);
        let h = request_headers(JSON, "k", &extra).unwrap();
        assert_eq!(h[CONTENT_TYPE], "text/x");
        assert_eq!(h[IDEMPOTENCY_HEADER], "k");

        let hook = Webhook {
            url: "ftp://h/x".into(),
            headers: BTreeMap::from([
                ("bad name".to_string(), "v".to_string()),
                ("X-Token".to_string(), "s3cret\nvalue".to_string()),
            ]),
            template: None,
            content_type: Some("text/plain".into()),
            max_alerts: 0,
        };
        let mut issues = Issues::default();
        hook.validate(&mut issues);
        let messages: Vec<&str> = issues.items.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages.iter().all(|m| !m.contains("s3cret")),
            "{messages:?}"
        );
        assert!(messages[0].contains("http:// or https://"), "{messages:?}");
    }
}
