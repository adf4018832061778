//! Reading a drill file: parse → substitute `${…}` (with the rules' `vars:`) → each section
//! deserialized on its own → cross-checks (checks, proxies, services, timeline). Every problem is
//! collected as `file:line:col: error: message`; a drill is only returned when there are none.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::sections::{read_abort_when, read_verify};
use super::spec::{
    DEFAULT_DRAIN, DEFAULT_PROBE_INTERVAL, Drill, RecoveryFrom, RollbackStep, SteadyCheck,
    Tolerance, Workload,
};
use super::timeline::{read_faults, validate_timeline};
use crate::chaos::proxy::ProxySpec;
use crate::chaos::workload::{HttpWorkloadSpec, SseWorkloadSpec};
use crate::config::{
    Diagnostic, DocReader, Env, Issues, Node, NodeValue, RuleSet, from_node, parse_inline_check,
};

/// Top-level keys of a drill file.
pub const TOP_LEVEL: &[&str] = &[
    "kind",
    "name",
    "description",
    "steady_state",
    "workload",
    "proxies",
    "faults",
    "abort_when",
    "verify",
    "recovery",
    "rollback",
    "drain",
    "probe_interval",
];

/// Whether a parsed document is a drill (`kind: drill`).
pub fn is_drill(root: &Node) -> bool {
    root.get("kind").and_then(Node::as_str) == Some("drill")
}

/// Reads and validates the drill in `file` against `rules`, with the process environment.
pub fn read_drill(file: &Path, rules: &RuleSet) -> Result<Drill, Vec<Diagnostic>> {
    let root = crate::config::read_kind_document(file, "drill")?;
    load_drill(file, root, Some(rules), &crate::config::ProcessEnv)
}

/// Validates one drill document. Without `rules` (the rule files themselves are invalid), the
/// references to checks and services are not verified: the rules' own problems are reported.
pub fn load_drill(
    file: &Path,
    mut root: Node,
    rules: Option<&RuleSet>,
    env: &dyn Env,
) -> Result<Drill, Vec<Diagnostic>> {
    let mut r = Reader::new(file, rules.is_some());
    let empty;
    let rules = match rules {
        Some(rules) => rules,
        None => {
            empty = empty_rules();
            &empty
        }
    };
    if root.as_map().is_none() {
        r.at(
            root.loc,
            format!("a drill is a mapping, found {}", root.type_name()),
        );
        return Err(r.doc.diags);
    }
    r.substitute(&mut root, rules, env);
    r.unknown_keys(&root, TOP_LEVEL, "a drill");
    let name = r.name(&root);
    let description = r.typed::<Option<String>>(&root, "description").flatten();
    let steady_state = r.steady_state(&root, rules);
    let workload = r.workload(&root);
    let proxies = r.proxies(&root);
    let faults = read_faults(&mut r, &root, &proxies, rules);
    let abort_when = read_abort_when(&mut r, &root, rules, &workload, &steady_state);
    let verify = read_verify(
        &mut r,
        &root,
        rules,
        &workload,
        &steady_state,
        !faults.is_empty(),
    );
    let recovery = r
        .typed::<Option<RecoveryFrom>>(&root, "recovery")
        .flatten()
        .unwrap_or_default();
    let rollback = r.rollback(&root);
    let drain = r.duration(&root, "drain", DEFAULT_DRAIN, true);
    let probe_interval = r.duration(&root, "probe_interval", DEFAULT_PROBE_INTERVAL, false);
    validate_timeline(&mut r, &root, &faults, &abort_when);
    if !r.diags.is_empty() {
        r.diags.sort();
        r.diags.dedup();
        return Err(r.doc.diags);
    }
    Ok(Drill {
        name: name.unwrap_or_default(),
        description,
        file: file.to_path_buf(),
        rules: Arc::new(rules.clone()),
        steady_state,
        workload,
        proxies,
        faults,
        abort_when,
        verify,
        recovery,
        rollback,
        drain,
        probe_interval,
    })
}

/// The rules of nothing: what a drill is validated against when the rule files are broken.
fn empty_rules() -> RuleSet {
    crate::config::load(&[]).unwrap_or_else(|_| unreachable!("no files, no problems"))
}

/// Collects the problems of one drill file.
pub(super) struct Reader<'a> {
    pub doc: DocReader<'a>,
    /// Whether references to checks and services can be verified.
    pub resolve: bool,
}

impl<'a> std::ops::Deref for Reader<'a> {
    type Target = DocReader<'a>;
    fn deref(&self) -> &DocReader<'a> {
        &self.doc
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.doc
    }
}

impl<'a> Reader<'a> {
    fn new(file: &'a Path, resolve: bool) -> Reader<'a> {
        Reader {
            doc: DocReader::new(file),
            resolve,
        }
    }

    /// `name:` names the report files, so it is kept to characters safe in a file name.
    fn name(&mut self, root: &Node) -> Option<String> {
        self.safe_name(root, "drill", " (it names the report files)")
    }

    fn steady_state(&mut self, root: &Node, rules: &RuleSet) -> Vec<SteadyCheck> {
        let mut out: Vec<SteadyCheck> = Vec::new();
        for item in self.list(root, "steady_state") {
            let Some(entry) = self.steady_entry(item, rules) else {
                continue;
            };
            if out.iter().any(|s| s.check.name() == entry.check.name()) {
                let loc = item
                    .get("check")
                    .or(item.get("name"))
                    .map_or(item.loc, |n| n.loc);
                self.at(
                    loc,
                    format!(
                        "check `{}` is in the steady state twice",
                        entry.check.name()
                    ),
                );
                continue;
            }
            out.push(entry);
        }
        out
    }

    /// `{check: NAME, tolerance: ok|warn}` or an inline check (a mapping with `kind:`).
    fn steady_entry(&mut self, item: &Node, rules: &RuleSet) -> Option<SteadyCheck> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Named {
            check: String,
            #[serde(default)]
            tolerance: Tolerance,
        }
        if item.get("check").is_some() {
            let named: Named = self.value(item)?;
            let Some(check) = rules.check(&named.check) else {
                if self.resolve {
                    let loc = item.get("check").map_or(item.loc, |n| n.loc);
                    self.at(loc, unknown_check(&named.check, rules));
                }
                return None;
            };
            return Some(SteadyCheck {
                check: check.clone(),
                tolerance: named.tolerance,
                inline: false,
            });
        }
        if item.get("kind").is_none() {
            self.at(
                item.loc,
                "a steady-state entry is `{check: NAME}` (a check of the rules) or an inline check with `name` and `kind`",
            );
            return None;
        }
        #[derive(Deserialize)]
        struct Tolerated {
            #[serde(default)]
            tolerance: Tolerance,
        }
        let tolerance = match from_node::<Tolerated>(item, Some(&["tolerance"])) {
            Ok(t) => t.tolerance,
            Err(e) => {
                self.de_error(e, item.loc);
                Tolerance::default()
            }
        };
        let check = match parse_inline_check(self.file, &without_key(item, "tolerance"), rules) {
            Ok(c) => c,
            Err(diags) => {
                self.diags.extend(diags);
                return None;
            }
        };
        if rules.check(check.name()).is_some() && self.resolve {
            let loc = item.get("name").map_or(item.loc, |n| n.loc);
            self.at(
                loc,
                format!(
                    "inline check `{}` has the name of a check of the rules; name it differently or write `{{check: {}}}`",
                    check.name(),
                    check.name()
                ),
            );
            return None;
        }
        Some(SteadyCheck {
            check: Arc::new(check),
            tolerance,
            inline: true,
        })
    }

    fn rollback(&mut self, root: &Node) -> Vec<RollbackStep> {
        let mut out = Vec::new();
        for item in self.list(root, "rollback") {
            let Some(step) = self.value::<RollbackStep>(item) else {
                continue;
            };
            let mut issues = Issues::default();
            step.command.validate("command", step.shell, &mut issues);
            if step.timeout.is_zero() {
                issues.at(&["timeout"], "timeout must be above 0s");
            }
            self.issues(item, issues);
            out.push(step);
        }
        out
    }

    fn workload(&mut self, root: &Node) -> Workload {
        let Some(node) = root.get("workload").filter(|n| !n.is_null()) else {
            return Workload::default();
        };
        if node.as_map().is_none() {
            self.at(
                node.loc,
                format!(
                    "`workload` must be a mapping with `sse` and/or `http`, found {}",
                    node.type_name()
                ),
            );
            return Workload::default();
        }
        self.unknown_keys(node, &["sse", "http"], "workload");
        let sse = self.typed::<SseWorkloadSpec>(node, "sse");
        let http = self.typed::<HttpWorkloadSpec>(node, "http");
        if let (Some(spec), Some(at)) = (&sse, node.get("sse")) {
            let mut issues = Issues::default();
            spec.validate(&mut issues);
            self.issues(at, issues);
        }
        if let (Some(spec), Some(at)) = (&http, node.get("http")) {
            let mut issues = Issues::default();
            spec.validate(&mut issues);
            self.issues(at, issues);
        }
        let workload = Workload { sse, http };
        if node.get("sse").is_none() && node.get("http").is_none() {
            self.at(node.loc, "`workload` needs `sse` and/or `http`");
        }
        workload
    }

    fn proxies(&mut self, root: &Node) -> Vec<ProxySpec> {
        let mut out: Vec<ProxySpec> = Vec::new();
        for item in self.list(root, "proxies") {
            let Some(spec) = self.value::<ProxySpec>(item) else {
                continue;
            };
            if out.iter().any(|p| p.name == spec.name) {
                let loc = item.get("name").map_or(item.loc, |n| n.loc);
                self.at(loc, format!("proxy `{}` is declared twice", spec.name));
                continue;
            }
            out.push(spec);
        }
        out
    }
}

/// "unknown check `x`; checks of the rules: a, b".
pub(super) fn unknown_check(name: &str, rules: &RuleSet) -> String {
    let known: Vec<&str> = rules.checks.iter().map(|c| c.name()).collect();
    format!(
        "unknown check `{name}`; checks of the rules: {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// `node` (a mapping) without the entry `key`.
fn without_key(node: &Node, key: &str) -> Node {
    match &node.value {
        NodeValue::Map(entries) => Node::new(
            NodeValue::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k.scalar_text().as_deref() != Some(key))
                    .cloned()
                    .collect(),
            ),
            node.loc,
        ),
        _ => node.clone(),
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
