//! Reading a playbook file: parse → substitute `${…}` (with the rules' `vars:`) → each step read
//! on its own → cross-checks (targets, checks, exec_allow, template syntax). Every problem is
//! collected as `file:line:col: error: message`; a playbook is only returned when there are none.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spec::{DEFAULT_TIMEOUT, OnError, ParamSpec, Playbook, RateLimit, Step};
use super::step::StepAction;
use super::template;
use crate::config::{
    Diagnostic, DocReader, Env, Issues, Loc, Node, NodeValue, RuleSet, parse_yaml,
};

/// Top-level keys of a playbook file.
pub const TOP_LEVEL: &[&str] = &[
    "kind",
    "name",
    "description",
    "params",
    "steps",
    "rollback",
    "approve",
    "lock",
    "rate_limit",
    "approval_timeout",
    "timeout",
];

/// Keys every step may have besides its kind key.
pub const STEP_KEYS: &[&str] = &["name", "when", "on_error", "approve", "rollback"];

/// Whether a parsed document is a playbook (`kind: playbook`).
pub fn is_playbook(root: &Node) -> bool {
    root.get("kind").and_then(Node::as_str) == Some("playbook")
}

/// The playbook file `name_or_file` names: an existing file, or the `kind: playbook` file in
/// `dir` whose `name:` is it.
pub fn find_playbook(name_or_file: &str, dir: &Path) -> Result<PathBuf, String> {
    let as_path = Path::new(name_or_file);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "no file {name_or_file:?}, and cannot read {}: {e}",
            dir.display()
        )
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if !yaml || !path.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(root) = parse_yaml(&text) else {
            continue;
        };
        if is_playbook(&root) && root.get("name").and_then(Node::as_str) == Some(name_or_file) {
            found.push(path);
        }
    }
    found.sort();
    match found.len() {
        0 => Err(format!(
            "no playbook named {name_or_file:?} in {} (and no such file)",
            dir.display()
        )),
        1 => Ok(found.remove(0)),
        _ => Err(format!(
            "{} playbooks are named {name_or_file:?}: {}",
            found.len(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Reads and validates the playbook in `file` against `rules`, with the process environment.
pub fn read_playbook(file: &Path, rules: &RuleSet) -> Result<Playbook, Vec<Diagnostic>> {
    let root = crate::config::read_kind_document(file, "playbook")?;
    load_playbook(file, root, rules, &crate::config::ProcessEnv)
}

/// Validates one playbook document.
pub fn load_playbook(
    file: &Path,
    mut root: Node,
    rules: &RuleSet,
    env: &dyn Env,
) -> Result<Playbook, Vec<Diagnostic>> {
    let mut r = Reader {
        doc: DocReader::new(file),
        templates: template::environment(),
        names: std::collections::BTreeSet::new(),
    };
    if root.as_map().is_none() {
        r.at(
            root.loc,
            format!("a playbook is a mapping, found {}", root.type_name()),
        );
        return Err(r.doc.diags);
    }
    r.substitute(&mut root, rules, env);
    r.unknown_keys(&root, TOP_LEVEL, "a playbook");
    let name = r.name(&root);
    let description = r.typed::<Option<String>>(&root, "description").flatten();
    let params = r
        .typed::<std::collections::BTreeMap<String, ParamSpec>>(&root, "params")
        .unwrap_or_default();
    let exec_allow = rules.playbooks.exec_allow.clone();
    let timeout = r.timeout(&root);
    let approve = r.typed::<bool>(&root, "approve").unwrap_or(false);
    let lock = r.lock(&root);
    let rate_limit = r.rate_limit(&root);
    let approval_timeout = r.duration(
        &root,
        "approval_timeout",
        rules.playbooks.approval_timeout,
        false,
    );
    let steps = r.steps(&root, "steps", rules, &exec_allow, "");
    let rollback = r.steps(&root, "rollback", rules, &exec_allow, "rollback_");
    if steps.is_empty() && root.get("steps").is_none() {
        r.at(root.loc, "a playbook needs `steps`");
    }
    if !r.diags.is_empty() {
        r.diags.sort();
        r.diags.dedup();
        return Err(r.doc.diags);
    }
    Ok(Playbook {
        name: name.unwrap_or_default(),
        description,
        file: file.to_path_buf(),
        params,
        steps,
        rollback,
        exec_allow,
        timeout,
        approve,
        lock,
        rate_limit,
        approval_timeout,
        rules: Arc::new(rules.clone()),
    })
}

/// Collects the problems of one playbook file.
struct Reader<'a> {
    doc: DocReader<'a>,
    templates: minijinja::Environment<'static>,
    /// Step names seen so far (of `steps` and `rollback`): `steps.<name>` must be unambiguous.
    names: std::collections::BTreeSet<String>,
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

impl Reader<'_> {
    fn name(&mut self, root: &Node) -> Option<String> {
        self.safe_name(root, "playbook", "")
    }

    fn timeout(&mut self, root: &Node) -> std::time::Duration {
        self.duration(root, "timeout", DEFAULT_TIMEOUT, false)
    }

    /// `lock:` — a key template (checked for syntax).
    fn lock(&mut self, root: &Node) -> Option<String> {
        let key = self.typed::<Option<String>>(root, "lock").flatten()?;
        if let Some(node) = root.get("lock") {
            self.check_templates(node);
        }
        if key.trim().is_empty() {
            let loc = root.get("lock").map_or(root.loc, |n| n.loc);
            self.at(
                loc,
                "`lock` needs a key, e.g. \"{{ params.service }}\" or the playbook's name",
            );
            return None;
        }
        Some(key)
    }

    /// `rate_limit: 3/h`.
    fn rate_limit(&mut self, root: &Node) -> Option<RateLimit> {
        let node = root.get("rate_limit").filter(|n| !n.is_null())?;
        let text = node.scalar_text().unwrap_or_default();
        match RateLimit::parse(&text) {
            Ok(limit) => Some(limit),
            Err(e) => {
                self.at(node.loc, e);
                None
            }
        }
    }

    /// The steps of the list `key`; unnamed ones are called `<prefix><kind>_<n>`.
    fn steps(
        &mut self,
        root: &Node,
        key: &str,
        rules: &RuleSet,
        allow: &[String],
        prefix: &str,
    ) -> Vec<Step> {
        let Some(list) = root.get(key).filter(|n| !n.is_null()) else {
            return Vec::new();
        };
        let Some(items) = list.as_seq() else {
            self.at(
                list.loc,
                format!("`{key}` must be a list, found {}", list.type_name()),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.step(item, i, rules, allow, prefix))
            .collect()
    }

    /// One step: common keys plus exactly one kind key.
    fn step(
        &mut self,
        item: &Node,
        index: usize,
        rules: &RuleSet,
        allow: &[String],
        prefix: &str,
    ) -> Option<Step> {
        let Some(entries) = item.as_map() else {
            self.at(
                item.loc,
                format!("a step is a mapping, found {}", item.type_name()),
            );
            return None;
        };
        let mut kinds: Vec<(&'static str, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.scalar_text().unwrap_or_default();
            if STEP_KEYS.contains(&key.as_str()) {
                continue;
            }
            match StepAction::KINDS.iter().find(|kind| **kind == key) {
                Some(kind) => kinds.push((kind, v)),
                None => self.at(
                    k.loc,
                    format!(
                        "unknown field `{key}` for a step; expected one of {} or a step kind: {}",
                        STEP_KEYS.join(", "),
                        StepAction::KINDS.join(", ")
                    ),
                ),
            }
        }
        if kinds.len() != 1 {
            self.at(
                item.loc,
                format!(
                    "a step needs exactly one step kind ({}), found {}",
                    StepAction::KINDS.join(", "),
                    kinds.len()
                ),
            );
            return None;
        }
        let (kind, body) = kinds[0];
        let action = self.action(kind, body, rules, allow);
        self.check_templates(body);
        let when = self.typed::<Option<String>>(item, "when").flatten();
        if let (Some(expr), Some(node)) = (&when, item.get("when"))
            && let Err(e) = template::check_expression(&self.templates, expr)
        {
            self.at(node.loc, format!("`when`: {e}"));
        }
        let name = self
            .typed::<String>(item, "name")
            .unwrap_or_else(|| format!("{prefix}{kind}_{}", index + 1));
        let rollback = self.steps(item, "rollback", rules, allow, &format!("{name}_rollback_"));
        if !self.names.insert(name.clone()) {
            let loc = item.get("name").map_or(item.loc, |n| n.loc);
            self.at(
                loc,
                format!("two steps are named `{name}`: step names must be unique"),
            );
        }
        Some(Step {
            name,
            kind,
            fields: body.to_json(),
            action: action?,
            when,
            on_error: self.typed::<OnError>(item, "on_error").unwrap_or_default(),
            approve: self.typed::<bool>(item, "approve").unwrap_or(false),
            rollback,
        })
    }

    fn action(
        &mut self,
        kind: &str,
        body: &Node,
        rules: &RuleSet,
        allow: &[String],
    ) -> Option<StepAction> {
        match StepAction::from_node(kind, body)? {
            Ok(action) => {
                let mut issues = Issues::default();
                action.validate(rules, allow, &mut issues);
                // A templated value is only known once rendered: the runner validates it then.
                let mut templated = Vec::new();
                templated_locs(body, &mut templated);
                issues
                    .items
                    .retain(|(path, _)| !templated.contains(&body.locate(path)));
                self.issues(body, issues);
                Some(action)
            }
            Err(e) => {
                self.at(e.loc.unwrap_or(body.loc), e.describe());
                None
            }
        }
    }

    /// Every string under `node` must compile as a template.
    fn check_templates(&mut self, node: &Node) {
        match &node.value {
            NodeValue::Map(entries) => entries.iter().for_each(|(_, v)| self.check_templates(v)),
            NodeValue::Seq(items) => items.iter().for_each(|v| self.check_templates(v)),
            _ => {
                if let Some(text) = node.as_str()
                    && let Err(e) = template::check_template(&self.templates, text)
                {
                    self.at(node.loc, e);
                }
            }
        }
    }
}

/// Where the strings holding template syntax are, under `node`.
fn templated_locs(node: &Node, out: &mut Vec<Loc>) {
    match &node.value {
        NodeValue::Map(entries) => entries.iter().for_each(|(_, v)| templated_locs(v, out)),
        NodeValue::Seq(items) => items.iter().for_each(|v| templated_locs(v, out)),
        _ => {
            if node
                .as_str()
                .is_some_and(|t| t.contains("{{") || t.contains("{%"))
            {
                out.push(node.loc);
            }
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
