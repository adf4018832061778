//! The daemon's alerting: each finished run's results move their alerts through the lifecycle
//! (thresholds, reminders, flap damping); transitions are routed to receivers, muted by silences,
//! maintenance windows and inhibition, grouped per (receiver, group) — every notification of a
//! group carrying all of the group's firing alerts, as Alertmanager's do (see [`groups`]) — and
//! written to the outbox in the SAME transaction as the alert states, so an alert cannot be lost
//! between "it fired" and "we will tell someone". The outbox sender delivers them (retries, dead
//! letters, rate budgets). Reminders are also sent without new results ([`reminder_loop`]), so a
//! check that runs once a day still reminds every `repeat_interval`.

mod groups;
mod queue;
mod repush;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use self::groups::GroupId;
use super::events::EventBus;
use super::playbooks::PLAYBOOK_RUN;
use super::playbooks::trigger::{self, KnownPlaybook, PlannedRun};
use crate::alert::lifecycle::{self, AlertState, Phase};
use crate::alert::matcher::Labels;
use crate::alert::outbox::{OutboxObserver, OutboxSender, RateLimit, SenderConfig};
use crate::alert::policy::AlertPolicy;
use crate::alert::{Alert, AlertStatus, Notification};
use crate::config::{Check, RuleSet};
use crate::result::CheckResult;
use crate::store::{NewEvent, NewNotification, Store};

pub(super) use self::queue::reminder_loop;

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
    /// When each (receiver, group) last had a notification scheduled: the group's clock for
    /// `group_interval` and its route's `repeat_interval`.
    group_slots: Mutex<HashMap<GroupId, DateTime<Utc>>>,
    /// The latest health score of each service, for the messages.
    scores: Mutex<HashMap<String, f64>>,
    /// One pass at a time moves states and queues their notifications, so two passes cannot
    /// both send a group's due repeat or tell different stories about one alert.
    queueing: Mutex<()>,
    /// Wakes the reminder loop when alerts changed, so a new alert's reminder is planned.
    reminders_changed: Notify,
    /// Where phase changes are announced as `alert` events (the status page follows them).
    events: std::sync::OnceLock<EventBus>,
}

impl Alerting {
    /// The alerts firing now.
    async fn firing_states(&self) -> Vec<AlertState> {
        let states = self.states.lock().await;
        states.values().filter(|s| s.is_firing()).cloned().collect()
    }

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
            queueing: Mutex::new(()),
            reminders_changed: Notify::new(),
            events: std::sync::OnceLock::new(),
        })
    }

    /// Announces every later phase change (pending, firing, resolved, flapping) on `bus`.
    pub fn announce_on(&self, bus: EventBus) {
        let _ = self.events.set(bus);
    }

    /// Stores and broadcasts one `alert` event per alert whose phase or flapping changed.
    async fn announce_moves(&self, store: &Store, moved: &[(Option<Phase>, AlertState)]) {
        let Some(bus) = self.events.get() else {
            return;
        };
        let events: Vec<NewEvent> = moved
            .iter()
            .map(|(previous, state)| alert_event(*previous, state))
            .collect();
        if let Err(e) = bus.publish(store, &events).await {
            tracing::warn!("could not store the alert events: {e}");
        }
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
    #[cfg(test)]
    pub async fn observe_run(
        &self,
        store: &Store,
        rules: &RuleSet,
        results: &[(Arc<Check>, Vec<CheckResult>)],
        scores: &HashMap<String, f64>,
        now: DateTime<Utc>,
    ) {
        self.observe_run_triggering(store, rules, results, scores, now, &trigger::none_known)
            .await;
    }

    /// [`Self::observe_run`], planning the `on_failure` playbook run of every alert that starts
    /// firing (when `known` has the playbook): its run id is allocated and linked from the alert
    /// (annotation `playbook_run`) before the notification is queued. The caller starts the runs.
    pub async fn observe_run_triggering(
        &self,
        store: &Store,
        rules: &RuleSet,
        results: &[(Arc<Check>, Vec<CheckResult>)],
        scores: &HashMap<String, f64>,
        now: DateTime<Utc>,
        known: KnownPlaybook<'_>,
    ) -> Vec<PlannedRun> {
        *self.scores.lock().await = scores.clone();
        let _one_pass = self.queueing.lock().await;
        let mut changed = Vec::new();
        let mut transitions = Vec::new();
        let mut planned = Vec::new();
        let mut moved = Vec::new();
        {
            let mut states = self.states.lock().await;
            for (check, check_results) in results {
                let policy = AlertPolicy::of(check);
                for r in check_results {
                    let id = lifecycle::fingerprint(&lifecycle::identity_labels(
                        check.name(),
                        &r.series,
                    ));
                    let prev = states.get(&id).cloned();
                    let (mut state, ts) = lifecycle::observe(prev.clone(), r, check, &policy, now);
                    trigger::keep_run_link(prev.as_ref(), &mut state);
                    let shadow = check.is_shadow() || r.shadow;
                    if let Some(name) = check.common.on_failure.as_deref()
                        && !shadow
                        && known(name)
                        && trigger::started_firing(prev.as_ref(), &state)
                        && !trigger::in_maintenance(rules, &state.labels, name, now)
                    {
                        let run =
                            trigger::on_failure(name, check, r, &state, scores, &self.external_url);
                        state
                            .annotations
                            .insert(PLAYBOOK_RUN.into(), run.url.clone());
                        planned.push(run);
                    }
                    transitions.extend(ts.into_iter().map(|t| (state.clone(), t)));
                    note_move(&mut moved, prev.as_ref(), &state);
                    states.insert(id, state.clone());
                    changed.push(state);
                }
            }
        }
        if !transitions.is_empty() {
            self.reminders_changed.notify_one();
        }
        self.queue(store, rules, changed, transitions, false, now)
            .await;
        self.announce_moves(store, &moved).await;
        planned
    }

    /// Folds an evaluation of the health scores into the services' `score_low` alerts (only
    /// services with a `low_score` rule have one). A service's alert that starts firing in this
    /// pass links the playbook run `run_links` has for it (annotation `playbook_run`).
    pub async fn observe_scores(
        &self,
        store: &Store,
        rules: &RuleSet,
        scores: &[crate::score::ServiceScore],
        low: &[crate::score::LowScoreEvent],
        run_links: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) {
        let policy = AlertPolicy::default();
        let _one_pass = self.queueing.lock().await;
        let mut changed = Vec::new();
        let mut transitions = Vec::new();
        let mut moved = Vec::new();
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
                let prev = states.get(&id).cloned();
                let (mut state, ts) = lifecycle::observe_score_low(
                    prev.clone(),
                    score,
                    event,
                    rule.below,
                    &policy,
                    now,
                );
                trigger::keep_run_link(prev.as_ref(), &mut state);
                if let Some(url) = run_links.get(&score.service)
                    && trigger::started_firing(prev.as_ref(), &state)
                {
                    state.annotations.insert(PLAYBOOK_RUN.into(), url.clone());
                }
                if states.get(&id) == Some(&state) {
                    continue;
                }
                transitions.extend(ts.into_iter().map(|t| (state.clone(), t)));
                note_move(&mut moved, prev.as_ref(), &state);
                states.insert(id, state.clone());
                changed.push(state);
            }
        }
        if !transitions.is_empty() {
            self.reminders_changed.notify_one();
        }
        if !changed.is_empty() {
            self.queue(store, rules, changed, transitions, false, now)
                .await;
        }
        self.announce_moves(store, &moved).await;
    }

    /// The alert a notification carries for `state`, with its service's health score (it tells
    /// the reader how bad things are overall).
    fn alert_of(
        &self,
        state: &AlertState,
        status: AlertStatus,
        scores: &HashMap<String, f64>,
    ) -> Alert {
        let mut alert = lifecycle::to_alert(state, status, &self.external_url);
        if let Some(score) = state.labels.get("service").and_then(|s| scores.get(s))
            && !alert.annotations.contains_key("score")
        {
            alert.annotations.insert(
                "score".into(),
                crate::result::format_number((score * 10.0).round() / 10.0),
            );
        }
        alert
    }

    /// One notification of the group (`receiver`, `group_key`) carrying `alerts`, with an
    /// idempotency key unique to this group, time and content.
    fn notification(
        &self,
        receiver: String,
        group_key: String,
        group_labels: Labels,
        alerts: Vec<Alert>,
        now: DateTime<Utc>,
    ) -> NewNotification {
        let mut key = Sha256::new();
        key.update(receiver.as_bytes());
        key.update(group_key.as_bytes());
        key.update(now.timestamp_micros().to_le_bytes());
        for a in &alerts {
            key.update(a.fingerprint.as_bytes());
            key.update(a.status.as_str().as_bytes());
        }
        let idempotency_key = hex::encode(key.finalize())[..32].to_string();
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
}

/// The key/value pairs every map shares.
/// Keeps `state` for an `alert` event when its phase or flapping differs from `prev`'s (a
/// first observation that stays inactive is no news).
fn note_move(
    moved: &mut Vec<(Option<Phase>, AlertState)>,
    prev: Option<&AlertState>,
    state: &AlertState,
) {
    let before = prev.map(|p| (p.phase, p.flapping));
    let news = match before {
        None => state.phase != Phase::Inactive,
        Some(b) => b != (state.phase, state.flapping),
    };
    if news {
        moved.push((prev.map(|p| p.phase), state.clone()));
    }
}

/// The `alert` event of a phase change: who, where it was, where it is.
fn alert_event(previous: Option<Phase>, state: &AlertState) -> NewEvent {
    NewEvent {
        kind: "alert".into(),
        at: Utc::now(),
        data: serde_json::json!({
            "fingerprint": state.fingerprint,
            "labels": state.labels,
            "phase": state.phase,
            "previous_phase": previous,
            "flapping": state.flapping,
            "since": state.since,
            "starts_at": state.starts_at,
            "status": state.last_status,
        }),
    }
}

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
