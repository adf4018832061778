//! Keeping firing alerts alive in `alertmanager` receivers, which forget an alert that is not
//! pushed again before its `endsAt` (`resolve_timeout`).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Alerting;
use super::groups::{active_silences, muted};
use crate::alert::AlertStatus;
use crate::alert::lifecycle;
use crate::alert::matcher::Labels;
use crate::alert::route::route_all;
use crate::config::RuleSet;
use crate::store::Store;

impl Alerting {
    /// Alertmanager forgets a firing alert that is not pushed again before its `endsAt`
    /// (`resolve_timeout`): every firing alert routed to an `alertmanager` receiver is pushed again.
    /// Called periodically (more often than the receivers' `resolve_timeout`).
    pub async fn repush_to_alertmanagers(
        &self,
        store: &Store,
        rules: &RuleSet,
        now: DateTime<Utc>,
    ) {
        let is_am = |name: &str| {
            rules
                .receivers
                .get(name)
                .is_some_and(|r| r.spec.kind() == "alertmanager")
        };
        if !rules.receivers.keys().any(|n| is_am(n)) {
            return;
        }
        let silences = active_silences(store, now).await;
        let firing_states = self.firing_states().await;
        let firing: Vec<Labels> = firing_states.iter().map(|s| s.labels.clone()).collect();
        let slot = now.timestamp();
        let mut notifications = Vec::new();
        for state in &firing_states {
            if muted(rules, &silences, &firing, &state.labels, now).is_some() {
                continue;
            }
            let direct = state
                .labels
                .get("check")
                .and_then(|c| rules.check(c))
                .map(|c| c.common.notify.clone())
                .unwrap_or_default();
            let receivers = route_all(&rules.routes, &state.labels)
                .into_iter()
                .map(|m| (m.receiver, m.group_key, m.group_labels))
                .chain(
                    direct
                        .into_iter()
                        .map(|r| (r, format!("repush:{}", state.fingerprint), Labels::new())),
                );
            for (receiver, group_key, group_labels) in receivers.filter(|(r, _, _)| is_am(r)) {
                let alert = lifecycle::to_alert(state, AlertStatus::Firing, &self.external_url);
                let mut n = self.notification(receiver, group_key, group_labels, vec![alert], now);
                // One push per alert, receiver and second.
                n.idempotency_key = hex::encode(
                    &Sha256::digest(
                        format!("repush/{}/{}/{slot}", n.receiver, state.fingerprint).as_bytes(),
                    )[..16],
                );
                n.payload.idempotency_key.clone_from(&n.idempotency_key);
                notifications.push(n);
            }
        }
        if notifications.is_empty() {
            return;
        }
        match store.save_alert_changes(&[], &notifications, now).await {
            Ok(_) => {
                if let Some(w) = self.sender_waker.lock().await.as_ref() {
                    w.notify_one();
                }
            }
            Err(e) => tracing::warn!("re-pushing firing alerts to Alertmanager failed: {e}"),
        }
    }
}
