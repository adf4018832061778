//! The alert lifecycle: a pure state machine from results to notifications (issue #4 §2).
//!
//! Every (check, series) — and every service with a `low_score` rule — has an [`AlertState`] that
//! is folded forward one observation at a time by [`observe`] / [`observe_score_low`]. Each step
//! returns the new state and the [`Transition`]s to notify; the caller stores both together (the
//! outbox), so nothing here does I/O or reads the clock.
//!
//! Phases: `Inactive` → `Pending` (bad, but fewer than `failure_threshold` in a row) → `Firing`
//! (threshold reached) → `Inactive` again after `success_threshold` good results. A result is bad
//! when it is warn, crit or error, good when ok; skipped results are ignored. Changes between
//! firing and not firing are "flips"; more than `flap.max_flips` of them within `flap.window`
//! make the alert flapping: one `FlappingStarted`, silence while it flaps, one `FlappingStopped`
//! once at most half as many flips remain in the window.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::notification::{Alert, AlertStatus};
use super::policy::AlertPolicy;
use super::template::keys;
use crate::config::{Check, Severity, duration};
use crate::result::{Band, CheckResult, Status, Value, format_number};
use crate::score::{LowScoreEvent, ServiceScore};

/// `alertname` of the alert a low service health score raises.
pub const SCORE_LOW: &str = "score_low";

/// Annotation set while an alert flaps ("7 changes in the last 30m").
pub const FLAPPING: &str = "flapping";

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Healthy (or never seen bad).
    Inactive,
    /// Bad, but not yet for `failure_threshold` results in a row.
    Pending,
    Firing,
}

/// What an observation asks to notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The alert started firing.
    Fired,
    /// A notified firing alert recovered (only with `send_resolved`).
    Resolved,
    /// Still firing `repeat_interval` after the last notification.
    Reminder,
    /// The alert changes too often; this one notice stands for all changes until it calms.
    FlappingStarted,
    /// The alert calmed down; notified with its current phase (firing or resolved).
    FlappingStopped,
}

impl Transition {
    /// The status a notification of this transition carries, given the state it left.
    pub fn status(self, state: &AlertState) -> AlertStatus {
        match self {
            Transition::Fired | Transition::Reminder | Transition::FlappingStarted => {
                AlertStatus::Firing
            }
            Transition::Resolved => AlertStatus::Resolved,
            Transition::FlappingStopped if state.phase == Phase::Firing => AlertStatus::Firing,
            Transition::FlappingStopped => AlertStatus::Resolved,
        }
    }
}

/// One alert's state between observations; stored as JSON by the outbox store, so field names are
/// a contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Hash of the identifying labels (see [`fingerprint`]).
    pub fingerprint: String,
    /// Labels of the latest observation (routing sees these).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the latest counted observation (summary, value, unit, baseline, …).
    pub annotations: BTreeMap<String, String>,
    pub phase: Phase,
    /// Bad results in a row (0 after a good one).
    pub bad_streak: u32,
    /// Good results in a row (0 after a bad one).
    pub good_streak: u32,
    /// When the alert last started firing (None if it never has).
    pub starts_at: Option<DateTime<Utc>>,
    /// When the alert last resolved (None while firing or if it never resolved).
    pub ends_at: Option<DateTime<Utc>>,
    /// When the phase last changed (or the alert was first seen).
    pub since: DateTime<Utc>,
    /// When receivers last heard about the current firing episode (None: not yet — a firing alert
    /// in that state is notified as soon as it may be, e.g. when a shadow check becomes enforced).
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Flips (changes between firing and not firing) within the flap window, oldest first.
    pub flips: Vec<DateTime<Utc>>,
    pub flapping: bool,
    /// Status of the latest counted observation.
    pub last_status: Status,
    pub last_value: Option<Value>,
}

/// Whether flap damping changed its mind in this observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlapChange {
    Started,
    Stopped,
}

impl AlertState {
    /// A never-seen alert: inactive since `now`.
    pub fn new(fingerprint: String, labels: BTreeMap<String, String>, now: DateTime<Utc>) -> Self {
        AlertState {
            fingerprint,
            labels,
            annotations: BTreeMap::new(),
            phase: Phase::Inactive,
            bad_streak: 0,
            good_streak: 0,
            starts_at: None,
            ends_at: None,
            since: now,
            last_notified_at: None,
            flips: Vec::new(),
            flapping: false,
            last_status: Status::Skipped,
            last_value: None,
        }
    }

    pub fn is_firing(&self) -> bool {
        self.phase == Phase::Firing
    }

    fn enter(&mut self, phase: Phase, now: DateTime<Utc>) {
        self.phase = phase;
        self.since = now;
        match phase {
            Phase::Firing => {
                self.starts_at = Some(now);
                self.ends_at = None;
                // A new episode: nobody has heard about it yet.
                self.last_notified_at = None;
            }
            Phase::Inactive if self.starts_at.is_some() && self.ends_at.is_none() => {
                self.ends_at = Some(now);
            }
            Phase::Inactive | Phase::Pending => {}
        }
    }

    /// Counts one bad or good observation and moves the phase by the thresholds.
    fn step(&mut self, bad: bool, policy: &AlertPolicy, now: DateTime<Utc>) {
        if bad {
            self.bad_streak = self.bad_streak.saturating_add(1);
            self.good_streak = 0;
            if self.phase != Phase::Firing {
                if self.bad_streak >= policy.failure_threshold.get() {
                    self.enter(Phase::Firing, now);
                } else if self.phase == Phase::Inactive {
                    self.enter(Phase::Pending, now);
                }
            }
        } else {
            self.good_streak = self.good_streak.saturating_add(1);
            self.bad_streak = 0;
            let recovered = match self.phase {
                Phase::Firing => self.good_streak >= policy.success_threshold.get(),
                Phase::Pending => true,
                Phase::Inactive => false,
            };
            if recovered {
                self.enter(Phase::Inactive, now);
            }
        }
    }

    /// Records a flip, forgets flips that left the window and decides whether the alert flaps.
    fn track_flaps(
        &mut self,
        flipped: bool,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
    ) -> Option<FlapChange> {
        if !policy.flap.enabled() {
            self.flips.clear();
            return self.flapping.then(|| {
                self.flapping = false;
                FlapChange::Stopped
            });
        }
        if flipped {
            self.flips.push(now);
        }
        let window = TimeDelta::from_std(policy.flap.window).unwrap_or(TimeDelta::MAX);
        self.flips
            .retain(|t| now.signed_duration_since(*t) < window);
        let count = self.flips.len();
        if !self.flapping && count > policy.flap.start_above() {
            self.flapping = true;
            Some(FlapChange::Started)
        } else if self.flapping && count <= policy.flap.calm_at_most() {
            self.flapping = false;
            Some(FlapChange::Stopped)
        } else {
            None
        }
    }

    /// The notifications this observation calls for, recording when receivers were told.
    fn notify(
        &mut self,
        was_firing: bool,
        flap: Option<FlapChange>,
        policy: &AlertPolicy,
        now: DateTime<Utc>,
    ) -> Vec<Transition> {
        let firing = self.is_firing();
        let told = match flap {
            Some(FlapChange::Started) => Some(Transition::FlappingStarted),
            Some(FlapChange::Stopped) if firing || policy.send_resolved => {
                Some(Transition::FlappingStopped)
            }
            Some(FlapChange::Stopped) => None,
            None if self.flapping => None,
            None if firing && self.last_notified_at.is_none() => Some(Transition::Fired),
            None if firing && self.reminder_due(policy, now) => Some(Transition::Reminder),
            None if was_firing && !firing && policy.send_resolved => self
                .last_notified_at
                .is_some()
                .then_some(Transition::Resolved),
            None => None,
        };
        if matches!(told, Some(t) if t.status(self) == AlertStatus::Firing) {
            self.last_notified_at = Some(now);
        }
        told.into_iter().collect()
    }

    fn reminder_due(&self, policy: &AlertPolicy, now: DateTime<Utc>) -> bool {
        next_reminder_at(self, policy).is_some_and(|at| now >= at)
    }
}

/// When the alert's next reminder falls due by its own `repeat_interval`: `repeat_interval` after
/// receivers last heard about it. None when no reminder is pending: not firing, flapping (damped),
/// never notified (shadow checks), or reminders off (`0s`).
///
/// The daemon also counts a notification of the alert's group as "heard about it" (every group
/// notification carries all the group's firing alerts) and moves `last_notified_at` forward then,
/// so the check's reminders and its routes' `repeat_interval` do not send two messages where one
/// does.
pub fn next_reminder_at(state: &AlertState, policy: &AlertPolicy) -> Option<DateTime<Utc>> {
    if !state.is_firing() || state.flapping || policy.repeat_interval.is_zero() {
        return None;
    }
    let every = TimeDelta::from_std(policy.repeat_interval).ok()?;
    state.last_notified_at?.checked_add_signed(every)
}

/// The reminder due at `now` without a new result (the daemon asks periodically, so a check that
/// runs rarely still reminds every `repeat_interval`): `Reminder`, recording that receivers were
/// told, or nothing.
pub fn remind(
    state: &mut AlertState,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> Option<Transition> {
    if !state.reminder_due(policy, now) {
        return None;
    }
    state.last_notified_at = Some(now);
    Some(Transition::Reminder)
}

/// Stable identity of an alert: a hash of `labels` (pass the identifying ones: `alertname` and
/// `series` of a check, `alertname` and `service` of a score), 16 hex digits like Alertmanager's.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for (k, v) in labels {
        // Separators that cannot occur in text keep `a=b,c` and `a=b c` apart.
        hash.update(k.as_bytes());
        hash.update([0xff]);
        hash.update(v.as_bytes());
        hash.update([0xfe]);
    }
    hex::encode(&hash.finalize()[..8])
}

/// The labels that identify a check's alert: the check (as `alertname`) and the series, if any.
pub fn identity_labels(check: &str, series: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("alertname".to_string(), check.to_string())]);
    if !series.is_empty() {
        labels.insert("series".into(), series.into());
    }
    labels
}

/// Folds one result of `check` into its alert state. `prev` is the state of the same (check,
/// series), None the first time. Skipped results change nothing; shadow checks keep their state
/// (so one can see what they would do) but never produce a transition.
pub fn observe(
    prev: Option<AlertState>,
    result: &CheckResult,
    check: &Check,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> (AlertState, Vec<Transition>) {
    let labels = check_labels(check, &result.series);
    let mut state = prev.unwrap_or_else(|| {
        let id = fingerprint(&identity_labels(check.name(), &result.series));
        AlertState::new(id, labels.clone(), now)
    });
    state.labels = labels;
    let bad = match result.status {
        Status::Skipped => return (state, Vec::new()),
        Status::Ok => false,
        Status::Warn | Status::Crit | Status::Error => true,
    };
    state.annotations = check_annotations(check, result);
    state.last_status = result.status;
    state.last_value = result.value.clone();
    let was_firing = state.is_firing();
    state.step(bad, policy, now);
    let flap = state.track_flaps(was_firing != state.is_firing(), policy, now);
    if state.flapping {
        let window = duration::format(policy.flap.window);
        let text = format!("{} changes in the last {window}", state.flips.len());
        state.annotations.insert(FLAPPING.into(), text);
    }
    if check.is_shadow() || result.shadow {
        return (state, Vec::new());
    }
    let transitions = state.notify(was_firing, flap, policy, now);
    (state, transitions)
}

/// Folds one evaluation of a service's health score into its `score_low` alert. `low` is the
/// [`LowScoreEvent`] of this evaluation, if [`crate::score::LowScoreWatch`] emitted one (its
/// `times` is the failure threshold, so the policy's thresholds and flap damping do not apply);
/// `below` is the service's `low_score.below`. The alert fires with the event and resolves as soon
/// as the score is back at or above `below`. A score without data changes nothing.
pub fn observe_score_low(
    prev: Option<AlertState>,
    score: &ServiceScore,
    low: Option<&LowScoreEvent>,
    below: f64,
    policy: &AlertPolicy,
    now: DateTime<Utc>,
) -> (AlertState, Vec<Transition>) {
    let labels = score_labels(&score.service);
    let mut state = prev.unwrap_or_else(|| {
        let id = fingerprint(&score_identity(&score.service));
        AlertState::new(id, labels.clone(), now)
    });
    state.labels = labels;
    if !score.has_data() {
        return (state, Vec::new());
    }
    let is_low = score.score < below;
    state.annotations = score_annotations(score, low, below);
    state.last_status = if is_low { Status::Crit } else { Status::Ok };
    state.last_value = Some(Value::Num(score.score));
    let was_firing = state.is_firing();
    match (low, state.phase) {
        (Some(_), Phase::Inactive | Phase::Pending) => state.enter(Phase::Firing, now),
        (None, Phase::Inactive) if is_low => state.enter(Phase::Pending, now),
        (None, Phase::Pending | Phase::Firing) if !is_low => state.enter(Phase::Inactive, now),
        _ => {}
    }
    if let Some(event) = low.filter(|_| !was_firing) {
        state.starts_at = Some(event.at);
    }
    let transitions = state.notify(was_firing, None, policy, now);
    (state, transitions)
}

/// The alert a notification carries for `state`: `status` from [`Transition::status`], links
/// under `external_url` (patrol's base URL as users reach it).
pub fn to_alert(state: &AlertState, status: AlertStatus, external_url: &str) -> Alert {
    let ends_at = match status {
        AlertStatus::Firing => None,
        AlertStatus::Resolved => Some(state.ends_at.unwrap_or(state.since)),
    };
    Alert {
        status,
        labels: state.labels.clone(),
        annotations: state.annotations.clone(),
        starts_at: state.starts_at.unwrap_or(state.since),
        ends_at,
        generator_url: generator_url(&state.labels, external_url),
        fingerprint: state.fingerprint.clone(),
    }
}

fn generator_url(labels: &BTreeMap<String, String>, external_url: &str) -> String {
    let base = external_url.trim_end_matches('/');
    match labels.get("check") {
        Some(check) => format!("{base}/api/v1/checks/{}", path_segment(check)),
        None => format!("{base}/api/v1/scores"),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so any check name is one path
/// segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The check's own labels, then the ones patrol sets (which win over same-named own labels).
fn check_labels(check: &Check, series: &str) -> BTreeMap<String, String> {
    let mut labels = check.common.labels.clone();
    labels.extend(identity_labels(check.name(), series));
    labels.insert("check".into(), check.name().into());
    if let Some(service) = &check.common.service {
        labels.insert("service".into(), service.clone());
    }
    labels.insert(
        "severity".into(),
        severity_name(check.common.severity).into(),
    );
    labels
}

fn check_annotations(check: &Check, result: &CheckResult) -> BTreeMap<String, String> {
    let subject = match result.series.as_str() {
        "" => check.name().to_string(),
        series => format!("{} [{series}]", check.name()),
    };
    let mut ann = BTreeMap::from([(
        keys::SUMMARY.to_string(),
        format!("{subject} is {}", result.status),
    )]);
    let description = Some(result.message.as_str())
        .filter(|m| !m.trim().is_empty())
        .or(check.common.description.as_deref());
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            ann.insert(key.to_string(), v);
        }
    };
    put(keys::DESCRIPTION, description.map(str::to_string));
    put(keys::VALUE, result.value.as_ref().map(Value::as_text));
    put(keys::UNIT, Some(result.unit.clone()));
    put(keys::BASELINE, result.baseline.as_ref().map(band_text));
    put(keys::REVISION, Some(result.revision.clone()));
    ann
}

/// A baseline band as messages show it: "120 – 180" (the unit is added by the template).
pub fn band_text(band: &Band) -> String {
    format!(
        "{} – {}",
        format_number(band.lower),
        format_number(band.upper)
    )
}

/// Identifying labels of a service's `score_low` alert.
pub fn score_identity(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("alertname".to_string(), SCORE_LOW.to_string()),
        ("service".to_string(), service.to_string()),
    ])
}

fn score_labels(service: &str) -> BTreeMap<String, String> {
    let mut labels = score_identity(service);
    labels.insert("severity".into(), severity_name(Severity::Warning).into());
    labels
}

fn score_annotations(
    score: &ServiceScore,
    low: Option<&LowScoreEvent>,
    below: f64,
) -> BTreeMap<String, String> {
    let (value, limit) = (format_number(score.score), format_number(below));
    let summary = if score.score < below {
        format!("{} health score {value} is below {limit}", score.service)
    } else {
        format!(
            "{} health score {value} is back to {limit} or more",
            score.service
        )
    };
    let mut ann = BTreeMap::from([
        (keys::SUMMARY.to_string(), summary),
        (keys::SCORE.to_string(), value),
    ]);
    if let Some(event) = low {
        let text = format!("below {limit} for {} evaluations in a row", event.times);
        ann.insert(keys::DESCRIPTION.to_string(), text);
    }
    ann
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
