//! `${env:NAME}`, `${env:NAME:-default}`, `${file:PATH}` and `${var:NAME}` inside string scalars.
//! `$${` writes a literal `${`. Values read from the environment or from files are registered as
//! secrets (see [`crate::secrets`]) so they are masked wherever they would be printed or stored.
//! `${file:…}` paths are relative to the rule file that names them.

use std::collections::BTreeMap;
use std::path::Path;

use super::node::{Loc, Node, NodeValue};
use crate::secrets;

/// Where substituted values come from. Tests give their own environment; the CLI the process's.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// One substitution that could not be made.
#[derive(Clone, Debug, PartialEq)]
pub struct SubstError {
    pub loc: Loc,
    pub message: String,
}

pub struct Substituter<'a> {
    pub env: &'a dyn Env,
    /// `vars:` of all rule files, already substituted themselves.
    pub vars: &'a BTreeMap<String, String>,
    /// Directory of the file being substituted, for relative `${file:…}` paths.
    pub base_dir: &'a Path,
}

impl Substituter<'_> {
    /// Substitutes every string scalar below `node` in place, collecting every failure.
    pub fn apply(&self, node: &mut Node, errors: &mut Vec<SubstError>) {
        match &mut node.value {
            NodeValue::Str(s) if s.contains("${") => match self.expand(s) {
                Ok(v) => *s = v,
                Err(message) => errors.push(SubstError {
                    loc: node.loc,
                    message,
                }),
            },
            NodeValue::Seq(items) => items.iter_mut().for_each(|n| self.apply(n, errors)),
            NodeValue::Map(entries) => entries.iter_mut().for_each(|(_, v)| self.apply(v, errors)),
            _ => {}
        }
    }

    /// Expands the references in one string.
    pub fn expand(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(body_start) = tail.strip_prefix("${") {
                let end = body_start
                    .find('}')
                    .ok_or_else(|| format!("unterminated reference in {:?}", secrets::redact(s)))?;
                out.push_str(&self.resolve(&body_start[..end])?);
                rest = &body_start[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, reference: &str) -> Result<String, String> {
        let (source, name) = reference.split_once(':').ok_or_else(|| {
            format!("reference ${{{reference}}} needs a source: ${{env:NAME}}, ${{file:PATH}} or ${{var:NAME}}")
        })?;
        match source.trim() {
            "env" => {
                let (name, default) = match name.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (name, None),
                };
                let name = name.trim();
                if name.is_empty() {
                    return Err("${env:} needs a variable name".into());
                }
                match (self.env.var(name), default) {
                    (Some(v), _) => {
                        secrets::register(&v);
                        Ok(v)
                    }
                    (None, Some(d)) => Ok(d.to_string()),
                    (None, None) => Err(format!(
                        "environment variable {name} is not set (write ${{env:{name}:-default}} for a default)"
                    )),
                }
            }
            "file" => {
                let path = self.base_dir.join(name.trim());
                let v = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                // A trailing newline is an artefact of the editor, not part of the secret.
                let v = v.strip_suffix('\n').unwrap_or(&v);
                let v = v.strip_suffix('\r').unwrap_or(v).to_string();
                secrets::register(&v);
                Ok(v)
            }
            "var" => self
                .vars
                .get(name.trim())
                .cloned()
                .ok_or_else(|| format!("variable {} is not defined under vars:", name.trim())),
            other => Err(format!(
                "unknown reference source {other:?} in ${{{reference}}}; use env, file or var"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(env: &[(&str, &str)], vars: &[(&str, &str)], s: &str) -> Result<String, String> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Substituter {
            env: &env,
            vars: &vars,
            base_dir: Path::new("."),
        }
        .expand(s)
    }

    #[test]
    fn references_expand() {
        assert_eq!(
            sub(&[("H", "db")], &[], "pg://${env:H}/x").unwrap(),
            "pg://db/x"
        );
        assert_eq!(sub(&[], &[], "${env:NOPE:-fallback}").unwrap(), "fallback");
        assert_eq!(sub(&[], &[], "${env:NOPE:-}").unwrap(), "");
        assert_eq!(
            sub(&[], &[("region", "eu")], "r-${var:region}").unwrap(),
            "r-eu"
        );
        assert_eq!(
            sub(&[], &[], "cost $5 and $${literal}").unwrap(),
            "cost $5 and ${literal}"
        );
    }

    #[test]
    fn missing_references_are_errors() {
        assert!(
            sub(&[], &[], "${env:NOPE}")
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(
            sub(&[], &[], "${var:x}")
                .unwrap_err()
                .contains("not defined")
        );
        assert!(
            sub(&[], &[], "${vault:x}")
                .unwrap_err()
                .contains("unknown reference source")
        );
        assert!(
            sub(&[], &[], "${env:X")
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(
            sub(&[], &[], "${file:/nonexistent/x}")
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn substituted_env_values_become_secrets() {
        sub(&[("PW", "zebra-horse-battery")], &[], "${env:PW}").unwrap();
        assert_eq!(
            secrets::redact("pw=zebra-horse-battery"),
            format!("pw={}", secrets::MASK)
        );
    }
}
