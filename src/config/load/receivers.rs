//! `receivers:` of every file: named, one namespace across files, each deserialized by its `kind`
//! and validated by its notifier; checks' `notify:` must name defined receivers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{RuleDoc, kind_of, report_unknown_keys};
use crate::alert::ReceiverSpec;
use crate::config::issues::{Diagnostic, Issues};
use crate::config::model::{Check, Origin};

/// A receiver as loaded.
#[derive(Clone, Debug)]
pub struct Receiver {
    pub name: String,
    pub spec: ReceiverSpec,
    pub origin: Origin,
}

pub(super) fn collect_receivers(
    docs: &[RuleDoc],
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Arc<Receiver>> {
    let mut receivers: BTreeMap<String, Arc<Receiver>> = BTreeMap::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    for doc in docs {
        for (k, v) in doc.map_section("receivers", diags) {
            let name = k.scalar_text().unwrap_or_default();
            if let Some(first) = seen.get(&name) {
                diags.push(doc.diag(
                    k.loc,
                    format!("receiver `{name}` is defined twice: at {first} and here"),
                ));
                continue;
            }
            seen.insert(name.clone(), doc.origin(k.loc));
            if v.as_map().is_none() {
                diags.push(doc.diag(
                    v.loc,
                    format!(
                        "receiver `{name}` must be a mapping with a kind, found {}",
                        v.type_name()
                    ),
                ));
                continue;
            }
            let Some(kind) = kind_of(doc, v, "receiver", ReceiverSpec::KINDS, diags) else {
                continue;
            };
            let Some(fields) = ReceiverSpec::fields(&kind) else {
                continue;
            };
            report_unknown_keys(
                doc,
                v,
                &[fields, &["kind"]],
                &format!("a {kind} receiver"),
                diags,
            );
            match ReceiverSpec::from_node(&kind, v) {
                Some(Ok(mut spec)) => {
                    spec.resolve_paths(doc.base_dir());
                    let mut issues = Issues::default();
                    spec.validate(&mut issues);
                    for (path, msg) in issues.items {
                        diags.push(doc.diag(v.locate(&path), msg));
                    }
                    receivers.insert(
                        name.clone(),
                        Arc::new(Receiver {
                            name,
                            spec,
                            origin: doc.origin(k.loc),
                        }),
                    );
                }
                Some(Err(e)) => diags.push(doc.diag(e.loc.unwrap_or(v.loc), e.describe())),
                None => {}
            }
        }
    }
    receivers
}

/// Every `notify:` entry of every check must name a receiver.
pub(super) fn check_notify_targets(
    docs: &[RuleDoc],
    checks: &[Arc<Check>],
    receivers: &BTreeMap<String, Arc<Receiver>>,
    diags: &mut Vec<Diagnostic>,
) {
    for check in checks {
        for (i, name) in check.common.notify.iter().enumerate() {
            if receivers.contains_key(name) {
                continue;
            }
            let Some(doc) = docs.iter().find(|d| d.file == check.origin.file) else {
                continue;
            };
            let known: Vec<&str> = receivers.keys().map(String::as_str).collect();
            let loc = locate_notify(doc, check, i).unwrap_or(check.origin.loc);
            diags.push(doc.diag(
                loc,
                format!(
                    "check `{}` notifies unknown receiver `{name}`; defined receivers: {}",
                    check.name(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
}

/// Position of the `i`th `notify:` entry of `check` in its file (defaults included).
fn locate_notify(doc: &RuleDoc, check: &Check, i: usize) -> Option<crate::config::Loc> {
    let checks = doc.section("checks")?.as_seq()?;
    let node = checks.iter().find(|c| c.loc == check.origin.loc)?;
    let list = node
        .get("notify")
        .or_else(|| doc.section("defaults")?.get("notify"))?;
    Some(list.as_seq()?.get(i).map_or(list.loc, |n| n.loc))
}
