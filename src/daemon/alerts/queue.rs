//! From transitions to queued notifications: routing, muting, Alertmanager-style group contents
//! (every notification carries all of its group's firing alerts), the groups' timing and
//! repeats, and the reminder loop that sends due reminders when no result arrives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Alerting;
use super::groups::{
    Destination, GroupId, GroupTiming, Sources, active_silences, muted, next_slot, repeat_due_at,
};
use crate::alert::lifecycle::{self, AlertState, Transition};
use crate::alert::matcher::Labels;
use crate::alert::silence::Silence;
use crate::alert::{Alert, AlertStatus};
use crate::config::RuleSet;
use crate::store::{NewNotification, Store};

/// The longest the reminder loop sleeps: a reminder made due by something the loop is not told
/// about (a silence ending, a reload) is at most this late.
const REMINDER_PASS_MAX: Duration = Duration::from_secs(30);
/// The shortest pause between two reminder passes.
const REMINDER_PASS_MIN: Duration = Duration::from_millis(200);

/// A group's notification in the making: its labels and timing, and the alerts whose change
/// calls for it (none for a repeat).
struct GroupPlan {
    labels: Labels,
    timing: GroupTiming,
    news: Vec<Alert>,
}

impl GroupPlan {
    fn of(d: &Destination) -> GroupPlan {
        GroupPlan {
            labels: d.labels.clone(),
            timing: d.timing,
            news: Vec::new(),
        }
    }
}

/// A member of groups: an announced, unmuted firing alert, and the groups it is in.
struct Member {
    state: AlertState,
    destinations: Vec<Destination>,
}

/// Sends due reminders although no check runs, so a check scheduled once a day still reminds
/// every `repeat_interval`: a pass at start, then when the next reminder falls due, when alerts
/// changed, and at least every 30 s (the daemon spawns it next to the Alertmanager re-push loop).
pub(in crate::daemon) async fn reminder_loop(
    daemon: Arc<crate::daemon::core::Daemon>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let rules = daemon.state.rules.load_full();
        let alerting = &daemon.alerting;
        let next = alerting
            .remind(&daemon.state.store, &rules, Utc::now())
            .await;
        let wait = next
            .map_or(REMINDER_PASS_MAX, |at| {
                (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
            })
            .clamp(REMINDER_PASS_MIN, REMINDER_PASS_MAX);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = alerting.reminders_changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Alerting {
    /// Queues the reminders due at `now` although no result arrived — alerts' own
    /// `alert.repeat_interval` and routes' `repeat_interval` (see [`super::groups`]) — and returns
    /// when the next one falls due (None: none pending).
    pub async fn remind(
        &self,
        store: &Store,
        rules: &RuleSet,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let _one_pass = self.queueing.lock().await;
        let sources = Sources::new(rules);
        let mut changed = Vec::new();
        let mut transitions = Vec::new();
        {
            let mut states = self.states.lock().await;
            for state in states.values_mut().filter(|s| s.is_firing()) {
                let Some(policy) = sources.policy_of(state) else {
                    continue;
                };
                if let Some(t) = lifecycle::remind(state, &policy, now) {
                    changed.push(state.clone());
                    transitions.push((state.clone(), t));
                }
            }
        }
        transitions.sort_by(|(a, _), (b, _)| oldest_first(a).cmp(&oldest_first(b)));
        self.queue(store, rules, changed, transitions, true, now)
            .await
    }

    /// Routes and mutes `transitions`, adds the groups whose route repeat is due (with
    /// `send_due_repeats`), fills every notification with its group's members, then saves
    /// `changed` states (and the members now told) and the notifications in one transaction.
    /// Returns when the next reminder falls due. The caller holds `queueing`.
    ///
    /// Runs pass `send_due_repeats = false`: the reminder loop sends repeats, and a run without
    /// transitions (the usual case) then only saves its states, without routing every firing
    /// alert again.
    pub(super) async fn queue(
        &self,
        store: &Store,
        rules: &RuleSet,
        mut changed: Vec<AlertState>,
        transitions: Vec<(AlertState, Transition)>,
        send_due_repeats: bool,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if transitions.is_empty() && !send_due_repeats {
            self.save(store, &changed, &[], now).await;
            return None;
        }
        let sources = Sources::new(rules);
        let scores = self.scores.lock().await.clone();
        let silences = active_silences(store, now).await;
        let firing = self.firing_states().await;
        let firing_labels: Vec<Labels> = firing.iter().map(|s| s.labels.clone()).collect();
        let mut members = members(&sources, &silences, firing, &firing_labels, now);
        let mut groups: BTreeMap<GroupId, GroupPlan> = BTreeMap::new();
        for (state, transition) in transitions {
            if let Some(reason) = muted(rules, &silences, &firing_labels, &state.labels, now) {
                tracing::info!("alert {} muted by {reason}", state.fingerprint);
                continue;
            }
            let alert = self.alert_of(&state, transition.status(&state), &scores);
            for d in sources.destinations(&state.labels) {
                groups
                    .entry(d.id.clone())
                    .or_insert_with(|| GroupPlan::of(&d))
                    .news
                    .push(alert.clone());
            }
        }
        if send_due_repeats {
            self.add_due_repeats(&members, &mut groups, now).await;
        }
        let mut told = HashSet::new();
        let notifications = self
            .fill_and_schedule(groups, &members, &scores, &mut told, now)
            .await;
        changed.extend(self.mark_told(&told, &mut members, now).await);
        self.save(store, &changed, &notifications, now).await;
        self.next_due(&sources, &members).await
    }

    /// Adds a repeat for each group with members whose route's `repeat_interval` has passed
    /// since its last notification.
    async fn add_due_repeats(
        &self,
        members: &[Member],
        groups: &mut BTreeMap<GroupId, GroupPlan>,
        now: DateTime<Utc>,
    ) {
        let clocks = self.group_clocks(members).await;
        for d in members.iter().flat_map(|m| &m.destinations) {
            let due = clocks
                .get(&d.id)
                .and_then(|last| repeat_due_at(*last, d.timing));
            if !groups.contains_key(&d.id) && due.is_some_and(|at| now >= at) {
                groups.insert(d.id.clone(), GroupPlan::of(d));
            }
        }
    }

    /// When each group of `members` was last notified: the slot recorded in this process, or —
    /// after a restart — the latest time one of its members was told (an estimate: a member may
    /// have been told through another group).
    async fn group_clocks(&self, members: &[Member]) -> HashMap<GroupId, DateTime<Utc>> {
        let mut clocks: HashMap<GroupId, DateTime<Utc>> = HashMap::new();
        for m in members {
            let Some(told) = m.state.last_notified_at else {
                continue;
            };
            for d in &m.destinations {
                let clock = clocks.entry(d.id.clone()).or_insert(told);
                *clock = (*clock).max(told);
            }
        }
        let slots = self.group_slots.lock().await;
        for (id, clock) in clocks.iter_mut() {
            if let Some(slot) = slots.get(id) {
                *clock = *slot;
            }
        }
        clocks
    }

    /// One notification per planned group — its news, then its other members (oldest first) —
    /// scheduled by the group's timing. `told` collects the firing alerts carried.
    async fn fill_and_schedule(
        &self,
        groups: BTreeMap<GroupId, GroupPlan>,
        members: &[Member],
        scores: &HashMap<String, f64>,
        told: &mut HashSet<String>,
        now: DateTime<Utc>,
    ) -> Vec<NewNotification> {
        let mut by_group: HashMap<&GroupId, Vec<&AlertState>> = HashMap::new();
        for m in members {
            for d in &m.destinations {
                by_group.entry(&d.id).or_default().push(&m.state);
            }
        }
        let mut slots = self.group_slots.lock().await;
        let mut notifications = Vec::with_capacity(groups.len());
        for (id, plan) in groups {
            let has_news = !plan.news.is_empty();
            let mut alerts = plan.news;
            let in_news: HashSet<String> = alerts.iter().map(|a| a.fingerprint.clone()).collect();
            let mut others: Vec<&AlertState> = by_group
                .get(&id)
                .map(|list| {
                    list.iter()
                        .copied()
                        .filter(|s| !in_news.contains(&s.fingerprint))
                        .collect()
                })
                .unwrap_or_default();
            others.sort_by(|a, b| oldest_first(a).cmp(&oldest_first(b)));
            alerts.extend(
                others
                    .into_iter()
                    .map(|s| self.alert_of(s, AlertStatus::Firing, scores)),
            );
            told.extend(
                alerts
                    .iter()
                    .filter(|a| a.status == AlertStatus::Firing)
                    .map(|a| a.fingerprint.clone()),
            );
            let at = next_slot(slots.get(&id).copied(), plan.timing, now, has_news);
            slots.insert(id.clone(), at);
            let (receiver, group_key) = id;
            let mut n = self.notification(receiver, group_key, plan.labels, alerts, now);
            n.not_before = Some(at);
            notifications.push(n);
        }
        notifications
    }

    /// Records that receivers were told about the firing alerts `told` at `now` (restarting
    /// their own reminder clocks) and returns the states that changed.
    async fn mark_told(
        &self,
        told: &HashSet<String>,
        members: &mut [Member],
        now: DateTime<Utc>,
    ) -> Vec<AlertState> {
        let mut changed = Vec::new();
        let mut states = self.states.lock().await;
        for fingerprint in told {
            let Some(state) = states.get_mut(fingerprint) else {
                continue;
            };
            if state.is_firing() && state.last_notified_at.is_some_and(|t| t < now) {
                state.last_notified_at = Some(now);
                changed.push(state.clone());
            }
        }
        for m in members.iter_mut() {
            if told.contains(&m.state.fingerprint) {
                m.state.last_notified_at = Some(now);
            }
        }
        changed
    }

    /// Saves the states and notifications in one transaction (retried: the transitions must
    /// reach the outbox) and wakes the sender.
    async fn save(
        &self,
        store: &Store,
        changed: &[AlertState],
        notifications: &[NewNotification],
        now: DateTime<Utc>,
    ) {
        if changed.is_empty() && notifications.is_empty() {
            return;
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
        for attempt in 1.. {
            match store.save_alert_changes(&refs, notifications, now).await {
                Ok(_) => break,
                Err(e) if attempt < 30 => {
                    tracing::error!(
                        "saving alert changes failed (attempt {attempt}), retrying: {e}"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
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

    /// The earliest reminder pending: a member's own (`alert.repeat_interval` after it was last
    /// told) or a group's repeat (its route's `repeat_interval` after its last notification).
    async fn next_due(&self, sources: &Sources<'_>, members: &[Member]) -> Option<DateTime<Utc>> {
        let own = members.iter().filter_map(|m| {
            let policy = sources.policy_of(&m.state)?;
            lifecycle::next_reminder_at(&m.state, &policy)
        });
        let clocks = self.group_clocks(members).await;
        let timings: HashMap<&GroupId, GroupTiming> = members
            .iter()
            .flat_map(|m| &m.destinations)
            .map(|d| (&d.id, d.timing))
            .collect();
        let repeats = clocks
            .iter()
            .filter_map(|(id, last)| repeat_due_at(*last, *timings.get(id)?));
        own.chain(repeats).min()
    }
}

/// The order of alerts in a message: oldest episode first, then by labels.
fn oldest_first(s: &AlertState) -> (Option<DateTime<Utc>>, &Labels, &str) {
    (s.starts_at, &s.labels, &s.fingerprint)
}

/// The groups' members among the `firing` states: announced, not muted now, with their groups.
fn members(
    sources: &Sources<'_>,
    silences: &[Silence],
    firing: Vec<AlertState>,
    firing_labels: &[Labels],
    now: DateTime<Utc>,
) -> Vec<Member> {
    firing
        .into_iter()
        .filter(|s| sources.announced(s))
        .filter(|s| muted(sources.rules(), silences, firing_labels, &s.labels, now).is_none())
        .map(|state| Member {
            destinations: sources.destinations(&state.labels),
            state,
        })
        .collect()
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
