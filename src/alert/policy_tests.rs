//! `alert:` as users write it, through the rule loader.

use std::collections::BTreeMap;

use super::*;
use crate::config::{Diagnostic, RuleSet};

fn load(alert: &str) -> Result<RuleSet, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("checks:\n  - {{name: c, kind: tcp, address: '127.0.0.1:1'{alert}}}\n");
    std::fs::write(dir.path().join("r.yaml"), yaml).unwrap();
    crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
}

fn policy_of(alert: &str) -> AlertPolicy {
    let rules = load(alert).unwrap_or_else(|d| panic!("{d:#?}"));
    AlertPolicy::of(rules.check("c").unwrap())
}

fn error_of(alert: &str) -> String {
    let diags = load(alert).expect_err("the rule file should be rejected");
    diags
        .iter()
        .map(|d| d.message.clone())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn defaults_apply_without_and_with_an_empty_alert() {
    let expected = AlertPolicy {
        failure_threshold: NonZeroU32::new(1).unwrap(),
        success_threshold: NonZeroU32::new(1).unwrap(),
        send_resolved: true,
        repeat_interval: Duration::from_secs(4 * 3600),
        flap: FlapPolicy {
            window: Duration::from_secs(1800),
            max_flips: NonZeroU32::new(6).unwrap(),
        },
    };
    assert_eq!(policy_of(""), expected);
    assert_eq!(policy_of(", alert: {}"), expected);
    assert_eq!(AlertPolicy::default(), expected);
    assert!(expected.flap.enabled());
    assert_eq!(
        (expected.flap.start_above(), expected.flap.calm_at_most()),
        (6, 3)
    );
}

#[test]
fn every_field_can_be_set() {
    let p = policy_of(
        ", alert: {failure_threshold: 3, success_threshold: 2, send_resolved: false, repeat_interval: 1h30m, flap: {window: 0s, max_flips: 4}}",
    );
    assert_eq!(
        (p.failure_threshold.get(), p.success_threshold.get()),
        (3, 2)
    );
    assert!(!p.send_resolved);
    assert_eq!(p.repeat_interval, Duration::from_secs(5400));
    assert_eq!((p.flap.window, p.flap.max_flips.get()), (Duration::ZERO, 4));
    assert!(!p.flap.enabled(), "a zero window turns flap damping off");
}

#[test]
fn mistakes_are_reported() {
    assert!(error_of(", alert: {failure_threshold: 0}").contains("nonzero"));
    assert!(error_of(", alert: {flap: {max_flips: 0}}").contains("nonzero"));
    assert!(error_of(", alert: {repeat: 1h}").contains("repeat"));
    assert!(error_of(", alert: {repeat_interval: soon}").contains("invalid duration"));
}

#[test]
fn defaults_of_a_file_carry_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "defaults: {alert: {failure_threshold: 2}}\nchecks:\n  - {name: c, kind: tcp, address: '127.0.0.1:1'}\n";
    std::fs::write(dir.path().join("r.yaml"), yaml).unwrap();
    let rules = crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let p = AlertPolicy::of(rules.check("c").unwrap());
    assert_eq!(p.failure_threshold.get(), 2);
}
