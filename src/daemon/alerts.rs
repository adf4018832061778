//! The daemon's alerting: each finished run's results move their alerts through the lifecycle
//! (thresholds, reminders, flap damping); transitions are routed to receivers, muted by silences,
//! maintenance windows and inhibition, grouped per (receiver, group), and written to the outbox in
//! the SAME transaction as the alert states — so an alert cannot be lost between "it fired" and
//! "we will tell someone". The outbox sender delivers them (retries, dead letters, rate budgets).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::alert::inhibit::inhibited;
use crate::alert::lifecycle::{self, AlertState, Transition};
use crate::alert::maintenance::in_maintenance;
use crate::alert::matcher::Labels;
use crate::alert::outbox::{OutboxObserver, OutboxSender, RateLimit, SenderConfig};
use crate::alert::policy::AlertPolicy;
use crate::alert::route::route_all;
use crate::alert::silence::{Silence, silenced};
use crate::alert::{Alert, AlertStatus, Notification};
use crate::config::{Check, RuleSet};
use crate::result::CheckResult;
use crate::store::{NewNotification, Store, StoredSilence};

/// (receiver, group key) of a notification.
type GroupId = (String, String);
/// The group's labels, its timing, and the alerts (with what happened to them) it will carry.
type Group = (Labels, GroupTiming, Vec<(Alert, Transition)>);

/// When a group's notifications may go out: the first after `wait`, later ones at least
/// `interval` apart, so alerts arriving close together reach people as one message.
#[derive(Clone, Copy, Debug, Default)]
struct GroupTiming {
    wait: std::time::Duration,
    interval: std::time::Duration,
}

/// The outbox's outcomes, counted in the daemon's metrics.
pub struct MetricsObserver(pub std::sync::Arc<super::state::DaemonState>);

impl OutboxObserver for MetricsObserver {
    fn delivered(&self, receiver: &str, result: crate::alert::outbox::DeliveryResult) {
        self.0.metrics.notification(receiver, result.as_str());
    }

    fn pending(&self, count: u64) {
        self.0.metrics.set_outbox_pending(count);
    }
}

pub struct Alerting {
    /// Alert states by fingerprint, loaded at start and kept current.
    states: Mutex<HashMap<String, AlertState>>,
    external_url: String,
    /// Wakes the sender after notifications were queued.
    sender_waker: Mutex<Option<Arc<Notify>>>,
    sender_stop: Mutex<Option<CancellationToken>>,
    /// When each (receiver, group) last had a notification scheduled.
    group_slots: Mutex<HashMap<GroupId, DateTime<Utc>>>,
    /// The latest health score of each service, for the messages.
    scores: Mutex<HashMap<String, f64>>,
}

impl Alerting {
    pub async fn load(store: &Store, external_url: String) -> Result<Alerting, String> {
        let mut states = HashMap::new();
        for (fingerprint, json) in store.load_alerts().await.map_err(|e| e.to_string())? {
            match serde_json::from_value::<AlertState>(json) {
                Ok(s) => {
                    states.insert(fingerprint, s);
                }
                Err(e) => tracing::warn!("ignoring stored alert {fingerprint}: {e}"),
            }
        }
        Ok(Alerting {
            states: Mutex::new(states),
            external_url,
            sender_waker: Mutex::new(None),
            sender_stop: Mutex::new(None),
            group_slots: Mutex::new(HashMap::new()),
            scores: Mutex::new(HashMap::new()),
        })
    }

    /// (Re)starts the outbox sender with the receivers of `rules` (on start and after a reload).
    pub async fn start_sender(
        &self,
        store: &Store,
        rules: &RuleSet,
        observer: Arc<dyn OutboxObserver>,
        shutdown: &CancellationToken,
    ) {
        let receivers = rules
            .receivers
            .iter()
            .map(|(name, r)| (name.clone(), r.spec.clone()))
            .collect();
        let rate_limits = rules
            .receivers
            .iter()
            .map(|(name, r)| (name.clone(), RateLimit::default_for_kind(r.spec.kind())))
            .collect();
        let config = SenderConfig {
            rate_limits,
            ..SenderConfig::default()
        };
        let sender = OutboxSender::new(store.clone(), receivers, reqwest::Client::new(), config)
            .with_observer(observer);
        let stop = shutdown.child_token();
        if let Some(old) = self.sender_stop.lock().await.replace(stop.clone()) {
            old.cancel();
        }
        *self.sender_waker.lock().await = Some(sender.waker());
        tokio::spawn(sender.run(stop));
    }

    /// Folds a finished run's results into the alerts and queues the notifications they call for.
    pub async fn observe_run(
        &self,
        store: &Store,
        rules: &RuleSet,
        results: &[(Arc<Check>, Vec<CheckResult>)],
        scores: &HashMap<String, f64>,
        now: DateTime<Utc>,
    ) {
        *self.scores.lock().await = scores.clone();
        let mut changed = Vec::new();
        let mut transitions = Vec::new();
        {
            let mut states = self.states.lock().await;
            for (check, check_results) in results {
                let policy = AlertPolicy::of(check);
                for r in check_results {
                    let id = lifecycle::fingerprint(&lifecycle::identity_labels(
                        check.name(),
                        &r.series,
                    ));
                    let (state, ts) =
                        lifecycle::observe(states.get(&id).cloned(), r, check, &policy, now);
                    let notify: Vec<String> = check.common.notify.clone();
                    transitions.extend(ts.into_iter().map(|t| (state.clone(), t, notify.clone())));
                    states.insert(id, state.clone());
                    changed.push(state);
                }
            }
        }
        self.queue(store, rules, changed, transitions, now).await;
    }

    /// Folds an evaluation of the health scores into the services' `score_low` alerts (only
    /// services with a `low_score` rule have one).
    pub async fn observe_scores(
        &self,
        store: &Store,
        rules: &RuleSet,
        scores: &[crate::score::ServiceScore],
        low: &[crate::score::LowScoreEvent],
        now: DateTime<Utc>,
    ) {
        let policy = AlertPolicy::default();
        let mut changed = Vec::new();
        let mut transitions = Vec::new();
        {
            let mut states = self.states.lock().await;
            for score in scores {
                let Some(rule) = rules
                    .services
                    .get(&score.service)
                    .and_then(|s| s.low_score.as_ref())
                else {
                    continue;
                };
                let event = low.iter().find(|e| e.service == score.service);
                let id = lifecycle::fingerprint(&lifecycle::score_identity(&score.service));
                let (state, ts) = lifecycle::observe_score_low(
                    states.get(&id).cloned(),
                    score,
                    event,
                    rule.below,
                    &policy,
                    now,
                );
                if states.get(&id) == Some(&state) {
                    continue;
                }
                transitions.extend(ts.into_iter().map(|t| (state.clone(), t, Vec::new())));
                states.insert(id, state.clone());
                changed.push(state);
            }
        }
        if !changed.is_empty() {
            self.queue(store, rules, changed, transitions, now).await;
        }
    }

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
        let firing_states: Vec<AlertState> = self
            .states
            .lock()
            .await
            .values()
            .filter(|s| s.is_firing())
            .cloned()
            .collect();
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
                let mut n = self.notification(
                    receiver,
                    group_key,
                    group_labels,
                    vec![(alert, Transition::Reminder)],
                    now,
                );
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

    /// Routes, mutes and groups `transitions`, then saves `changed` states and the notifications
    /// in one transaction.
    async fn queue(
        &self,
        store: &Store,
        rules: &RuleSet,
        changed: Vec<AlertState>,
        transitions: Vec<(AlertState, Transition, Vec<String>)>,
        now: DateTime<Utc>,
    ) {
        let scores = self.scores.lock().await.clone();
        let silences = active_silences(store, now).await;
        let firing: Vec<Labels> = self
            .states
            .lock()
            .await
            .values()
            .filter(|s| s.is_firing())
            .map(|s| s.labels.clone())
            .collect();
        let mut groups: BTreeMap<GroupId, Group> = BTreeMap::new();
        for (state, transition, direct) in transitions {
            let labels = &state.labels;
            if let Some(reason) = muted(rules, &silences, &firing, labels, now) {
                tracing::info!("alert {} muted by {reason}", state.fingerprint);
                continue;
            }
            let mut alert =
                lifecycle::to_alert(&state, transition.status(&state), &self.external_url);
            // The service's health score tells the reader how bad things are overall.
            if let Some(score) = labels.get("service").and_then(|s| scores.get(s).copied())
                && !alert.annotations.contains_key("score")
            {
                alert.annotations.insert(
                    "score".into(),
                    crate::result::format_number((score * 10.0).round() / 10.0),
                );
            }
            for m in route_all(&rules.routes, labels) {
                let timing = GroupTiming {
                    wait: m.timings.group_wait,
                    interval: m.timings.group_interval,
                };
                groups
                    .entry((m.receiver, m.group_key))
                    .or_insert_with(|| (m.group_labels, timing, Vec::new()))
                    .2
                    .push((alert.clone(), transition));
            }
            // `notify:` on a check goes out at once, grouped per check.
            for receiver in direct {
                let check = labels.get("check").cloned().unwrap_or_default();
                let key = format!("notify:{receiver}/{{check=\"{check}\"}}");
                let group_labels = Labels::from([("check".to_string(), check)]);
                groups
                    .entry((receiver, key))
                    .or_insert_with(|| (group_labels, GroupTiming::default(), Vec::new()))
                    .2
                    .push((alert.clone(), transition));
            }
        }
        let mut notifications = Vec::new();
        for ((receiver, group_key), (group_labels, timing, alerts)) in groups {
            let not_before = self
                .slot(&(receiver.clone(), group_key.clone()), timing, now)
                .await;
            let mut n = self.notification(receiver, group_key, group_labels, alerts, now);
            n.not_before = Some(not_before);
            notifications.push(n);
        }
        let states: Vec<(String, serde_json::Value)> = changed
            .iter()
            .map(|s| {
                (
                    s.fingerprint.clone(),
                    serde_json::to_value(s).unwrap_or_default(),
                )
            })
            .collect();
        let refs: Vec<(&str, &serde_json::Value)> =
            states.iter().map(|(f, v)| (f.as_str(), v)).collect();
        // A failed save is retried: the transitions must reach the outbox.
        for attempt in 1.. {
            match store.save_alert_changes(&refs, &notifications, now).await {
                Ok(_) => break,
                Err(e) if attempt < 30 => {
                    tracing::error!(
                        "saving alert changes failed (attempt {attempt}), retrying: {e}"
                    );
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::error!("saving alert changes failed for good: {e}");
                    return;
                }
            }
        }
        if !notifications.is_empty()
            && let Some(w) = self.sender_waker.lock().await.as_ref()
        {
            w.notify_one();
        }
    }

    fn notification(
        &self,
        receiver: String,
        group_key: String,
        group_labels: Labels,
        alerts: Vec<(Alert, Transition)>,
        now: DateTime<Utc>,
    ) -> NewNotification {
        let mut key = Sha256::new();
        key.update(receiver.as_bytes());
        key.update(group_key.as_bytes());
        key.update(now.timestamp_micros().to_le_bytes());
        for (a, t) in &alerts {
            key.update(a.fingerprint.as_bytes());
            key.update(format!("{t:?}").as_bytes());
        }
        let idempotency_key = hex::encode(key.finalize())[..32].to_string();
        let alerts: Vec<Alert> = alerts.into_iter().map(|(a, _)| a).collect();
        let status = Notification::status_of(&alerts);
        let payload = Notification {
            receiver: receiver.clone(),
            group_key: group_key.clone(),
            status,
            group_labels,
            common_labels: common(alerts.iter().map(|a| &a.labels)),
            common_annotations: common(alerts.iter().map(|a| &a.annotations)),
            alerts,
            external_url: self.external_url.clone(),
            idempotency_key: idempotency_key.clone(),
        };
        NewNotification {
            receiver,
            group_key,
            idempotency_key,
            payload,
            not_before: None,
        }
    }

    /// When the group's next notification may go out: `wait` after the first, then at least
    /// `interval` after the previous one. Notifications of a group that fall due together are
    /// folded into one by the sender.
    async fn slot(
        &self,
        group: &GroupId,
        timing: GroupTiming,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let mut slots = self.group_slots.lock().await;
        let span = |d: std::time::Duration| {
            chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
        };
        let at = match slots.get(group) {
            // A notification of the group is still waiting: join it.
            Some(last) if now <= *last => *last,
            // The last one went out less than `interval` ago: the next waits for the interval.
            Some(last) if now < *last + span(timing.interval) => *last + span(timing.interval),
            // A new group, or a quiet one: wait `wait` for more alerts to join.
            _ => now + span(timing.wait),
        };
        slots.insert(group.clone(), at);
        at
    }
}

/// The key/value pairs every map shares.
fn common<'a>(
    mut maps: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = maps.next() else {
        return BTreeMap::new();
    };
    let mut out = first.clone();
    for m in maps {
        out.retain(|k, v| m.get(k) == Some(v));
    }
    out
}

/// Why an alert with `labels` stays quiet now, if it does.
fn muted(
    rules: &RuleSet,
    silences: &[Silence],
    firing: &[Labels],
    labels: &Labels,
    now: DateTime<Utc>,
) -> Option<String> {
    if let Some(id) = silenced(silences, labels, now) {
        return Some(format!("silence {id}"));
    }
    if let Some(name) = in_maintenance(&rules.maintenance, labels, now) {
        return Some(format!("maintenance window {name}"));
    }
    inhibited(&rules.inhibit_rules, labels, firing).then(|| "an inhibition rule".to_string())
}

/// Silences not yet ended, as matchers; a silence whose matchers no longer parse is ignored (logged).
async fn active_silences(store: &Store, now: DateTime<Utc>) -> Vec<Silence> {
    let stored = match store.list_silences(Some(now)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot read silences: {e}");
            return Vec::new();
        }
    };
    stored.into_iter().filter_map(to_silence).collect()
}

fn to_silence(s: StoredSilence) -> Option<Silence> {
    crate::alert::silence::from_stored(s)
        .map_err(|e| tracing::warn!("{e}"))
        .ok()
}
