//! Alertmanager's grouping, as the daemon applies it: which groups an alert belongs to, which
//! alerts are a group's members, when a group's notifications may go out and when an unchanged
//! group is due to be notified again.
//!
//! **What a notification carries.** Every notification of a group — (receiver, group key) —
//! carries ALL the alerts currently firing in the group plus those resolved since the group's
//! previous notification (with `send_resolved`), as Alertmanager's do: the reader sees where the
//! whole group stands, not only what changed. A group's members are the firing alerts that were
//! announced (receivers heard about this episode; shadow checks never are), whose source still
//! notifies, that no silence, maintenance window or inhibition mutes, and whose routing (or the
//! check's `notify:`) puts them into the group.
//!
//! **Reminders.** Two settings ask for them, and they combine without doubling messages:
//! - a route's `repeat_interval` (default 4h): a group with members is notified again once its
//!   last notification is that old (a check's `notify:` receivers have no route, so this does
//!   not apply to them);
//! - a check's `alert.repeat_interval` (default 4h, `0s`: off): its alert is reminded once
//!   receivers last heard about it that long ago; the reminder notifies each of the alert's
//!   groups (with all their members).
//!
//! Any notification of a group counts as telling receivers about each member it carries, so it
//! restarts the members' own reminder clocks too: a group whose alerts all come from one check is
//! notified again after the shorter of the two intervals, once.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alert::inhibit::inhibited;
use crate::alert::lifecycle::AlertState;
use crate::alert::maintenance::in_maintenance;
use crate::alert::matcher::Labels;
use crate::alert::policy::AlertPolicy;
use crate::alert::route::route_all;
use crate::alert::silence::{Silence, silenced};
use crate::config::{Check, RuleSet};
use crate::store::{Store, StoredSilence};

/// (receiver, group key) of a notification.
pub(super) type GroupId = (String, String);

/// When a group's notifications may go out: the first after `wait`, later ones at least
/// `interval` apart, so alerts arriving close together reach people as one message; and after
/// `repeat` without any, again while it has members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct GroupTiming {
    pub wait: Duration,
    pub interval: Duration,
    /// The route's `repeat_interval`; None for a check's `notify:` receivers (no route: only the
    /// check's own `alert.repeat_interval` reminds them).
    pub repeat: Option<Duration>,
}

/// One group an alert goes to.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Destination {
    pub id: GroupId,
    pub labels: Labels,
    pub timing: GroupTiming,
}

/// What the rules say about the sources of alerts, indexed once per pass (rule sets can hold
/// thousands of checks).
pub(super) struct Sources<'a> {
    rules: &'a RuleSet,
    checks: HashMap<&'a str, &'a Check>,
}

impl<'a> Sources<'a> {
    pub fn new(rules: &'a RuleSet) -> Sources<'a> {
        let checks = rules
            .checks
            .iter()
            .map(|c| (c.name(), c.as_ref()))
            .collect();
        Sources { rules, checks }
    }

    pub fn rules(&self) -> &'a RuleSet {
        self.rules
    }

    fn check_of(&self, labels: &Labels) -> Option<&'a Check> {
        self.checks.get(labels.get("check")?.as_str()).copied()
    }

    /// The lifecycle policy of the alert's source, or None when the source no longer notifies:
    /// its check is gone or in shadow mode, or its service lost its `low_score` rule.
    pub fn policy_of(&self, state: &AlertState) -> Option<AlertPolicy> {
        if state.labels.contains_key("check") {
            return self
                .check_of(&state.labels)
                .filter(|c| !c.is_shadow())
                .map(AlertPolicy::of);
        }
        let service = state.labels.get("service")?;
        let rule = self.rules.services.get(service)?.low_score.as_ref();
        rule.map(|_| AlertPolicy::default())
    }

    /// Whether a state is firing and its receivers were told about this episode, by a source
    /// that still notifies: a member of its groups.
    pub fn announced(&self, state: &AlertState) -> bool {
        state.is_firing() && state.last_notified_at.is_some() && self.policy_of(state).is_some()
    }

    /// The groups an alert with `labels` goes to: those of its routes, and one per receiver in
    /// its check's `notify:` (grouped per check, sent at once).
    pub fn destinations(&self, labels: &Labels) -> Vec<Destination> {
        let routed = route_all(&self.rules.routes, labels)
            .into_iter()
            .map(|m| Destination {
                id: (m.receiver, m.group_key),
                labels: m.group_labels,
                timing: GroupTiming {
                    wait: m.timings.group_wait,
                    interval: m.timings.group_interval,
                    repeat: Some(m.timings.repeat_interval),
                },
            });
        let direct = self
            .check_of(labels)
            .map(|c| c.common.notify.clone())
            .unwrap_or_default();
        let check = labels.get("check").cloned().unwrap_or_default();
        let direct = direct.into_iter().map(move |receiver| {
            let key = format!("notify:{receiver}/{{check=\"{check}\"}}");
            Destination {
                id: (receiver, key),
                labels: Labels::from([("check".to_string(), check.clone())]),
                timing: GroupTiming::default(),
            }
        });
        routed.chain(direct).collect()
    }
}

/// When a group's next notification may go out, given when its previous one was scheduled
/// (`last`): a notification still waiting is joined; otherwise at least `interval` after the
/// previous one; a new (or long quiet) group waits `wait` for news so alerts arriving together
/// go out as one, while a repeat of a known group goes at once.
pub(super) fn next_slot(
    last: Option<DateTime<Utc>>,
    timing: GroupTiming,
    now: DateTime<Utc>,
    news: bool,
) -> DateTime<Utc> {
    let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    match last {
        Some(last) if now <= last => last,
        Some(last) if now < last + span(timing.interval) => last + span(timing.interval),
        _ if news => now + span(timing.wait),
        _ => now,
    }
}

/// When an unchanged group is due to be notified again: `repeat` after its last notification.
/// None for groups without a route (`notify:`).
pub(super) fn repeat_due_at(last: DateTime<Utc>, timing: GroupTiming) -> Option<DateTime<Utc>> {
    let every = chrono::Duration::from_std(timing.repeat?).ok()?;
    last.checked_add_signed(every)
}

/// Why an alert with `labels` stays quiet now, if it does.
pub(super) fn muted(
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

/// Silences not yet ended, as matchers; a silence whose matchers no longer parse is ignored
/// (logged).
pub(super) async fn active_silences(store: &Store, now: DateTime<Utc>) -> Vec<Silence> {
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

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
