//! `kind: alertmanager`: pushes alerts into an existing Alertmanager (`POST {url}/api/v2/alerts`),
//! the way Prometheus does, so teams that already route, silence and inhibit there keep doing so.
//!
//! Alertmanager treats an alert as firing until its `endsAt`. A firing alert is therefore pushed
//! with `endsAt` = now + `resolve_timeout`: it stays active while patrol keeps re-sending it (the
//! outbox re-sends [`payload`] periodically), and expires on its own if patrol goes away. A resolved
//! alert is pushed with `endsAt` = the moment it resolved, which Alertmanager reports as resolved.

use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::webhook::{expect_success, timestamp, validate_http_url};
use super::{Notifier, SendContext, SendError};
use crate::alert::{Alert, AlertStatus, Notification};
use crate::config::Issues;

/// Default lifetime of a pushed firing alert that is not re-sent.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// An Alertmanager receiving patrol's alerts through its v2 API.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alertmanager {
    /// Base URL of the Alertmanager (`http://alertmanager:9093`, including any `--web.route-prefix`);
    /// alerts go to `{url}/api/v2/alerts`.
    pub url: String,
    /// How long a pushed firing alert stays active without being pushed again (default 5m). Keep it
    /// longer than the interval at which patrol re-sends firing alerts.
    #[serde(default = "default_resolve_timeout", with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub resolve_timeout: Duration,
    /// HTTP basic authentication (the password may reference a secret).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Bearer token sent as `Authorization: Bearer …` (may reference a secret).
    #[serde(default)]
    pub bearer_token: Option<String>,
}

/// Credentials for HTTP basic authentication.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    /// Write it as `${env:…}` or `${file:…}`, never inline.
    pub password: String,
}

fn default_resolve_timeout() -> Duration {
    DEFAULT_RESOLVE_TIMEOUT
}

impl Notifier for Alertmanager {
    fn validate(&self, issues: &mut Issues) {
        validate_http_url(issues, "url", &self.url);
        if self.basic_auth.is_some() && self.bearer_token.is_some() {
            issues.at_key(
                &["bearer_token"],
                "set either basic_auth or bearer_token, not both",
            );
        }
        if self.resolve_timeout.is_zero() {
            issues.at(
                &["resolve_timeout"],
                "must be positive: a firing alert would expire at once",
            );
        }
    }

    async fn send(&self, n: &Notification, ctx: &SendContext<'_>) -> Result<(), SendError> {
        let mut request = ctx
            .http
            .post(self.alerts_url())
            .timeout(ctx.timeout)
            .json(&self.payload(n, ctx.now));
        if let Some(auth) = &self.basic_auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        } else if let Some(token) = &self.bearer_token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| SendError::from_transport(&e))?;
        expect_success(response).await.map_err(|e| match e {
            SendError::Permanent(m) => {
                SendError::Permanent(format!("alertmanager rejected the alerts: {m}"))
            }
            SendError::Retryable(m) => SendError::Retryable(format!("alertmanager: {m}")),
        })
    }
}

impl Alertmanager {
    /// The v2 alerts endpoint under the configured base URL.
    pub fn alerts_url(&self) -> String {
        format!("{}/api/v2/alerts", self.url.trim_end_matches('/'))
    }

    /// The body of `POST /api/v2/alerts` for `n` as of `now`. Firing alerts end at
    /// now + `resolve_timeout`; resolved ones at their resolve time (never later than now, or
    /// Alertmanager would keep them firing until then).
    pub fn payload(&self, n: &Notification, now: DateTime<Utc>) -> Value {
        let lifetime =
            chrono::Duration::from_std(self.resolve_timeout).unwrap_or(chrono::Duration::MAX);
        let firing_until = now
            .checked_add_signed(lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Value::Array(
            n.alerts
                .iter()
                .map(|a| {
                    let ends_at = match a.status {
                        AlertStatus::Firing => firing_until,
                        AlertStatus::Resolved => a.ends_at.unwrap_or(now).min(now),
                    };
                    posted_alert(a, ends_at)
                })
                .collect(),
        )
    }
}

/// One `postableAlert`. Labels with empty values are left out: in Prometheus' model an empty
/// label is an absent one, and Alertmanager would otherwise fingerprint the alert differently.
fn posted_alert(a: &Alert, ends_at: DateTime<Utc>) -> Value {
    let labels: serde_json::Map<String, Value> = a
        .labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "labels": labels,
        "annotations": a.annotations,
        "startsAt": timestamp(a.starts_at.min(ends_at)),
        "endsAt": timestamp(ends_at),
        "generatorURL": a.generator_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn am() -> Alertmanager {
        Alertmanager {
            url: "http://am:9093/prefix/".into(),
            resolve_timeout: Duration::from_secs(300),
            basic_auth: None,
            bearer_token: None,
        }
    }

    fn alert(status: AlertStatus, ends_at: Option<DateTime<Utc>>) -> Alert {
        Alert {
            status,
            labels: BTreeMap::from([
                ("alertname".into(), "disk".into()),
                ("empty".into(), String::new()),
            ]),
            annotations: BTreeMap::from([("value".into(), "93".into())]),
            starts_at: Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap(),
            ends_at,
            generator_url: "http://patrol/checks/disk".into(),
            fingerprint: "f".into(),
        }
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "am".into(),
            group_key: "g".into(),
            status: AlertStatus::Firing,
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            alerts,
            external_url: "http://patrol".into(),
            idempotency_key: "k".into(),
        }
    }

    #[test]
    fn firing_alerts_live_for_resolve_timeout_and_resolved_ones_end_when_they_resolved() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap();
        let resolved_at = Utc.with_ymd_and_hms(2026, 3, 1, 2, 30, 0).unwrap();
        let n = notification(vec![
            alert(AlertStatus::Firing, None),
            alert(AlertStatus::Resolved, Some(resolved_at)),
            alert(
                AlertStatus::Resolved,
                Some(now + chrono::Duration::hours(1)),
            ),
        ]);
        let p = am().payload(&n, now);
        assert_eq!(
            p[0],
            json!({
                "labels": {"alertname": "disk"},
                "annotations": {"value": "93"},
                "startsAt": "2026-03-01T02:00:00Z",
                "endsAt": "2026-03-01T03:05:00Z",
                "generatorURL": "http://patrol/checks/disk",
            })
        );
        assert_eq!(p[1]["endsAt"], "2026-03-01T02:30:00Z");
        assert_eq!(
            p[2]["endsAt"], "2026-03-01T03:00:00Z",
            "never resolved in the future"
        );
        assert_eq!(am().alerts_url(), "http://am:9093/prefix/api/v2/alerts");
    }

    #[test]
    fn both_auth_kinds_and_a_zero_timeout_are_reported() {
        let mut a = am();
        a.basic_auth = Some(BasicAuth {
            username: "u".into(),
            password: "p".into(),
        });
        a.bearer_token = Some("t".into());
        a.resolve_timeout = Duration::ZERO;
        let mut issues = Issues::default();
        a.validate(&mut issues);
        assert_eq!(issues.items.len(), 2, "{:?}", issues.items);
    }
}
