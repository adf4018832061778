//! What the guardrails tell people (a refused run, an approval waiting): one notification per
//! receiver of the rules' `playbooks.notify`, queued in the outbox, then delivered once at once.
//!
//! **Nothing lost, nothing waiting for a daemon.** The notification is queued first, due only
//! after a short grace, then this process delivers it itself and records the outcome on the
//! outbox row (sent, retry later, dead). When this attempt fails, or the process dies in the
//! middle, the row is still pending and a daemon's outbox sender sharing the store delivers it
//! with its retries; the grace keeps that sender from sending it at the same moment as we do.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::alert::notifier::Parts;
use crate::alert::{Notification, OwnMessage, SendContext, SendError};
use crate::config::RuleSet;
use crate::store::{NewNotification, Store};

/// How long the outbox leaves a notification to the process that queued it before a daemon's
/// sender may deliver it.
const OWN_DELIVERY_GRACE: Duration = Duration::from_secs(30);
/// Bound of our own delivery attempt.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// When the outbox should try again after our attempt failed.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// One event to tell the `playbooks.notify` receivers about, as a firing alert.
pub struct Notice {
    /// `alertname` and the other identifying labels (`playbook`, `key`, `step`…).
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, links.
    pub annotations: BTreeMap<String, String>,
    /// The link the alert points to.
    pub generator_url: String,
    /// Unique to this event (a run id, an approval id): with the receiver, it makes the
    /// notification's idempotency key.
    pub event: String,
}

/// Queues `notice` for every `playbooks.notify` receiver, then delivers each once; the number
/// of notifications queued.
pub async fn post(store: &Store, rules: &RuleSet, external_url: &str, notice: &Notice) -> usize {
    let now = Utc::now();
    let notifications: Vec<NewNotification> = rules
        .playbooks
        .notify
        .iter()
        .map(|receiver| notification(receiver, notice, external_url, now))
        .collect();
    if notifications.is_empty() {
        return 0;
    }
    if let Err(e) = store.save_alert_changes(&[], &notifications, now).await {
        tracing::warn!(
            "could not queue the playbook notification {}: {e}",
            notice.event
        );
        return 0;
    }
    crate::install_crypto_provider();
    let http = reqwest::Client::new();
    let deliveries = notifications
        .iter()
        .map(|n| deliver_once(store, rules, &http, n));
    futures::future::join_all(deliveries).await;
    notifications.len()
}

/// The notification of `notice` for `receiver`, due after [`OWN_DELIVERY_GRACE`].
fn notification(
    receiver: &str,
    notice: &Notice,
    external_url: &str,
    now: DateTime<Utc>,
) -> NewNotification {
    let mut key = Sha256::new();
    key.update(receiver.as_bytes());
    key.update([0]);
    key.update(notice.event.as_bytes());
    let idempotency_key = hex::encode(key.finalize())[..32].to_string();
    let alertname = notice.labels.get("alertname").cloned().unwrap_or_default();
    let group_key = format!(
        "{alertname}:{}",
        notice.labels.get("playbook").map_or("", String::as_str)
    );
    let payload: Notification = OwnMessage {
        receiver: receiver.to_string(),
        group_key: group_key.clone(),
        group_labels: BTreeMap::from([("alertname".to_string(), alertname)]),
        labels: notice.labels.clone(),
        annotations: notice.annotations.clone(),
        generator_url: notice.generator_url.clone(),
        fingerprint: crate::alert::lifecycle::fingerprint(&notice.labels),
        external_url: external_url.to_string(),
        idempotency_key: idempotency_key.clone(),
        at: now,
    }
    .into();
    let grace = chrono::Duration::from_std(OWN_DELIVERY_GRACE).unwrap_or_default();
    NewNotification {
        receiver: receiver.to_string(),
        group_key,
        idempotency_key,
        payload,
        not_before: Some(now + grace),
    }
}

/// One delivery attempt of the queued `n`, its outcome recorded on the outbox row. Does nothing
/// when the row is no longer pending (a sender got to it first).
async fn deliver_once(store: &Store, rules: &RuleSet, http: &reqwest::Client, n: &NewNotification) {
    let Some(receiver) = rules.receivers.get(&n.receiver) else {
        return; // the outbox sender dead-letters it, saying the receiver is not configured
    };
    let id = match store.pending_notification_id(&n.idempotency_key).await {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("outbox: {e}");
            return;
        }
    };
    let now = Utc::now();
    let ctx = SendContext {
        http,
        timeout: SEND_TIMEOUT,
        now,
        parts: Parts::resume(0),
    };
    let limit = SEND_TIMEOUT + Duration::from_secs(1);
    let sent = tokio::time::timeout(limit, receiver.spec.send(&n.payload, &ctx))
        .await
        .unwrap_or_else(|_| Err(SendError::Retryable("no answer in time".to_string())));
    let recorded = match sent {
        Ok(()) => store.mark_sent(id, Utc::now()).await,
        Err(SendError::Retryable(why)) => {
            tracing::info!(receiver = %n.receiver, id, "playbook notification failed, the outbox retries it: {why}");
            let next = Utc::now() + chrono::Duration::from_std(RETRY_AFTER).unwrap_or_default();
            store.mark_failed(id, &why, next, ctx.parts.done()).await
        }
        Err(SendError::Permanent(why)) => {
            tracing::warn!(receiver = %n.receiver, id, "playbook notification dead-lettered: {why}");
            store.mark_dead(id, &why, Utc::now()).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!("outbox: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_becomes_one_firing_alert_per_receiver_due_after_the_grace() {
        let notice = Notice {
            labels: BTreeMap::from([
                ("alertname".to_string(), "playbook_refused".to_string()),
                ("playbook".to_string(), "fix".to_string()),
            ]),
            annotations: BTreeMap::from([("summary".to_string(), "why".to_string())]),
            generator_url: "http://p/x".to_string(),
            event: "run-1".to_string(),
        };
        let now = Utc::now();
        let a = notification("ops", &notice, "http://p", now);
        let b = notification("dev", &notice, "http://p", now);
        assert_ne!(a.idempotency_key, b.idempotency_key);
        assert_eq!(
            a.idempotency_key,
            notification("ops", &notice, "http://p", now).idempotency_key
        );
        assert_eq!(a.group_key, "playbook_refused:fix");
        assert_eq!(a.payload.alerts.len(), 1);
        assert_eq!(a.payload.alerts[0].annotations["summary"], "why");
        assert!(a.not_before.unwrap() > now);
    }
}
