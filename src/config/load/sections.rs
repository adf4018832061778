//! `suites:` and `services:` of every file: named, one namespace across files, validated against
//! the checks they refer to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::RuleDoc;
use crate::config::de::from_node;
use crate::config::issues::{Diagnostic, Issues};
use crate::config::model::{Check, Origin};
use crate::config::node::Node;
use crate::config::service::{ScoreModel, ServiceConfig};
use crate::config::suite::Suite;

/// Every entry of the mapping section `key` across files, deserialized as `T`, duplicates reported.
fn named<T: serde::de::DeserializeOwned>(
    docs: &[RuleDoc],
    key: &str,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, T, Node, usize)> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for (i, doc) in docs.iter().enumerate() {
        for (k, v) in doc.map_section(key, diags) {
            let name = k.scalar_text().unwrap_or_default();
            if let Some(first) = seen.get(&name) {
                diags.push(doc.diag(
                    k.loc,
                    format!("{what} `{name}` is defined twice: at {first} and here"),
                ));
                continue;
            }
            seen.insert(name.clone(), doc.origin(k.loc));
            match from_node::<T>(v, None) {
                Ok(t) => out.push((name, t, v.clone(), i)),
                Err(e) => diags.push(doc.diag(e.loc.unwrap_or(v.loc), e.describe())),
            }
        }
    }
    out
}

fn report(doc: &RuleDoc, node: &Node, issues: Issues, diags: &mut Vec<Diagnostic>) {
    for (path, msg) in issues.items {
        diags.push(doc.diag(node.locate(&path), msg));
    }
}

pub(super) fn collect_suites(
    docs: &[RuleDoc],
    checks: &[Arc<Check>],
    receivers: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Suite> {
    let mut suites = BTreeMap::new();
    for (name, suite, node, doc) in named::<Suite>(docs, "suites", "suite", diags) {
        let mut issues = Issues::default();
        if let Err(e) = crate::schedule::parse_cron(&suite.schedule) {
            issues.at(&["schedule"], e);
        }
        if let Some(tz) = &suite.timezone
            && let Err(e) = crate::schedule::parse_timezone(tz)
        {
            issues.at(&["timezone"], e);
        }
        for (i, wanted) in suite.select.checks.iter().enumerate() {
            if !checks.iter().any(|c| c.name() == wanted) {
                let path = ["select".to_string(), "checks".to_string()];
                issues.items.push((
                    path.iter()
                        .map(|s| crate::config::PathSeg::key(s.clone()))
                        .chain([crate::config::PathSeg::Index(i)])
                        .collect(),
                    format!("suite `{name}` selects unknown check `{wanted}`"),
                ));
            }
        }
        for (i, receiver) in suite.notify.iter().enumerate() {
            if !receivers.contains(&receiver.as_str()) {
                issues.items.push((
                    vec![
                        crate::config::PathSeg::key("notify"),
                        crate::config::PathSeg::Index(i),
                    ],
                    format!(
                        "suite `{name}` notifies unknown receiver `{receiver}`; defined receivers: {}",
                        if receivers.is_empty() {
                            "none".to_string()
                        } else {
                            receivers.join(", ")
                        }
                    ),
                ));
            }
        }
        if issues.is_empty() && !checks.iter().any(|c| suite.select.matches(c)) {
            issues.at_key(&["select"], format!("suite `{name}` selects no checks"));
        }
        report(&docs[doc], &node, issues, diags);
        suites.insert(name, suite);
    }
    suites
}

pub(super) fn collect_services(
    docs: &[RuleDoc],
    checks: &[Arc<Check>],
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, ServiceConfig> {
    let mut services = BTreeMap::new();
    for (name, service, node, doc) in named::<ServiceConfig>(docs, "services", "service", diags) {
        let mut issues = Issues::default();
        match service.model {
            ScoreModel::Weighted if service.components.is_empty() => {
                issues.at_key(
                    &["model"],
                    format!("service `{name}` uses the weighted model but lists no components"),
                );
            }
            ScoreModel::Penalty if !service.components.is_empty() => {
                issues.at_key(&["components"], "components belong to `model: weighted`; the penalty model takes its weights from the checks");
            }
            _ => {}
        }
        for (i, c) in service.components.iter().enumerate() {
            let at = |field: &str| {
                vec![
                    crate::config::PathSeg::key("components"),
                    crate::config::PathSeg::Index(i),
                    crate::config::PathSeg::key(field),
                ]
            };
            if !checks.iter().any(|k| k.name() == c.check) {
                issues
                    .items
                    .push((at("check"), format!("unknown check `{}`", c.check)));
            }
            if let Some(e) = c.normalize.error() {
                issues.items.push((at("normalize"), e.to_string()));
            }
            if !c.weight.is_finite() {
                issues
                    .items
                    .push((at("weight"), "weight must be a number".into()));
            }
        }
        if let Some(low) = &service.low_score {
            if !(low.below > 0.0 && low.below <= 100.0) {
                issues.at(
                    &["low_score", "below"],
                    format!("below must be in (0, 100], got {}", low.below),
                );
            }
            if low.times == 0 {
                issues.at(&["low_score", "times"], "times must be at least 1");
            }
        }
        report(&docs[doc], &node, issues, diags);
        services.insert(name, service);
    }
    services
}

/// The items of the list section `key` of every file, each deserialized as `T` and validated by
/// `check` (paths relative to the item).
fn listed<T: serde::de::DeserializeOwned>(
    docs: &[RuleDoc],
    key: &str,
    diags: &mut Vec<Diagnostic>,
    check: impl Fn(&T, &mut Issues),
) -> Vec<T> {
    let mut out = Vec::new();
    for doc in docs {
        let Some(section) = doc.section(key) else {
            continue;
        };
        let Some(items) = section.as_seq() else {
            diags.push(doc.diag(
                section.loc,
                format!("`{key}` must be a list, found {}", section.type_name()),
            ));
            continue;
        };
        for item in items {
            match from_node::<T>(item, None) {
                Ok(t) => {
                    let mut issues = Issues::default();
                    check(&t, &mut issues);
                    report(doc, item, issues, diags);
                    out.push(t);
                }
                Err(e) => diags.push(doc.diag(e.loc.unwrap_or(item.loc), e.describe())),
            }
        }
    }
    out
}

/// `routes:` (a list of top-level routes), validated against the defined receivers.
pub(super) fn collect_routes(
    docs: &[RuleDoc],
    receivers: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Vec<crate::alert::route::Route> {
    listed(
        docs,
        "routes",
        diags,
        |r: &crate::alert::route::Route, issues| r.validate(receivers, issues),
    )
}

/// `maintenance:` windows; names are unique across files.
pub(super) fn collect_maintenance(
    docs: &[RuleDoc],
    diags: &mut Vec<Diagnostic>,
) -> Vec<crate::alert::maintenance::MaintenanceWindow> {
    let windows = listed(
        docs,
        "maintenance",
        diags,
        |w: &crate::alert::maintenance::MaintenanceWindow, issues| w.validate(issues),
    );
    let mut seen = std::collections::HashSet::new();
    for w in &windows {
        if !seen.insert(w.name.clone())
            && let Some((doc, loc)) = maintenance_name_loc(docs, &w.name)
        {
            diags.push(doc.diag(
                loc,
                format!("maintenance window `{}` is defined twice", w.name),
            ));
        }
    }
    windows
}

/// Where the last maintenance window called `name` is written.
fn maintenance_name_loc<'a>(
    docs: &'a [RuleDoc],
    name: &str,
) -> Option<(&'a RuleDoc, crate::config::Loc)> {
    docs.iter()
        .flat_map(|d| {
            d.section("maintenance")
                .and_then(Node::as_seq)
                .unwrap_or(&[])
                .iter()
                .map(move |n| (d, n))
        })
        .rfind(|(_, n)| n.get("name").and_then(Node::as_str) == Some(name))
        .map(|(d, n)| (d, n.get("name").map_or(n.loc, |v| v.loc)))
}

/// `inhibit_rules:`.
pub(super) fn collect_inhibit_rules(
    docs: &[RuleDoc],
    diags: &mut Vec<Diagnostic>,
) -> Vec<crate::alert::inhibit::InhibitRule> {
    listed(
        docs,
        "inhibit_rules",
        diags,
        |r: &crate::alert::inhibit::InhibitRule, issues| r.validate(issues),
    )
}

/// `playbooks:` — set in one file at most (two files disagreeing on `enabled` would be a trap);
/// `dir` is resolved against that file's directory, `notify` checked against the receivers.
pub(super) fn collect_playbooks(
    docs: &[RuleDoc],
    receivers: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> crate::config::PlaybooksConfig {
    let mut found: Option<(crate::config::PlaybooksConfig, Origin)> = None;
    for doc in docs {
        let Some(node) = doc.section("playbooks") else {
            continue;
        };
        if let Some((_, first)) = &found {
            diags.push(doc.diag(
                node.loc,
                format!("`playbooks:` is set twice: at {first} and here"),
            ));
            continue;
        }
        let mut config = match from_node::<crate::config::PlaybooksConfig>(node, None) {
            Ok(c) => c,
            Err(e) => {
                diags.push(doc.diag(e.loc.unwrap_or(node.loc), e.describe()));
                continue;
            }
        };
        let mut issues = Issues::default();
        for (i, name) in config.notify.iter().enumerate() {
            if !receivers.contains(&name.as_str()) {
                issues.items.push((
                    vec![
                        crate::config::PathSeg::key("notify"),
                        crate::config::PathSeg::Index(i),
                    ],
                    format!("unknown receiver `{name}`"),
                ));
            }
        }
        report(doc, node, issues, diags);
        if let Some(dir) = &config.dir
            && dir.is_relative()
        {
            config.dir = Some(doc.base_dir().join(dir));
        }
        found = Some((config, doc.origin(node.loc)));
    }
    found.map(|(c, _)| c).unwrap_or_default()
}
