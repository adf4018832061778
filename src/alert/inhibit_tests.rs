use super::*;
use crate::config::{from_node, parse_yaml, path_text};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rule(yaml: &str) -> InhibitRule {
    from_node(&parse_yaml(yaml).unwrap(), None).unwrap()
}

const NODE_DOWN: &str = r#"
source_matchers: ['alertname="node-down"']
target_matchers: ['alertname=~"pod-.*"']
equal: [node]
"#;

#[test]
fn a_node_down_mutes_the_pod_alerts_on_that_node() {
    let rule = rule(NODE_DOWN);
    let firing = [labels(&[("alertname", "node-down"), ("node", "n1")])];
    let pod_on_n1 = labels(&[("alertname", "pod-crashloop"), ("node", "n1"), ("pod", "a")]);
    let pod_on_n2 = labels(&[("alertname", "pod-crashloop"), ("node", "n2"), ("pod", "b")]);
    let disk_on_n1 = labels(&[("alertname", "disk-full"), ("node", "n1")]);
    assert!(rule.inhibits(&pod_on_n1, &firing));
    assert!(!rule.inhibits(&pod_on_n2, &firing), "other node");
    assert!(!rule.inhibits(&disk_on_n1, &firing), "not a target");
    assert!(!rule.inhibits(&pod_on_n1, &[]), "nothing firing");
    let other_source = [labels(&[("alertname", "node-slow"), ("node", "n1")])];
    assert!(!rule.inhibits(&pod_on_n1, &other_source), "not a source");
}

#[test]
fn a_label_missing_on_both_sides_counts_as_equal() {
    let rule = rule(NODE_DOWN);
    let firing = [labels(&[("alertname", "node-down")])];
    assert!(rule.inhibits(&labels(&[("alertname", "pod-x")]), &firing));
    assert!(!rule.inhibits(&labels(&[("alertname", "pod-x"), ("node", "n1")]), &firing));
}

#[test]
fn every_equal_label_must_agree() {
    let rule = rule(
        r#"
source_matchers: ['severity="critical"']
target_matchers: ['severity="warning"']
equal: [check, series]
"#,
    );
    let crit = labels(&[
        ("severity", "critical"),
        ("check", "lag"),
        ("series", "db1"),
    ]);
    let warn_same = labels(&[("severity", "warning"), ("check", "lag"), ("series", "db1")]);
    let warn_other = labels(&[("severity", "warning"), ("check", "lag"), ("series", "db2")]);
    assert!(rule.inhibits(&warn_same, std::slice::from_ref(&crit)));
    assert!(!rule.inhibits(&warn_other, &[crit]));
}

#[test]
fn an_alert_does_not_inhibit_itself() {
    let rule = rule(
        r#"
source_matchers: ['team="sre"']
target_matchers: ['team="sre"']
"#,
    );
    let a = labels(&[("team", "sre"), ("alertname", "a")]);
    let b = labels(&[("team", "sre"), ("alertname", "b")]);
    assert!(!rule.inhibits(&a, std::slice::from_ref(&a)));
    assert!(rule.inhibits(&a, &[a.clone(), b]));
}

#[test]
fn inhibited_checks_every_rule() {
    let rules = [
        rule(NODE_DOWN),
        rule("source_matchers: ['alertname=\"dc-down\"']\ntarget_matchers: ['dc=\"fra\"']\n"),
    ];
    let target = labels(&[("alertname", "http"), ("dc", "fra")]);
    assert!(inhibited(
        &rules,
        &target,
        &[labels(&[("alertname", "dc-down")])]
    ));
    assert!(!inhibited(
        &rules,
        &target,
        &[labels(&[("alertname", "node-down")])]
    ));
}

#[test]
fn validate_reports_empty_matcher_lists_and_bad_labels() {
    let bad = rule("source_matchers: []\ntarget_matchers: []\nequal: [node, 'bad label']\n");
    let mut issues = Issues::default();
    bad.validate(&mut issues);
    let paths: Vec<String> = issues.items.iter().map(|(p, _)| path_text(p)).collect();
    assert_eq!(paths, ["source_matchers", "target_matchers", "equal[1]"]);
    let mut issues = Issues::default();
    rule(NODE_DOWN).validate(&mut issues);
    assert!(issues.is_empty());
    let node = parse_yaml("source_matchers: []\ntarget_matchers: []\nequals: []\n").unwrap();
    assert!(from_node::<InhibitRule>(&node, None).is_err());
}
