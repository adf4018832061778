//! `notify: {receivers: [ops], title, message, timeout}` — sends a message (templated like every
//! step field) to receivers of the rules. It goes out as one firing alert
//! (`alertname=playbook_notify`, `playbook_run=<run id>`) whose `summary` is the title (or the
//! message) and `description` the message, so every receiver kind renders it as it renders alerts.
//!
//! A receiver that cannot be reached now (a retryable failure) is not lost: with a store, the
//! notification is queued in the outbox, which the daemon delivers with retries; the output says
//! which receivers got it at once (`delivered`) and which were `queued`. A receiver that refuses
//! for good (bad token, 4xx), or a failure with nowhere to queue, fails the step. Never run by
//! `--dry-run`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{StepEnv, StepKind};
use crate::alert::{Notification, OwnMessage, SendContext, SendError};
use crate::config::{Issues, PathSeg, RuleSet};
use crate::store::NewNotification;

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A message to people.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyStep {
    /// Names under the rules' `receivers:`.
    pub receivers: Vec<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub message: String,
    /// Longest one delivery may take.
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
}

/// What became of the message at one receiver.
enum Delivery {
    Delivered,
    Queued(String),
    Failed(String),
}

impl NotifyStep {
    /// The notification for `receiver`.
    pub fn notification(
        &self,
        receiver: &str,
        run_id: &str,
        external_url: &str,
        now: DateTime<Utc>,
    ) -> Notification {
        let labels: BTreeMap<String, String> = [
            ("alertname", "playbook_notify"),
            ("playbook_run", run_id),
            ("severity", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let summary = self
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| self.message.clone());
        let annotations: BTreeMap<String, String> = [
            ("summary".to_string(), summary),
            ("description".to_string(), self.message.clone()),
        ]
        .into();
        let base = external_url.trim_end_matches('/');
        OwnMessage {
            receiver: receiver.to_string(),
            group_key: format!("playbook_notify:{run_id}"),
            group_labels: BTreeMap::new(),
            labels,
            annotations,
            generator_url: format!("{base}/api/v1/playbook-runs/{run_id}"),
            fingerprint: format!("playbook_notify:{run_id}"),
            external_url: external_url.to_string(),
            idempotency_key: format!(
                "playbook_notify:{run_id}:{receiver}:{}",
                uuid::Uuid::now_v7()
            ),
            at: now,
        }
        .into()
    }

    /// Sends to one receiver, queuing a retryable failure in the store when there is one.
    async fn deliver(&self, name: &str, env: &StepEnv<'_>, http: &reqwest::Client) -> Delivery {
        let Some(receiver) = env.rules.receivers.get(name) else {
            return Delivery::Failed(format!("unknown receiver `{name}`"));
        };
        let now = Utc::now();
        let n = self.notification(name, env.run_id, env.external_url, now);
        let ctx = SendContext {
            http,
            timeout: self.timeout,
            now,
            parts: Default::default(),
        };
        let error = match receiver.spec.send(&n, &ctx).await {
            Ok(()) => return Delivery::Delivered,
            Err(e) => e,
        };
        let why = crate::secrets::redact(error.message()).into_owned();
        let (SendError::Retryable(_), Some(store)) = (&error, env.store) else {
            return Delivery::Failed(why);
        };
        let queued = NewNotification {
            receiver: name.to_string(),
            group_key: n.group_key.clone(),
            idempotency_key: n.idempotency_key.clone(),
            payload: n,
            not_before: None,
        };
        match store.save_alert_changes(&[], &[queued], now).await {
            Ok(_) => Delivery::Queued(why),
            Err(e) => Delivery::Failed(format!("{why}; queuing it in the outbox failed too: {e}")),
        }
    }
}

impl StepKind for NotifyStep {
    fn validate(&self, rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if self.receivers.is_empty() {
            issues.at(&["receivers"], "name at least one receiver of the rules");
        }
        for (i, name) in self.receivers.iter().enumerate() {
            if !rules.receivers.contains_key(name) {
                let known: Vec<&str> = rules.receivers.keys().map(String::as_str).collect();
                issues.items.push((
                    vec![PathSeg::key("receivers"), PathSeg::Index(i)],
                    format!(
                        "unknown receiver `{name}`; receivers of the rules: {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if self.message.trim().is_empty() {
            issues.at(&["message"], "message is empty");
        }
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
    }

    fn dry_run_safe(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        let what = self.title.as_deref().unwrap_or(&self.message);
        let mut what: String = what.split_whitespace().collect::<Vec<_>>().join(" ");
        if what.chars().count() > 80 {
            what = what.chars().take(80).collect::<String>() + "…";
        }
        format!("notify {}: {what}", self.receivers.join(", "))
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let (mut delivered, mut queued, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for name in &self.receivers {
            match self.deliver(name, env, &http).await {
                Delivery::Delivered => delivered.push(json!(name)),
                Delivery::Queued(why) => queued.push(json!({ "receiver": name, "error": why })),
                Delivery::Failed(why) => failed.push(format!("{name}: {why}")),
            }
        }
        if !failed.is_empty() {
            return Err(format!("the message did not reach {}", failed.join("; ")));
        }
        let mut out = json!({ "delivered": delivered, "queued": queued });
        if !queued.is_empty() {
            out["note"] = json!(
                "receivers under `queued` could not be reached now: the message waits in the \
                 outbox, which the daemon delivers with retries"
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::step::test_support::{load, problems, rules};

    fn step(title: Option<&str>) -> NotifyStep {
        NotifyStep {
            receivers: vec!["ops".into()],
            title: title.map(String::from),
            message: "orders: 3 abnormal connections cut".into(),
            timeout: default_timeout(),
        }
    }

    #[test]
    fn the_message_is_one_firing_alert_linking_to_the_run() {
        let n = step(Some("Isolated")).notification("ops", "run-1", "http://p:9464/", Utc::now());
        assert_eq!(n.receiver, "ops");
        let a = &n.alerts[0];
        assert_eq!(a.labels["alertname"], "playbook_notify");
        assert_eq!(a.labels["playbook_run"], "run-1");
        assert_eq!(a.annotations["summary"], "Isolated");
        assert_eq!(
            a.annotations["description"],
            "orders: 3 abnormal connections cut"
        );
        assert_eq!(a.generator_url, "http://p:9464/api/v1/playbook-runs/run-1");
        let untitled = step(None).notification("ops", "r", "http://p", Utc::now());
        assert_eq!(
            untitled.alerts[0].annotations["summary"],
            "orders: 3 abnormal connections cut"
        );
        assert!(!step(None).dry_run_safe());
    }

    #[test]
    fn receivers_must_exist() {
        let rules =
            rules("receivers:\n  ops: { kind: webhook, url: \"http://127.0.0.1:1/hook\" }\n");
        let p = problems(
            "  - notify: { receivers: [ops, pager], message: hi }\n",
            &rules,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "pb.yaml:4:32: error: unknown receiver `pager`; receivers of the rules: ops"
            ),
            "{p:?}"
        );
        load("  - notify: { receivers: [ops], message: hi }\n", &rules).expect("valid");
    }
}
