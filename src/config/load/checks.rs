//! `checks:` of every file: `defaults` merged in, shared and kind-specific fields deserialized
//! separately (so both kinds of mistakes are reported), then validated and given their target.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::targets::TargetMap;
use super::{RuleDoc, kind_of, report_unknown_keys};
use crate::config::de::{from_node, struct_fields};
use crate::config::issues::{Diagnostic, Issues};
use crate::config::model::{Check, CheckCommon, Origin};
use crate::config::node::{Node, NodeValue};
use crate::config::target::{Target, TargetSpec};
use crate::probe::ProbeSpec;

/// Fields of `defaults:` (every shared check field except the identity of a check).
fn default_fields() -> Vec<&'static str> {
    struct_fields::<CheckCommon>()
        .iter()
        .copied()
        .filter(|f| *f != "name" && *f != "kind")
        .collect()
}

pub(super) fn collect_checks(
    docs: &[RuleDoc],
    targets: &TargetMap,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Arc<Check>> {
    let mut checks = Vec::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for doc in docs {
        let defaults = doc_defaults(doc, diags);
        let Some(list) = doc.section("checks") else {
            continue;
        };
        let Some(items) = list.as_seq() else {
            diags.push(doc.diag(
                list.loc,
                format!("`checks` must be a list, found {}", list.type_name()),
            ));
            continue;
        };
        for item in items {
            let merged = with_defaults(item, defaults);
            let Some(check) = parse_check(doc, &merged, targets, diags) else {
                continue;
            };
            let origin = check.origin.clone();
            if let Some(first) = seen.get(check.name()) {
                let loc = merged.get("name").map_or(merged.loc, |n| n.loc);
                diags.push(doc.diag(
                    loc,
                    format!(
                        "check `{}` is defined twice: at {first} and here",
                        check.name()
                    ),
                ));
                continue;
            }
            seen.insert(check.name().to_string(), origin);
            checks.push(Arc::new(check));
        }
    }
    checks
}

/// A check written outside a rule file (a drill's inline steady-state check): parsed and validated
/// like a rule file's check, its `target` resolved among the targets of `rules`.
pub fn parse_inline_check(
    file: &std::path::Path,
    node: &Node,
    rules: &crate::config::RuleSet,
) -> Result<Check, Vec<Diagnostic>> {
    let doc = RuleDoc {
        file: file.to_path_buf(),
        base_dir: file
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        root: Node::null(node.loc),
    };
    let targets: TargetMap = rules
        .targets
        .iter()
        .map(|(name, t)| {
            let origin = t.origin.clone().unwrap_or_else(|| doc.origin(node.loc));
            (name.clone(), (t.clone(), origin))
        })
        .collect();
    let mut diags = Vec::new();
    match parse_check(&doc, node, &targets, &mut diags) {
        Some(check) if diags.is_empty() => Ok(check),
        _ => Err(diags),
    }
}

fn doc_defaults<'a>(doc: &'a RuleDoc, diags: &mut Vec<Diagnostic>) -> Option<&'a Node> {
    let node = doc.section("defaults")?;
    if node.as_map().is_none() {
        diags.push(doc.diag(
            node.loc,
            format!("`defaults` must be a mapping, found {}", node.type_name()),
        ));
        return None;
    }
    report_unknown_keys(doc, node, &[&default_fields()], "defaults", diags);
    Some(node)
}

/// Fields that exclude each other; a check setting one does not inherit the others' defaults.
const ALTERNATIVES: &[&[&str]] = &[&["schedule", "every"], &["target", "url", "address"]];

/// The check's mapping with every default it does not set itself added.
fn with_defaults(item: &Node, defaults: Option<&Node>) -> Node {
    let (Some(defaults), NodeValue::Map(entries)) = (defaults.and_then(Node::as_map), &item.value)
    else {
        return item.clone();
    };
    let sets = |key: &str| {
        entries
            .iter()
            .any(|(ek, _)| ek.scalar_text().as_deref() == Some(key))
    };
    let mut merged = entries.clone();
    for (k, v) in defaults {
        let key = k.scalar_text().unwrap_or_default();
        // A check that sets one of a group of alternatives overrides the default of the others too:
        // `schedule` beats a default `every`, an inline `url` beats a default `target`.
        let group = ALTERNATIVES
            .iter()
            .find(|g| g.contains(&key.as_str()))
            .copied()
            .unwrap_or(&[]);
        if !sets(&key) && !group.iter().any(|alt| sets(alt)) {
            merged.push((k.clone(), v.clone()));
        }
    }
    Node::new(NodeValue::Map(merged), item.loc)
}

fn parse_check(
    doc: &RuleDoc,
    node: &Node,
    targets: &TargetMap,
    diags: &mut Vec<Diagnostic>,
) -> Option<Check> {
    if node.as_map().is_none() {
        diags.push(doc.diag(
            node.loc,
            format!("a check must be a mapping, found {}", node.type_name()),
        ));
        return None;
    }
    let kind = kind_of(doc, node, "check", ProbeSpec::KINDS, diags)?;
    let own = ProbeSpec::fields(&kind)?;
    let shared = struct_fields::<CheckCommon>();
    report_unknown_keys(doc, node, &[shared, own], &format!("a {kind} check"), diags);
    let common = from_node::<CheckCommon>(node, Some(shared));
    let probe = ProbeSpec::from_node(&kind, node)?;
    let (common, probe) = match (common, probe) {
        (Ok(c), Ok(p)) => (c, p),
        (c, p) => {
            for e in [c.err(), p.err()].into_iter().flatten() {
                diags.push(doc.diag(e.loc.unwrap_or(node.loc), e.describe()));
            }
            return None;
        }
    };
    let mut issues = Issues::default();
    validate_common(&common, &mut issues);
    probe.validate(&common, &mut issues);
    let target = resolve_target(&common, &kind, targets, &doc.origin(node.loc), &mut issues);
    for (path, msg) in issues.items {
        diags.push(doc.diag(node.locate(&path), msg));
    }
    let measured: Vec<&str> = own
        .iter()
        .copied()
        .chain(["kind", "target", "url", "address"])
        .collect();
    Some(Check {
        common,
        probe,
        target: target?,
        origin: doc.origin(node.loc),
        measure_fingerprint: node.fingerprint(Some(&measured)),
        config_fingerprint: node.fingerprint(None),
    })
}

fn validate_common(c: &CheckCommon, issues: &mut Issues) {
    if c.name.trim().is_empty() {
        issues.at(&["name"], "name is empty");
    }
    if let Some(expr) = &c.schedule {
        if let Err(e) = crate::schedule::parse_cron(expr) {
            issues.at(&["schedule"], e);
        }
        if c.every.is_some() {
            issues.at(&["every"], "set either `schedule` or `every`, not both");
        }
    }
    if let Some(tz) = &c.timezone {
        if let Err(e) = crate::schedule::parse_timezone(tz) {
            issues.at(&["timezone"], e);
        }
        if c.schedule.is_none() {
            issues.at_key(
                &["timezone"],
                "`timezone` applies to a cron `schedule`; this check has none",
            );
        }
    }
    if c.every.is_some_and(|d| d.is_zero()) {
        issues.at(&["every"], "every must be longer than zero");
    }
    if c.timeout.is_zero() {
        issues.at(&["timeout"], "timeout must be longer than zero");
    }
    if !(c.weight.is_finite() && c.weight >= 0.0) {
        issues.at(
            &["weight"],
            format!("weight must be a non-negative number, got {}", c.weight),
        );
    }
    issues.condition(&["warn"], c.warn.as_ref());
    issues.condition(&["crit"], c.crit.as_ref());
    if let Some(b) = &c.baseline {
        for (field, msg) in b.problems() {
            issues.at(&["baseline", field], msg);
        }
    }
}

/// The check's target: named, or made from an inline `url`/`address`. `Some(None)` when the kind
/// needs none; `None` when there is a problem (reported).
/// An inline target gets the check's `origin`.
fn resolve_target(
    c: &CheckCommon,
    kind: &str,
    targets: &TargetMap,
    origin: &Origin,
    issues: &mut Issues,
) -> Option<Option<Arc<Target>>> {
    let accepted = ProbeSpec::target_kinds(kind);
    let inline = c
        .url
        .as_ref()
        .map(|u| ("url", u))
        .or(c.address.as_ref().map(|a| ("address", a)));
    match (&c.target, inline) {
        (Some(_), Some((field, _))) => {
            issues.at_key(
                &[field],
                format!("set either `target` or `{field}`, not both"),
            );
            None
        }
        (Some(name), None) => {
            let Some((t, _)) = targets.get(name) else {
                let known: Vec<&str> = targets.keys().map(String::as_str).collect();
                issues.at(
                    &["target"],
                    format!(
                        "unknown target `{name}`; defined targets: {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                return None;
            };
            if !accepted.contains(&t.kind()) {
                issues.at(
                    &["target"],
                    format!(
                        "a {kind} check cannot use target `{name}` of kind {}; {}",
                        t.kind(),
                        what_it_needs(accepted)
                    ),
                );
                return None;
            }
            Some(Some(t.clone()))
        }
        (None, Some((field, value))) => {
            let spec = if field == "address" {
                Some(TargetSpec::Tcp(crate::config::target::TcpTarget {
                    address: value.clone(),
                }))
            } else {
                TargetSpec::from_url(value)
            };
            match spec {
                Some(s) if accepted.contains(&s.kind()) => Some(Some(Arc::new(Target {
                    name: {
                        s.register_url_password();
                        // Results name an inline target by its URL, without credentials.
                        crate::secrets::scrub_url_credentials(value)
                    },
                    spec: s,
                    base_dir: PathBuf::new(),
                    origin: Some(origin.clone()),
                }))),
                _ => {
                    issues.at(
                        &[field],
                        format!(
                            "a {kind} check cannot use this {field}; {}",
                            what_it_needs(accepted)
                        ),
                    );
                    None
                }
            }
        }
        (None, None) if accepted.is_empty() || kind == "http" => Some(None),
        (None, None) => {
            issues.at(
                &["kind"],
                format!("a {kind} check needs a `target` (or an inline url/address)"),
            );
            None
        }
    }
}

/// The target kinds a check kind takes, in words (`exec` takes none).
fn what_it_needs(accepted: &[&str]) -> String {
    match accepted {
        [] => "it takes no target".into(),
        _ => format!("it needs one of: {}", accepted.join(", ")),
    }
}
