//! What a receiver is asked to deliver: one notification about a group of alerts, in the shape of
//! Alertmanager's webhook payload (version 4), which every notifier renders in its own format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert: a (check, series) or a service score in trouble, or recovered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub status: AlertStatus,
    /// `alertname` (the check or `score_low`), `check`, `series`, `service`, `severity` and the
    /// check's own labels.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `value`, `baseline`, `score`, `revision`, …
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// When it resolved (None while firing).
    pub ends_at: Option<DateTime<Utc>>,
    /// Link back to patrol (the check's page under `external_url`).
    pub generator_url: String,
    /// Stable identity of the alert (hash of its identifying labels).
    pub fingerprint: String,
}

/// A group of alerts for one receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub receiver: String,
    /// Identity of the group (route + grouping labels), stable across notifications.
    pub group_key: String,
    /// `firing` if any alert of the group fires, else `resolved`.
    pub status: AlertStatus,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub alerts: Vec<Alert>,
    /// Base URL of patrol's web UI/API as users reach it.
    pub external_url: String,
    /// Identifies this notification across retries and restarts; receivers that dedupe use it.
    pub idempotency_key: String,
}

/// What patrol says on its own (a test message, a playbook notice or approval, a report) as a
/// notification carrying one firing alert.
pub struct OwnMessage {
    pub receiver: String,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub generator_url: String,
    pub fingerprint: String,
    pub external_url: String,
    pub idempotency_key: String,
    pub at: DateTime<Utc>,
}

impl From<OwnMessage> for Notification {
    fn from(m: OwnMessage) -> Notification {
        Notification {
            receiver: m.receiver,
            group_key: m.group_key,
            status: AlertStatus::Firing,
            group_labels: m.group_labels,
            common_labels: m.labels.clone(),
            common_annotations: m.annotations.clone(),
            alerts: vec![Alert {
                status: AlertStatus::Firing,
                labels: m.labels,
                annotations: m.annotations,
                starts_at: m.at,
                ends_at: None,
                generator_url: m.generator_url,
                fingerprint: m.fingerprint,
            }],
            external_url: m.external_url,
            idempotency_key: m.idempotency_key,
        }
    }
}

impl Notification {
    /// A group's status: `firing` if any of its alerts fires, else `resolved`.
    pub fn status_of(alerts: &[Alert]) -> AlertStatus {
        if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Firing)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Resolved)
    }

    /// A one-line title: "[FIRING:2] mysql-replication-delay (orders)".
    pub fn title(&self) -> String {
        let n = match self.status {
            AlertStatus::Firing => self.firing().count(),
            AlertStatus::Resolved => self.alerts.len(),
        };
        let name = self
            .common_labels
            .get("alertname")
            .or_else(|| self.group_labels.values().next())
            .cloned()
            .unwrap_or_else(|| "patrol".into());
        let service = self
            .common_labels
            .get("service")
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        format!(
            "[{}:{n}] {name}{service}",
            self.status.as_str().to_uppercase()
        )
    }
}
