//! Table tests of the alert lifecycle: each case is a sequence of (minute, status) observations and
//! the transitions expected at each.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use chrono::TimeZone;

use super::Transition::{Fired, FlappingStarted, FlappingStopped, Reminder, Resolved};
use super::*;
use crate::alert::policy::FlapPolicy;
use crate::config::RuleSet;
use crate::config::ScoreModel;

const RULES: &str = r#"
checks:
  - name: replica-lag
    kind: tcp
    address: '127.0.0.1:1'
    service: orders
    severity: critical
    labels: {team: db, severity: ignored}
    description: Replication delay of the orders replicas
  - {name: dark-launch, kind: tcp, address: '127.0.0.1:1', mode: shadow}
"#;

fn rules() -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), RULES).unwrap();
    crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + TimeDelta::minutes(minute)
}

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// A policy without flap damping unless a case asks for it.
fn policy(failures: u32, successes: u32) -> AlertPolicy {
    AlertPolicy {
        failure_threshold: n(failures),
        success_threshold: n(successes),
        flap: FlapPolicy {
            window: Duration::ZERO,
            max_flips: n(6),
        },
        ..AlertPolicy::default()
    }
}

fn result(check: &str, status: Status) -> CheckResult {
    CheckResult {
        unit: "s".into(),
        message: format!("delay {status}"),
        revision: "r42".into(),
        ..CheckResult::new(check, "replica-1", status, Some(Value::Num(12.5)))
    }
}

/// Feeds `steps` to one alert and returns the transitions of each step and the final state.
fn play(
    check: &str,
    policy: &AlertPolicy,
    steps: &[(i64, Status)],
) -> (Vec<Vec<Transition>>, AlertState) {
    let rules = rules();
    let check = rules.check(check).unwrap();
    let mut state = None;
    let mut out = Vec::new();
    for (minute, status) in steps {
        let (next, transitions) = observe(
            state,
            &result(check.name(), *status),
            check,
            policy,
            t(*minute),
        );
        state = Some(next);
        out.push(transitions);
    }
    (out, state.unwrap())
}

/// Minutes 0, 1, 2, … with the given statuses.
fn every_minute(statuses: &[Status]) -> Vec<(i64, Status)> {
    statuses
        .iter()
        .enumerate()
        .map(|(i, s)| (i as i64, *s))
        .collect()
}

use Status::{Crit, Error, Ok as Good, Skipped, Warn};

/// (name, failure_threshold, success_threshold, statuses, transitions expected at each)
type ThresholdCase = (
    &'static str,
    u32,
    u32,
    &'static [Status],
    &'static [&'static [Transition]],
);

#[test]
fn thresholds_decide_when_an_alert_fires_and_resolves() {
    let cases: &[ThresholdCase] = &[
        (
            "first bad fires",
            1,
            1,
            &[Good, Crit, Good],
            &[&[], &[Fired], &[Resolved]],
        ),
        (
            "warn and error are bad too",
            1,
            1,
            &[Warn, Good, Error],
            &[&[Fired], &[Resolved], &[Fired]],
        ),
        (
            "three bad in a row",
            3,
            1,
            &[Crit, Crit, Good, Crit, Crit, Crit, Crit],
            &[&[], &[], &[], &[], &[], &[Fired], &[]],
        ),
        (
            "two good in a row to resolve",
            1,
            2,
            &[Crit, Good, Crit, Good, Good, Good],
            &[&[Fired], &[], &[], &[], &[Resolved], &[]],
        ),
        (
            "skipped neither breaks nor extends a streak",
            2,
            1,
            &[Crit, Skipped, Crit],
            &[&[], &[], &[Fired]],
        ),
    ];
    for (name, failures, successes, statuses, expected) in cases {
        let (got, _) = play(
            "replica-lag",
            &policy(*failures, *successes),
            &every_minute(statuses),
        );
        let expected: Vec<Vec<Transition>> = expected.iter().map(|t| t.to_vec()).collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn phases_streaks_and_times_follow_the_results() {
    let (_, pending) = play("replica-lag", &policy(3, 1), &every_minute(&[Crit, Crit]));
    assert_eq!(
        (pending.phase, pending.bad_streak, pending.starts_at),
        (Phase::Pending, 2, None)
    );
    let (_, firing) = play(
        "replica-lag",
        &policy(2, 2),
        &every_minute(&[Crit, Crit, Good]),
    );
    assert_eq!(
        (firing.phase, firing.good_streak, firing.bad_streak),
        (Phase::Firing, 1, 0)
    );
    assert_eq!(
        (firing.starts_at, firing.ends_at, firing.since),
        (Some(t(1)), None, t(1))
    );
    let (_, resolved) = play(
        "replica-lag",
        &policy(1, 1),
        &every_minute(&[Crit, Good, Good]),
    );
    assert_eq!(
        (resolved.phase, resolved.starts_at, resolved.ends_at),
        (Phase::Inactive, Some(t(0)), Some(t(1)))
    );
    assert_eq!(
        (resolved.last_status, resolved.last_value.clone()),
        (Good, Some(Value::Num(12.5)))
    );
}

#[test]
fn send_resolved_false_keeps_recoveries_quiet() {
    let quiet = AlertPolicy {
        send_resolved: false,
        ..policy(1, 1)
    };
    let (got, state) = play("replica-lag", &quiet, &every_minute(&[Crit, Good, Crit]));
    assert_eq!(got, vec![vec![Fired], vec![], vec![Fired]]);
    assert_eq!(state.phase, Phase::Firing);
}

#[test]
fn a_firing_alert_is_repeated_every_repeat_interval() {
    let hourly = AlertPolicy {
        repeat_interval: Duration::from_secs(3600),
        ..policy(1, 1)
    };
    let steps = [
        (0, Crit),
        (30, Crit),
        (59, Crit),
        (60, Crit),
        (90, Crit),
        (120, Crit),
        (121, Crit),
    ];
    let (got, state) = play("replica-lag", &hourly, &steps);
    assert_eq!(
        got,
        vec![
            vec![Fired],
            vec![],
            vec![],
            vec![Reminder],
            vec![],
            vec![Reminder],
            vec![]
        ]
    );
    assert_eq!(state.last_notified_at, Some(t(120)));
    let never = AlertPolicy {
        repeat_interval: Duration::ZERO,
        ..policy(1, 1)
    };
    let (got, _) = play("replica-lag", &never, &[(0, Crit), (600, Crit)]);
    assert_eq!(got, vec![vec![Fired], vec![]], "0s turns reminders off");
}

#[test]
fn reminders_fall_due_without_new_results() {
    let hourly = AlertPolicy {
        repeat_interval: Duration::from_secs(3600),
        ..policy(1, 1)
    };
    let (_, mut state) = play("replica-lag", &hourly, &[(0, Crit)]);
    assert_eq!(next_reminder_at(&state, &hourly), Some(t(60)));
    assert_eq!(remind(&mut state, &hourly, t(59)), None, "not yet due");
    assert_eq!(remind(&mut state, &hourly, t(61)), Some(Reminder));
    assert_eq!(state.last_notified_at, Some(t(61)), "the clock restarts");
    assert_eq!(next_reminder_at(&state, &hourly), Some(t(121)));
    assert_eq!(
        remind(&mut state, &hourly, t(62)),
        None,
        "one reminder per interval"
    );

    let never = AlertPolicy {
        repeat_interval: Duration::ZERO,
        ..hourly.clone()
    };
    assert_eq!(
        next_reminder_at(&state, &never),
        None,
        "0s turns reminders off"
    );
    assert_eq!(remind(&mut state, &never, t(600)), None);
    state.flapping = true;
    assert_eq!(
        next_reminder_at(&state, &hourly),
        None,
        "a flapping alert is damped"
    );
    let (_, resolved) = play("replica-lag", &hourly, &[(0, Crit), (1, Good)]);
    assert_eq!(
        next_reminder_at(&resolved, &hourly),
        None,
        "only firing alerts remind"
    );
    let (_, shadow) = play("dark-launch", &hourly, &[(0, Crit)]);
    assert!(shadow.is_firing());
    assert_eq!(
        next_reminder_at(&shadow, &hourly),
        None,
        "a shadow check's alert was never notified, so it never reminds"
    );
}

#[test]
fn a_flapping_check_is_notified_once_until_it_calms() {
    let damped = AlertPolicy {
        flap: FlapPolicy {
            window: Duration::from_secs(600),
            max_flips: n(3),
        },
        ..policy(1, 1)
    };
    // Flips at minutes 0..=5 (4 > 3: flapping at the 4th), silence while it flaps (at minute 13
    // the flips of minutes 4 and 5 are still in the 10-minute window), calm at minute 16 once at
    // most 1 flip remains.
    let steps = [
        (0, Crit),
        (1, Good),
        (2, Crit),
        (3, Good),
        (4, Crit),
        (5, Good),
        (6, Good),
        (13, Good),
        (16, Good),
        (17, Crit),
    ];
    let (got, state) = play("replica-lag", &damped, &steps);
    let expected: Vec<Vec<Transition>> = vec![
        vec![Fired],
        vec![Resolved],
        vec![Fired],
        vec![FlappingStarted],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![FlappingStopped],
        vec![Fired],
    ];
    assert_eq!(got, expected);
    assert!(!state.flapping);
}

#[test]
fn flapping_is_annotated_and_stops_with_the_current_phase() {
    let damped = AlertPolicy {
        flap: FlapPolicy {
            window: Duration::from_secs(600),
            max_flips: n(2),
        },
        ..policy(1, 1)
    };
    let (got, state) = play("replica-lag", &damped, &every_minute(&[Crit, Good, Crit]));
    assert_eq!(got.last(), Some(&vec![FlappingStarted]));
    assert!(state.flapping);
    assert_eq!(state.annotations[FLAPPING], "3 changes in the last 10m");
    assert_eq!(FlappingStarted.status(&state), AlertStatus::Firing);
    // Still firing when the window empties: the stop notice is a firing one and counts as told.
    let (got, state) = play(
        "replica-lag",
        &damped,
        &[(0, Crit), (1, Good), (2, Crit), (20, Crit), (21, Crit)],
    );
    assert_eq!(got[3], vec![FlappingStopped]);
    assert_eq!(
        (FlappingStopped.status(&state), state.last_notified_at),
        (AlertStatus::Firing, Some(t(20)))
    );
    assert_eq!(got[4], vec![], "no second Fired after the stop notice");
    assert!(!state.annotations.contains_key(FLAPPING));
    // Calm while resolved: the stop notice resolves, unless resolved notices are off.
    let steps = [(0, Crit), (1, Good), (2, Crit), (3, Good), (20, Good)];
    let (got, state) = play("replica-lag", &damped, &steps);
    assert_eq!(
        (got[4].clone(), FlappingStopped.status(&state)),
        (vec![FlappingStopped], AlertStatus::Resolved)
    );
    let quiet = AlertPolicy {
        send_resolved: false,
        ..damped
    };
    let (got, _) = play("replica-lag", &quiet, &steps);
    assert_eq!(got[4], vec![]);
}

#[test]
fn without_a_flap_window_every_change_is_notified() {
    let statuses = [Crit, Good, Crit, Good, Crit, Good, Crit, Good, Crit];
    let (got, state) = play("replica-lag", &policy(1, 1), &every_minute(&statuses));
    assert!(got.iter().all(|t| t.len() == 1), "{got:?}");
    assert!(!state.flapping && state.flips.is_empty());
}

#[test]
fn shadow_checks_never_notify_but_keep_their_state() {
    let (got, state) = play(
        "dark-launch",
        &policy(1, 1),
        &every_minute(&[Crit, Crit, Good]),
    );
    assert!(got.iter().all(Vec::is_empty), "{got:?}");
    assert_eq!(
        (state.phase, state.last_notified_at),
        (Phase::Inactive, None)
    );
    // A shadow result of an enforced check is quiet too.
    let rules = rules();
    let check = rules.check("replica-lag").unwrap();
    let shadowed = CheckResult {
        shadow: true,
        ..result("replica-lag", Crit)
    };
    let (state, got) = observe(None, &shadowed, check, &policy(1, 1), t(0));
    assert_eq!((got, state.phase), (vec![], Phase::Firing));
    // Once enforced, the alert that was never told fires at the next result.
    let (_, got) = observe(
        Some(state),
        &result("replica-lag", Crit),
        check,
        &policy(1, 1),
        t(1),
    );
    assert_eq!(got, vec![Fired]);
}

#[test]
fn labels_annotations_and_the_alert_describe_the_check() {
    let (_, state) = play("replica-lag", &policy(1, 1), &every_minute(&[Crit]));
    let labels: Vec<(&str, &str)> = state
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alertname", "replica-lag"),
            ("check", "replica-lag"),
            ("series", "replica-1"),
            ("service", "orders"),
            ("severity", "critical"),
            ("team", "db"),
        ]
    );
    assert_eq!(
        state.fingerprint,
        fingerprint(&identity_labels("replica-lag", "replica-1"))
    );
    assert_eq!(
        state.annotations[keys::SUMMARY],
        "replica-lag [replica-1] is crit"
    );
    assert_eq!(state.annotations[keys::DESCRIPTION], "delay crit");
    assert_eq!(
        (
            state.annotations[keys::VALUE].as_str(),
            state.annotations[keys::UNIT].as_str()
        ),
        ("12.5", "s")
    );
    assert_eq!(state.annotations[keys::REVISION], "r42");
    let alert = to_alert(&state, Fired.status(&state), "https://patrol.example/");
    assert_eq!(
        alert.generator_url,
        "https://patrol.example/api/v1/checks/replica-lag"
    );
    assert_eq!(
        (alert.starts_at, alert.ends_at, alert.status),
        (t(0), None, AlertStatus::Firing)
    );
    assert_eq!(alert.fingerprint, state.fingerprint);
}

#[test]
fn a_band_and_a_missing_message_fill_baseline_and_description() {
    let rules = rules();
    let check = rules.check("replica-lag").unwrap();
    let banded = CheckResult {
        message: String::new(),
        baseline: Some(Band {
            mean: 150.0,
            stddev: 10.0,
            lower: 120.0,
            upper: 180.25,
            samples: 40,
            ..Band::default()
        }),
        ..result("replica-lag", Warn)
    };
    let (state, _) = observe(None, &banded, check, &policy(1, 1), t(0));
    assert_eq!(state.annotations[keys::BASELINE], "120 – 180.25");
    assert_eq!(
        state.annotations[keys::DESCRIPTION],
        "Replication delay of the orders replicas"
    );
    let (state, got) = observe(
        Some(state),
        &result("replica-lag", Good),
        check,
        &policy(1, 1),
        t(5),
    );
    let alert = to_alert(&state, got[0].status(&state), "http://p:8080");
    assert_eq!(
        (alert.status, alert.starts_at, alert.ends_at),
        (AlertStatus::Resolved, t(0), Some(t(5)))
    );
}

#[test]
fn fingerprints_are_stable_and_tell_series_apart() {
    let a = fingerprint(&identity_labels("lag", "r1"));
    assert_eq!(a, fingerprint(&identity_labels("lag", "r1")));
    assert_eq!(a.len(), 16);
    assert_ne!(a, fingerprint(&identity_labels("lag", "r2")));
    assert_ne!(
        fingerprint(&identity_labels("lag", "")),
        fingerprint(&identity_labels("lag", "r1"))
    );
    let ab = BTreeMap::from([("a".to_string(), "b,c".to_string())]);
    let split = BTreeMap::from([
        ("a".to_string(), "b".to_string()),
        ("c".to_string(), String::new()),
    ]);
    assert_ne!(fingerprint(&ab), fingerprint(&split));
}

#[test]
fn the_state_round_trips_through_json() {
    let (_, state) = play(
        "replica-lag",
        &policy(1, 1),
        &every_minute(&[Crit, Good, Crit]),
    );
    let json = serde_json::to_string(&state).unwrap();
    assert!(json.contains("\"phase\":\"firing\""), "{json}");
    assert_eq!(serde_json::from_str::<AlertState>(&json).unwrap(), state);
}

fn service_score(score: f64, no_data: bool) -> ServiceScore {
    ServiceScore {
        service: "orders".into(),
        score,
        model: ScoreModel::Penalty,
        details: if no_data {
            serde_json::json!({"no_data": true})
        } else {
            serde_json::json!({"terms": []})
        },
        at: t(0),
    }
}

fn low_event(score: f64, minute: i64) -> LowScoreEvent {
    LowScoreEvent {
        service: "orders".into(),
        score,
        below: 70.0,
        times: 3,
        at: t(minute),
        details: serde_json::json!({}),
    }
}

/// (minute, score, with a low-score event, without data, transitions expected, phase expected)
type ScoreStep = (i64, f64, bool, bool, &'static [Transition], Phase);

#[test]
fn a_low_score_fires_with_its_event_and_resolves_when_the_score_recovers() {
    let hourly = AlertPolicy {
        repeat_interval: Duration::from_secs(3600),
        ..AlertPolicy::default()
    };
    let steps: &[ScoreStep] = &[
        (0, 60.0, false, false, &[], Phase::Pending),
        (1, 55.0, false, false, &[], Phase::Pending),
        (2, 50.0, true, false, &[Fired], Phase::Firing),
        (3, 0.0, false, true, &[], Phase::Firing),
        (62, 52.0, false, false, &[Reminder], Phase::Firing),
        (63, 70.0, false, false, &[Resolved], Phase::Inactive),
        (64, 90.0, false, false, &[], Phase::Inactive),
    ];
    let mut state = None;
    for (minute, score, event, no_data, expected, phase) in steps {
        let event = event.then(|| low_event(*score, *minute));
        let s = service_score(*score, *no_data);
        let (next, got) = observe_score_low(state, &s, event.as_ref(), 70.0, &hourly, t(*minute));
        assert_eq!(
            (got.as_slice(), next.phase),
            (*expected, *phase),
            "minute {minute}"
        );
        if *minute == 2 {
            assert_eq!(
                next.annotations[keys::SUMMARY],
                "orders health score 50 is below 70"
            );
            assert_eq!(next.annotations[keys::SCORE], "50");
            assert_eq!(next.fingerprint, fingerprint(&score_identity("orders")));
            let alert = to_alert(&next, AlertStatus::Firing, "http://p");
            assert_eq!(alert.labels["alertname"], SCORE_LOW);
            assert_eq!(
                (alert.generator_url.as_str(), alert.starts_at),
                ("http://p/api/v1/scores", t(2))
            );
        }
        state = Some(next);
    }
    let state = state.unwrap();
    assert_eq!((state.starts_at, state.ends_at), (Some(t(2)), Some(t(63))));
}

#[test]
fn check_names_become_one_path_segment() {
    assert_eq!(path_segment("a b/ü"), "a%20b%2F%C3%BC");
    assert_eq!(path_segment("pg-lag_1.x~"), "pg-lag_1.x~");
}
