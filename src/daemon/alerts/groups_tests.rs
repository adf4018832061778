use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::alert::lifecycle::{self, AlertState, Phase};

const RULES: &str = r#"
receivers:
  team: {kind: webhook, url: "http://127.0.0.1:9/hook"}
  pager: {kind: webhook, url: "http://127.0.0.1:9/pager"}
routes:
  - receiver: team
    group_by: [service]
    group_wait: 10s
    group_interval: 1m
    repeat_interval: 2h
services:
  orders: {low_score: {below: 70, times: 2}}
checks:
  - {name: api, kind: tcp, address: '127.0.0.1:1', service: orders, notify: [pager]}
  - {name: dark, kind: tcp, address: '127.0.0.1:1', service: orders, mode: shadow}
"#;

fn rules() -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), RULES).unwrap();
    crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

/// A firing alert of `check` in service orders, told about at `told`.
fn firing(check: &str, told: Option<DateTime<Utc>>) -> AlertState {
    let mut labels = lifecycle::identity_labels(check, "");
    labels.insert("check".into(), check.into());
    labels.insert("service".into(), "orders".into());
    let mut s = AlertState::new(lifecycle::fingerprint(&labels), labels, t(0));
    s.phase = Phase::Firing;
    s.last_notified_at = told;
    s
}

#[test]
fn an_alert_goes_to_its_routes_groups_and_its_checks_notify_receivers() {
    let rules = rules();
    let sources = Sources::new(&rules);
    let got = sources.destinations(&firing("api", None).labels);
    let ids: Vec<&GroupId> = got.iter().map(|d| &d.id).collect();
    assert_eq!(
        ids,
        [
            &(
                "team".to_string(),
                "team/{}/{}:{service=\"orders\"}".to_string()
            ),
            &(
                "pager".to_string(),
                "notify:pager/{check=\"api\"}".to_string()
            ),
        ]
    );
    assert_eq!(
        got[0].timing,
        GroupTiming {
            wait: Duration::from_secs(10),
            interval: Duration::from_secs(60),
            repeat: Some(Duration::from_secs(7200)),
        }
    );
    assert_eq!(
        got[1].timing.repeat, None,
        "notify: has no route to repeat it"
    );
}

#[test]
fn members_are_announced_firing_alerts_of_sources_that_still_notify() {
    let rules = rules();
    let sources = Sources::new(&rules);
    assert!(sources.announced(&firing("api", Some(t(0)))));
    assert!(
        !sources.announced(&firing("api", None)),
        "receivers never heard of it"
    );
    assert!(
        !sources.announced(&firing("dark", Some(t(0)))),
        "shadow checks never notify"
    );
    assert!(
        !sources.announced(&firing("removed", Some(t(0)))),
        "check gone"
    );
    let mut resolved = firing("api", Some(t(0)));
    resolved.phase = Phase::Inactive;
    assert!(!sources.announced(&resolved));

    let labels = lifecycle::score_identity("orders");
    let mut score = AlertState::new(lifecycle::fingerprint(&labels), labels, t(0));
    score.phase = Phase::Firing;
    score.last_notified_at = Some(t(0));
    assert_eq!(sources.policy_of(&score), Some(AlertPolicy::default()));
    assert!(sources.announced(&score));
    score.labels.insert("service".into(), "billing".into());
    assert!(!sources.announced(&score), "no low_score rule for billing");
}

#[test]
fn slots_wait_for_news_keep_the_interval_and_repeat_at_once() {
    let timing = GroupTiming {
        wait: Duration::from_secs(10),
        interval: Duration::from_secs(60),
        repeat: Some(Duration::from_secs(7200)),
    };
    assert_eq!(
        next_slot(None, timing, t(0), true),
        t(10),
        "a new group waits"
    );
    assert_eq!(
        next_slot(Some(t(10)), timing, t(5), true),
        t(10),
        "joins the waiting one"
    );
    assert_eq!(
        next_slot(Some(t(10)), timing, t(30), true),
        t(70),
        "an interval after the previous"
    );
    assert_eq!(next_slot(Some(t(10)), timing, t(500), true), t(510));
    assert_eq!(
        next_slot(Some(t(10)), timing, t(7210), false),
        t(7210),
        "a repeat goes at once"
    );
    assert_eq!(next_slot(None, timing, t(7210), false), t(7210));
}

#[test]
fn a_group_repeats_its_routes_repeat_interval_after_its_last_notification() {
    let timing = GroupTiming {
        repeat: Some(Duration::from_secs(7200)),
        ..GroupTiming::default()
    };
    assert_eq!(repeat_due_at(t(10), timing), Some(t(7210)));
    assert_eq!(repeat_due_at(t(10), GroupTiming::default()), None);
}
