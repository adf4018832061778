//! Finding and reading the playbooks of a directory against the rules, and checking that the
//! rules' `on_failure` / `on_low_score` name one of them. Shared by the daemon (start and reload)
//! and `patrol validate`; every problem is a `file:line:col` diagnostic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Check, Diagnostic, Env, Loc, Node, RuleSet};
use crate::playbook::{Playbook, is_playbook, load_playbook};

/// The playbooks found in a directory (or among files), by name.
#[derive(Clone, Debug, Default)]
pub struct PlaybookSet {
    /// Where they were looked for (None: only files given by path).
    pub dir: Option<PathBuf>,
    /// Whether `dir` exists: without it no playbook is loaded and references are not checked.
    pub present: bool,
    /// The valid playbooks.
    pub by_name: BTreeMap<String, Arc<Playbook>>,
    /// Names of every playbook file found, valid or not (so a broken playbook is reported once,
    /// not again as "unknown" where the rules name it).
    pub names: BTreeSet<String>,
}

impl PlaybookSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Playbook>> {
        self.by_name.get(name)
    }

    fn where_text(&self) -> String {
        match &self.dir {
            Some(dir) => format!("in `{}`", dir.display()),
            None => "among the files given".to_string(),
        }
    }
}

/// What scanning found: the set and the problems of its files.
pub struct Scan {
    pub set: PlaybookSet,
    pub problems: Vec<Diagnostic>,
}

/// The directory playbooks come from: the rules' `playbooks.dir` (already resolved against its
/// rule file) when set, else `fallback` (the `--playbooks` flag, `playbooks` by default).
pub fn playbooks_dir(rules: &RuleSet, fallback: Option<&Path>) -> PathBuf {
    rules
        .playbooks
        .dir
        .clone()
        .or_else(|| fallback.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("playbooks"))
}

/// Reads every `kind: playbook` file directly in `dir` against `rules`. A missing directory is
/// an empty set; other YAML files there (drills, notes) are left alone, but one that does not
/// parse is reported (it may be a playbook nobody can load).
pub fn scan_dir(dir: &Path, rules: &RuleSet, env: &dyn Env) -> Scan {
    let (found, problems) = playbook_docs_in(dir);
    let mut scan = read_all(found, rules, env);
    scan.set.dir = Some(dir.to_path_buf());
    scan.set.present = dir.is_dir();
    scan.problems.extend(problems);
    scan.problems.sort();
    scan
}

/// The `kind: playbook` documents directly in `dir` (none when it does not exist), and the
/// YAML files there that do not parse.
pub fn playbook_docs_in(dir: &Path) -> (Vec<(PathBuf, Node)>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for file in yaml_files_in(dir) {
        match parse_file(&file) {
            Ok(root) if is_playbook(&root) => found.push((file, root)),
            Ok(_) => {}
            Err(d) => problems.push(d),
        }
    }
    (found, problems)
}

/// Reads the parsed playbook documents `found` against `rules`; two playbooks of one name are a
/// problem at the second one's `name:`.
pub fn read_all(found: Vec<(PathBuf, Node)>, rules: &RuleSet, env: &dyn Env) -> Scan {
    let mut set = PlaybookSet {
        present: true,
        ..PlaybookSet::default()
    };
    let mut problems = Vec::new();
    let mut first_file: HashMap<String, PathBuf> = HashMap::new();
    for (file, root) in found {
        let name_node = root.get("name").cloned();
        let name = name_node
            .as_ref()
            .and_then(Node::as_str)
            .map(str::to_string);
        if let (Some(name), Some(node)) = (&name, &name_node) {
            if let Some(first) = first_file.get(name) {
                problems.push(Diagnostic::new(
                    &file,
                    node.loc,
                    format!(
                        "two playbooks are named `{name}`: {} and this file",
                        first.display()
                    ),
                ));
                continue;
            }
            first_file.insert(name.clone(), file.clone());
            set.names.insert(name.clone());
        }
        match load_playbook(&file, root, rules, env) {
            Ok(p) => {
                set.by_name.insert(p.name.clone(), Arc::new(p));
            }
            Err(d) => problems.extend(d),
        }
    }
    problems.sort();
    problems.dedup();
    Scan { set, problems }
}

/// The `*.yaml` / `*.yml` files directly in `dir`, sorted (hidden ones skipped).
fn yaml_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// A YAML file parsed, or the diagnostic saying why not.
pub use crate::config::parse_file;

/// The rules' playbook references (`on_failure` of checks, `on_low_score` of services) that do
/// not name a playbook of `set`, or name one a trigger cannot start (a required parameter
/// without a default: triggers give no parameters). Nothing is checked when the playbook
/// directory does not exist.
pub fn check_references(rules: &RuleSet, set: &PlaybookSet) -> Vec<Diagnostic> {
    if !set.present {
        return Vec::new();
    }
    let mut files = ParsedFiles::default();
    let mut problems = Vec::new();
    for check in &rules.checks {
        let Some(name) = &check.common.on_failure else {
            continue;
        };
        if let Some(message) = reference_problem(set, "on_failure", name) {
            let (file, loc) = files.on_failure_loc(check);
            problems.push(Diagnostic::new(file, loc, message));
        }
    }
    for (service, config) in &rules.services {
        let Some(name) = &config.on_low_score else {
            continue;
        };
        if let Some(message) = reference_problem(set, "on_low_score", name) {
            let (file, loc) = files.on_low_score_loc(rules, service);
            problems.push(Diagnostic::new(file, loc, message));
        }
    }
    problems.sort();
    problems
}

/// Why `field: name` cannot start a playbook of `set`, if it cannot.
fn reference_problem(set: &PlaybookSet, field: &str, name: &str) -> Option<String> {
    if !set.names.contains(name) {
        let known: Vec<&str> = set.names.iter().map(String::as_str).collect();
        return Some(format!(
            "unknown playbook `{name}` in `{field}`; playbooks {}: {}",
            set.where_text(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    let playbook = set.get(name)?;
    let missing: Vec<&str> = playbook
        .params
        .iter()
        .filter(|(_, spec)| spec.required && spec.default.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "`{field}` starts playbook `{name}`, whose required parameter(s) {} have no default: a trigger gives no parameters",
            missing.join(", ")
        )
    })
}

/// Rule files parsed again (only when a reference is wrong) to point at the field itself.
#[derive(Default)]
struct ParsedFiles {
    parsed: HashMap<PathBuf, Option<Node>>,
}

impl ParsedFiles {
    fn root(&mut self, file: &Path) -> Option<&Node> {
        self.parsed
            .entry(file.to_path_buf())
            .or_insert_with(|| parse_file(file).ok())
            .as_ref()
    }

    /// The check's own `on_failure:`, else the one of its file's `defaults:`, else the check.
    fn on_failure_loc(&mut self, check: &Check) -> (PathBuf, Loc) {
        let origin = &check.origin;
        let loc = self.root(&origin.file).and_then(|root| {
            let item = root
                .get("checks")
                .and_then(Node::as_seq)
                .and_then(|items| items.iter().find(|i| i.loc == origin.loc));
            item.and_then(|i| i.get("on_failure"))
                .or_else(|| root.get("defaults").and_then(|d| d.get("on_failure")))
                .map(|n| n.loc)
        });
        (origin.file.clone(), loc.unwrap_or(origin.loc))
    }

    /// The service's `on_low_score:` in whichever rule file defines the service.
    fn on_low_score_loc(&mut self, rules: &RuleSet, service: &str) -> (PathBuf, Loc) {
        for file in &rules.files {
            let found = self.root(file).and_then(|root| {
                let entry = root.get("services")?.get(service)?;
                Some(entry.get("on_low_score").map_or(entry.loc, |n| n.loc))
            });
            if let Some(loc) = found {
                return (file.clone(), loc);
            }
        }
        let file = rules.files.first().cloned().unwrap_or_default();
        (file, Loc { line: 1, col: 1 })
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
