//! Loading rule files: discover → parse → substitute → deserialize each target and check on its
//! own → validate. Every problem is collected with its file, line and column; a rule set is only
//! returned when there are none, so an invalid file can never replace a good configuration.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use self::checks::collect_checks;
pub use self::checks::parse_inline_check;
pub use self::receivers::Receiver;
use self::receivers::{check_notify_targets, collect_receivers};
use self::sections::{
    collect_inhibit_rules, collect_maintenance, collect_playbooks, collect_routes,
    collect_services, collect_suites,
};
use self::targets::collect_targets;
use super::issues::Diagnostic;
use super::model::{Check, Origin};
use super::node::{Loc, Node, NodeValue, parse_yaml};
use super::revision::Revision;
use super::service::ServiceConfig;
use super::subst::{Env, ProcessEnv, Substituter};
use super::suite::Suite;
use super::target::Target;

/// Top-level keys of a rule file.
const TOP_LEVEL: &[&str] = &[
    "vars",
    "targets",
    "defaults",
    "checks",
    "suites",
    "services",
    "receivers",
    "routes",
    "maintenance",
    "inhibit_rules",
    "playbooks",
];

/// Documents handled by other commands (`kind: playbook`, `kind: drill`), not rule files.
const OTHER_DOCUMENTS: &[&str] = &["playbook", "drill"];

/// Everything loaded from a rules directory (or a Consul KV prefix).
#[derive(Clone, Debug)]
pub struct RuleSet {
    pub targets: BTreeMap<String, Arc<Target>>,
    pub checks: Vec<Arc<Check>>,
    pub vars: BTreeMap<String, String>,
    pub suites: BTreeMap<String, Suite>,
    pub services: BTreeMap<String, ServiceConfig>,
    pub receivers: BTreeMap<String, Arc<Receiver>>,
    /// Notification routing tree(s), matched in order.
    pub routes: Vec<crate::alert::route::Route>,
    pub maintenance: Vec<crate::alert::maintenance::MaintenanceWindow>,
    pub inhibit_rules: Vec<crate::alert::inhibit::InhibitRule>,
    /// The `playbooks:` section (defaults when no file has one).
    pub playbooks: crate::config::PlaybooksConfig,
    pub revision: Revision,
    /// Names of the rule files read, in merge order (`consul://…/key.yaml` for Consul keys).
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

/// The text of one rule file and where it came from; the loader treats every one alike, whether
/// it was read from disk or from a Consul KV snapshot.
#[derive(Clone, Debug)]
pub struct RuleText {
    /// The name diagnostics and origins carry: a path, or `consul://host:8500/prefix/key.yaml`.
    pub name: PathBuf,
    /// What relative paths inside the file (`${file:…}`, `tls.ca_file`, `playbooks.dir`) are
    /// relative to: the file's directory, or the working directory (empty) for Consul keys.
    pub base_dir: PathBuf,
    pub bytes: Vec<u8>,
}

impl RuleText {
    /// A file read from disk: relative paths inside it are relative to its directory.
    pub fn file(path: PathBuf, bytes: Vec<u8>) -> RuleText {
        RuleText {
            base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            name: path,
            bytes,
        }
    }
}

pub fn load_with_env(paths: &[PathBuf], env: &dyn Env) -> Result<RuleSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let files = discover(paths, &mut diags);
    let mut texts = Vec::new();
    for file in files {
        match std::fs::read(&file) {
            Ok(bytes) => texts.push(RuleText::file(file, bytes)),
            Err(e) => diags.push(Diagnostic::new(
                &file,
                Loc { line: 1, col: 1 },
                format!("cannot read: {e}"),
            )),
        }
    }
    let named: Vec<(PathBuf, Vec<u8>)> = texts
        .iter()
        .map(|t| (t.name.clone(), t.bytes.clone()))
        .collect();
    load_texts(texts, Revision::of(paths, &named), env, diags)
}

/// Loads rule files given as texts (in merge order) that already have their `revision`: every
/// text is parsed, substituted, deserialized and validated exactly as a file on disk would be.
pub fn load_from_sources(
    texts: Vec<RuleText>,
    revision: Revision,
    env: &dyn Env,
) -> Result<RuleSet, Vec<Diagnostic>> {
    load_texts(texts, revision, env, Vec::new())
}

/// The loader proper; `diags` holds the problems met while gathering the texts.
fn load_texts(
    texts: Vec<RuleText>,
    revision: Revision,
    env: &dyn Env,
    mut diags: Vec<Diagnostic>,
) -> Result<RuleSet, Vec<Diagnostic>> {
    let files: Vec<PathBuf> = texts.iter().map(|t| t.name.clone()).collect();
    let mut docs = Vec::new();
    for text in texts {
        match parse_yaml(&String::from_utf8_lossy(&text.bytes)) {
            Ok(node) => {
                if let Some(doc) = RuleDoc::new(text.name, text.base_dir, node, &mut diags) {
                    docs.push(doc);
                }
            }
            Err(e) => diags.push(Diagnostic::new(&text.name, e.loc, e.message)),
        }
    }
    let vars = collect_vars(&mut docs, env, &mut diags);
    for doc in &mut docs {
        doc.substitute(env, &vars, &mut diags);
    }
    let targets = collect_targets(&docs, &mut diags);
    let checks = collect_checks(&docs, &targets, &mut diags);
    let receivers = collect_receivers(&docs, &mut diags);
    check_notify_targets(&docs, &checks, &receivers, &mut diags);
    let receiver_names: Vec<&str> = receivers.keys().map(String::as_str).collect();
    let routes = collect_routes(&docs, &receiver_names, &mut diags);
    let maintenance = collect_maintenance(&docs, &mut diags);
    baselines::check_baseline_needs(&docs, &checks, &maintenance, &mut diags);
    let inhibit_rules = collect_inhibit_rules(&docs, &mut diags);
    let suites = collect_suites(&docs, &checks, &receiver_names, &mut diags);
    let services = collect_services(&docs, &checks, &mut diags);
    let playbooks = collect_playbooks(&docs, &receiver_names, &mut diags);
    if !diags.is_empty() {
        diags.sort();
        diags.dedup();
        return Err(diags);
    }
    Ok(RuleSet {
        targets: targets.into_iter().map(|(k, (t, _))| (k, t)).collect(),
        checks,
        vars,
        suites,
        services,
        receivers,
        routes,
        maintenance,
        inhibit_rules,
        playbooks,
        revision,
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

/// Every `*.yaml`/`*.yml` below `paths` (files as given, directories walked, hidden entries
/// skipped), sorted — the files the rules loader reads, for tools that look at the same tree.
pub fn yaml_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
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
    /// What relative paths inside the file are relative to (see [`RuleText::base_dir`]).
    base_dir: PathBuf,
    root: Node,
}

impl RuleDoc {
    fn new(
        file: PathBuf,
        base_dir: PathBuf,
        root: Node,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<RuleDoc> {
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
                            &file,
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
                    &file,
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
            file,
            base_dir,
            root,
        })
    }

    fn base_dir(&self) -> &Path {
        &self.base_dir
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
        let sub = Substituter {
            env,
            vars,
            base_dir: &self.base_dir,
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
        let sub = Substituter {
            env,
            vars: &no_vars,
            base_dir: doc.base_dir(),
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

mod baselines;
mod checks;
mod receivers;
mod sections;
mod targets;

#[cfg(test)]
mod tests;
