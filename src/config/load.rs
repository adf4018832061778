//! Loading rule files: discover → parse → substitute → deserialize each target and check on its
//! own → validate. Every problem is collected with its file, line and column; a rule set is only
//! returned when there are none, so an invalid file can never replace a good configuration.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::de::{from_node, struct_fields};
use super::issues::{Diagnostic, Issues};
use super::model::{Check, CheckCommon, Origin};
use super::node::{Loc, Node, NodeValue, parse_yaml};
use super::revision::Revision;
use super::subst::{Env, ProcessEnv, Substituter};
use super::target::{Target, TargetSpec};
use crate::probe::ProbeSpec;

/// Top-level keys of a rule file.
const TOP_LEVEL: &[&str] = &["vars", "targets", "defaults", "checks"];

/// Documents handled by other commands (`kind: playbook`, `kind: drill`), not rule files.
const OTHER_DOCUMENTS: &[&str] = &["playbook", "drill"];

/// Everything loaded from a rules directory.
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub targets: BTreeMap<String, Arc<Target>>,
    pub checks: Vec<Arc<Check>>,
    pub vars: BTreeMap<String, String>,
    pub revision: Revision,
    pub files: Vec<PathBuf>,
}

impl RuleSet {
    pub fn check(&self, name: &str) -> Option<&Arc<Check>> {
        self.checks.iter().find(|c| c.name() == name)
    }
}

/// Loads every `*.yaml`/`*.yml` below `paths` (files or directories) with the process environment.
pub fn load(paths: &[PathBuf]) -> Result<RuleSet, Vec<Diagnostic>> {
    load_with_env(paths, &ProcessEnv)
}

pub fn load_with_env(paths: &[PathBuf], env: &dyn Env) -> Result<RuleSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let files = discover(paths, &mut diags);
    let mut docs = Vec::new();
    let mut sources = Vec::new();
    for file in &files {
        match std::fs::read(file) {
            Ok(bytes) => {
                sources.push((file.clone(), bytes.clone()));
                let text = String::from_utf8_lossy(&bytes);
                match parse_yaml(&text) {
                    Ok(node) => {
                        if let Some(doc) = RuleDoc::new(file, node, &mut diags) {
                            docs.push(doc);
                        }
                    }
                    Err(e) => diags.push(Diagnostic::new(file, e.loc, e.message)),
                }
            }
            Err(e) => diags.push(Diagnostic::new(
                file,
                Loc { line: 1, col: 1 },
                format!("cannot read: {e}"),
            )),
        }
    }
    let vars = collect_vars(&mut docs, env, &mut diags);
    for doc in &mut docs {
        doc.substitute(env, &vars, &mut diags);
    }
    let targets = collect_targets(&docs, &mut diags);
    let checks = collect_checks(&docs, &targets, &mut diags);
    if !diags.is_empty() {
        diags.sort();
        diags.dedup();
        return Err(diags);
    }
    Ok(RuleSet {
        targets: targets.into_iter().map(|(k, (t, _))| (k, t)).collect(),
        checks,
        vars,
        revision: Revision::of(paths, &sources),
        files,
    })
}

/// All rule files below `paths`, sorted, so the merge order (and the revision) is stable.
fn discover(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            diags.push(Diagnostic::new(
                p,
                Loc { line: 1, col: 1 },
                "no such file or directory",
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// One parsed rule file.
struct RuleDoc {
    file: PathBuf,
    root: Node,
}

impl RuleDoc {
    fn new(file: &Path, root: Node, diags: &mut Vec<Diagnostic>) -> Option<RuleDoc> {
        match &root.value {
            NodeValue::Null => return None,
            NodeValue::Map(entries) => {
                if let Some(kind) = root.get("kind").and_then(Node::as_str)
                    && OTHER_DOCUMENTS.contains(&kind)
                {
                    return None;
                }
                for (k, _) in entries {
                    let name = k.scalar_text().unwrap_or_default();
                    if !TOP_LEVEL.contains(&name.as_str()) {
                        diags.push(Diagnostic::new(
                            file,
                            k.loc,
                            format!(
                                "unknown top-level key `{name}`; expected one of {}",
                                TOP_LEVEL.join(", ")
                            ),
                        ));
                    }
                }
            }
            _ => {
                diags.push(Diagnostic::new(
                    file,
                    root.loc,
                    format!(
                        "a rule file is a mapping with {}, found {}",
                        TOP_LEVEL.join(", "),
                        root.type_name()
                    ),
                ));
                return None;
            }
        }
        Some(RuleDoc {
            file: file.to_path_buf(),
            root,
        })
    }

    fn section(&self, key: &str) -> Option<&Node> {
        self.root.get(key).filter(|n| !n.is_null())
    }

    fn origin(&self, loc: Loc) -> Origin {
        Origin {
            file: self.file.clone(),
            loc,
        }
    }

    fn diag(&self, loc: Loc, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, loc, msg)
    }

    /// A section that must be a mapping, or a diagnostic.
    fn map_section(&self, key: &str, diags: &mut Vec<Diagnostic>) -> &[(Node, Node)] {
        match self.section(key) {
            None => &[],
            Some(n) => n.as_map().unwrap_or_else(|| {
                diags.push(self.diag(
                    n.loc,
                    format!("`{key}` must be a mapping, found {}", n.type_name()),
                ));
                &[]
            }),
        }
    }

    fn substitute(
        &mut self,
        env: &dyn Env,
        vars: &BTreeMap<String, String>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let base_dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let sub = Substituter {
            env,
            vars,
            base_dir: &base_dir,
        };
        let mut errors = Vec::new();
        if let NodeValue::Map(entries) = &mut self.root.value {
            for (k, v) in entries.iter_mut() {
                if k.as_str() != Some("vars") {
                    sub.apply(v, &mut errors);
                }
            }
        }
        diags.extend(errors.into_iter().map(|e| self.diag(e.loc, e.message)));
    }
}

/// `vars:` of every file, substituted from the environment (vars may not reference vars).
fn collect_vars(
    docs: &mut [RuleDoc],
    env: &dyn Env,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let no_vars = BTreeMap::new();
    for doc in docs.iter() {
        let base_dir = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let sub = Substituter {
            env,
            vars: &no_vars,
            base_dir: &base_dir,
        };
        for (k, v) in doc.map_section("vars", diags) {
            let name = k.scalar_text().unwrap_or_default();
            let here = doc.origin(k.loc);
            if let Some(first) = seen.get(&name) {
                diags.push(doc.diag(
                    k.loc,
                    format!("var `{name}` is defined twice: at {first} and here"),
                ));
                continue;
            }
            seen.insert(name.clone(), here);
            let Some(text) = v.scalar_text() else {
                diags.push(doc.diag(
                    v.loc,
                    format!("var `{name}` must be a string, found {}", v.type_name()),
                ));
                continue;
            };
            match sub.expand(&text) {
                Ok(val) => {
                    vars.insert(name, val);
                }
                Err(e) => diags.push(doc.diag(v.loc, e)),
            }
        }
    }
    vars
}

type TargetMap = BTreeMap<String, (Arc<Target>, Origin)>;

fn collect_targets(docs: &[RuleDoc], diags: &mut Vec<Diagnostic>) -> TargetMap {
    let mut targets = TargetMap::new();
    for doc in docs {
        for (k, v) in doc.map_section("targets", diags) {
            let name = k.scalar_text().unwrap_or_default();
            if let Some((_, first)) = targets.get(&name) {
                diags.push(doc.diag(
                    k.loc,
                    format!("target `{name}` is defined twice: at {first} and here"),
                ));
                continue;
            }
            let base_dir = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
            if let Some(spec) = parse_target(doc, &name, v, diags) {
                let target = Target {
                    name: name.clone(),
                    spec,
                    base_dir,
                    origin: Some(doc.origin(k.loc)),
                };
                targets.insert(name, (Arc::new(target), doc.origin(k.loc)));
            }
        }
    }
    targets
}

fn parse_target(
    doc: &RuleDoc,
    name: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<TargetSpec> {
    if node.as_map().is_none() {
        diags.push(doc.diag(
            node.loc,
            format!(
                "target `{name}` must be a mapping with a kind, found {}",
                node.type_name()
            ),
        ));
        return None;
    }
    let kind = kind_of(doc, node, "target", TargetSpec::KINDS, diags)?;
    let fields = TargetSpec::fields(&kind)?;
    report_unknown_keys(
        doc,
        node,
        &[fields, &["kind"]],
        &format!("a {kind} target"),
        diags,
    );
    match TargetSpec::from_node(&kind, node)? {
        Ok(spec) => Some(spec),
        Err(e) => {
            diags.push(doc.diag(e.loc.unwrap_or(node.loc), e.describe()));
            None
        }
    }
}

/// The `kind:` of a mapping, reported when missing or unknown.
fn kind_of(
    doc: &RuleDoc,
    node: &Node,
    what: &str,
    kinds: &[&str],
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    let Some(k) = node.get("kind") else {
        diags.push(doc.diag(
            node.loc,
            format!("{what} needs a `kind`: one of {}", kinds.join(", ")),
        ));
        return None;
    };
    let kind = k.scalar_text().unwrap_or_default();
    if !kinds.contains(&kind.as_str()) {
        diags.push(doc.diag(
            k.loc,
            format!(
                "unknown {what} kind `{kind}`; expected one of {}",
                kinds.join(", ")
            ),
        ));
        return None;
    }
    Some(kind)
}

/// Reports every key of `node` that none of `allowed` lists.
fn report_unknown_keys(
    doc: &RuleDoc,
    node: &Node,
    allowed: &[&[&str]],
    what: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(entries) = node.as_map() else { return };
    for (k, _) in entries {
        let key = k.scalar_text().unwrap_or_default();
        if !allowed.iter().any(|set| set.contains(&key.as_str())) {
            let mut expected: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
            expected.sort_unstable();
            expected.dedup();
            diags.push(doc.diag(
                k.loc,
                format!(
                    "unknown field `{key}` for {what}; expected one of {}",
                    expected.join(", ")
                ),
            ));
        }
    }
}

/// Fields of `defaults:` (every shared check field except the identity of a check).
fn default_fields() -> Vec<&'static str> {
    struct_fields::<CheckCommon>()
        .iter()
        .copied()
        .filter(|f| *f != "name" && *f != "kind")
        .collect()
}

fn collect_checks(
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
    Some(Check {
        common,
        probe,
        target: target?,
        origin: doc.origin(node.loc),
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
                        "a {kind} check cannot use target `{name}` of kind {}; it needs one of: {}",
                        t.kind(),
                        accepted.join(", ")
                    ),
                );
                return None;
            }
            Some(Some(t.clone()))
        }
        (None, Some((field, value))) => {
            let spec = if field == "address" {
                Some(TargetSpec::Tcp(super::target::TcpTarget {
                    address: value.clone(),
                }))
            } else {
                TargetSpec::from_url(value)
            };
            match spec {
                Some(s) if accepted.contains(&s.kind()) => Some(Some(Arc::new(Target {
                    name: value.clone(),
                    spec: s,
                    base_dir: PathBuf::new(),
                    origin: Some(origin.clone()),
                }))),
                _ => {
                    issues.at(
                        &[field],
                        format!(
                            "a {kind} check cannot use this {field}; it needs one of: {}",
                            accepted.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(files: &[(&str, &str)]) -> Result<RuleSet, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let env: BTreeMap<String, String> = [("PORT".to_string(), "9".to_string())].into();
        load_with_env(&[dir.path().to_path_buf()], &env)
    }

    #[test]
    fn defaults_apply_to_the_checks_of_their_file_only() {
        let rules = load_str(&[
            ("a.yaml", "defaults: {timeout: 3s, service: orders, every: 1m}\nchecks:\n  - {name: a, kind: tcp, address: '127.0.0.1:${env:PORT}'}\n  - {name: b, kind: tcp, address: '127.0.0.1:1', schedule: '0 2 * * *', timeout: 1s}\n"),
            ("b.yaml", "checks:\n  - {name: c, kind: tcp, address: '127.0.0.1:1'}\n"),
        ])
        .unwrap();
        let a = rules.check("a").unwrap();
        assert_eq!(a.common.timeout, std::time::Duration::from_secs(3));
        assert_eq!(a.common.service.as_deref(), Some("orders"));
        assert_eq!(a.target.as_ref().unwrap().name, "127.0.0.1:9");
        let b = rules.check("b").unwrap();
        assert_eq!(b.common.timeout, std::time::Duration::from_secs(1));
        assert_eq!(
            (b.common.every, b.common.schedule.as_deref()),
            (None, Some("0 2 * * *")),
            "schedule overrides a default every"
        );
        let c = rules.check("c").unwrap();
        assert_eq!(
            (c.common.service.as_deref(), c.common.timeout),
            (None, std::time::Duration::from_secs(10))
        );
    }

    #[test]
    fn a_valid_rule_set_has_targets_checks_and_a_revision() {
        let rules = load_str(&[(
            "r.yaml",
            "vars: {host: 127.0.0.1}\ntargets:\n  db: {kind: sqlite, url: 'sqlite://x.db'}\nchecks:\n  - {name: q, kind: sql, target: db, query: SELECT 1}\n  - {name: t, kind: tcp, address: '${var:host}:1'}\n",
        )])
        .unwrap();
        assert_eq!(rules.targets.len(), 1);
        assert_eq!(rules.checks.len(), 2);
        assert_eq!(
            rules.check("t").unwrap().target.as_ref().unwrap().name,
            "127.0.0.1:1"
        );
        assert_eq!(rules.revision.files.len(), 12);
    }

    #[test]
    fn problems_in_several_files_are_all_reported_sorted() {
        let errs = load_str(&[
            ("a.yaml", "checks:\n  - {name: x, kind: nope}\n"),
            ("b.yaml", "checks: {}\n"),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].file.ends_with("a.yaml") && errs[1].file.ends_with("b.yaml"));
    }
}
