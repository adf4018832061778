//! Reading a located YAML document that is not a rule file (a drill, a playbook): every problem
//! is collected as `file:line:col` so that all of them are reported at once.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    DeError, Diagnostic, Env, Issues, Loc, Node, RuleSet, Substituter, from_node, parse_yaml,
};

/// Collects the problems of one document.
pub struct DocReader<'a> {
    pub file: &'a Path,
    pub diags: Vec<Diagnostic>,
}

impl<'a> DocReader<'a> {
    pub fn new(file: &'a Path) -> DocReader<'a> {
        DocReader {
            file,
            diags: Vec::new(),
        }
    }

    pub fn at(&mut self, loc: Loc, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.file, loc, message));
    }

    pub fn de_error(&mut self, e: DeError, fallback: Loc) {
        self.at(e.loc.unwrap_or(fallback), e.describe());
    }

    /// Problems found by a `validate(&mut Issues)`, their paths relative to `node`.
    pub fn issues(&mut self, node: &Node, issues: Issues) {
        for (path, message) in issues.items {
            self.at(node.locate(&path), message);
        }
    }

    /// `T` from the value under `key` (None when the key is absent or the value is wrong).
    pub fn typed<T: DeserializeOwned>(&mut self, parent: &Node, key: &str) -> Option<T> {
        let node = parent.get(key)?;
        self.value(node)
    }

    pub fn value<T: DeserializeOwned>(&mut self, node: &Node) -> Option<T> {
        match from_node::<T>(node, None) {
            Ok(v) => Some(v),
            Err(e) => {
                self.de_error(e, node.loc);
                None
            }
        }
    }

    /// The list under `key` (empty when absent; reported when not a list).
    pub fn list<'n>(&mut self, parent: &'n Node, key: &str) -> &'n [Node] {
        match parent.get(key) {
            None => &[],
            Some(n) if n.is_null() => &[],
            Some(n) => match n.as_seq() {
                Some(items) => items,
                None => {
                    self.at(
                        n.loc,
                        format!("`{key}` must be a list, found {}", n.type_name()),
                    );
                    &[]
                }
            },
        }
    }

    pub fn unknown_keys(&mut self, node: &Node, allowed: &[&str], what: &str) {
        for (k, _) in node.as_map().unwrap_or(&[]) {
            let key = k.scalar_text().unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                self.at(
                    k.loc,
                    format!(
                        "unknown field `{key}` for {what}; expected one of {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// A duration field (absent or wrong: `default`).
    pub fn duration(
        &mut self,
        parent: &Node,
        key: &str,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        let Some(node) = parent.get(key) else {
            return default;
        };
        let Some(d) = self.duration_of(node) else {
            return default;
        };
        if d.is_zero() && !zero_ok {
            self.at(node.loc, format!("`{key}` must be longer than zero"));
            return default;
        }
        d
    }

    pub fn duration_of(&mut self, node: &Node) -> Option<Duration> {
        #[derive(Deserialize)]
        struct D(#[serde(with = "crate::config::duration")] Duration);
        self.value::<D>(node).map(|D(d)| d)
    }

    /// Applies `${env:…}`, `${file:…}` and `${var:…}` (files relative to the document).
    pub fn substitute(&mut self, root: &mut Node, rules: &RuleSet, env: &dyn Env) {
        let base_dir = self
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let sub = Substituter {
            env,
            vars: &rules.vars,
            base_dir: &base_dir,
        };
        let mut errors = Vec::new();
        sub.apply(root, &mut errors);
        for e in errors {
            self.at(e.loc, e.message);
        }
    }

    /// The document's `name:`, kept to characters safe in a file name; `what` names the
    /// document kind, `note` (may be empty) says why the name is restricted.
    pub fn safe_name(&mut self, root: &Node, what: &str, note: &str) -> Option<String> {
        let Some(node) = root.get("name") else {
            self.at(root.loc, format!("a {what} needs a `name`"));
            return None;
        };
        let name: String = self.value(node)?;
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || !name.chars().all(safe) || name.starts_with('.') {
            self.at(
                node.loc,
                format!("{what} name {name:?} must be letters, digits, '-', '_' or '.'{note}"),
            );
            return None;
        }
        Some(name)
    }
}

/// The parsed YAML document in `file`, or the diagnostic saying why it cannot be read.
pub fn parse_file(file: &Path) -> Result<Node, Diagnostic> {
    let bytes = std::fs::read(file)
        .map_err(|e| Diagnostic::new(file, Loc { line: 1, col: 1 }, format!("cannot read: {e}")))?;
    parse_yaml(&String::from_utf8_lossy(&bytes))
        .map_err(|e| Diagnostic::new(file, e.loc, e.message))
}

/// The document in `file`, which must say `kind: <kind>` (drills, playbooks).
pub fn read_kind_document(file: &Path, kind: &str) -> Result<Node, Vec<Diagnostic>> {
    let root = parse_file(file).map_err(|d| vec![d])?;
    if root.get("kind").and_then(Node::as_str) != Some(kind) {
        let loc = root.get("kind").map_or(root.loc, |k| k.loc);
        return Err(vec![Diagnostic::new(
            file,
            loc,
            format!("not a {kind} file: it needs `kind: {kind}`"),
        )]);
    }
    Ok(root)
}
