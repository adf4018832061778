//! The bootstrap file (`patrol daemon --config patrol.yaml`): where the rules come from and the
//! Consul token, by reference, so neither has to be on the command line:
//!
//! ```yaml
//! rules_source: consul://127.0.0.1:8500/patrol/rules   # or a rules directory
//! consul_token: ${env:CONSUL_TOKEN}                    # or ${file:/run/secrets/consul}
//! ```
//!
//! Both keys are optional. `${env:…}` and `${file:…}` are substituted as in rule files (files
//! relative to this file, values registered as secrets); a relative rules directory is relative
//! to this file too. `--rules` on the command line wins over `rules_source`; `consul_token` wins
//! over `CONSUL_HTTP_TOKEN`.

use std::collections::BTreeMap;
use std::path::Path;

use super::RulesSource;
use crate::config::{Diagnostic, DocReader, Env, Node, Substituter, parse_file};

const KEYS: &[&str] = &["rules_source", "consul_token"];

/// What a bootstrap file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bootstrap {
    pub rules_source: Option<RulesSource>,
    /// The Consul ACL token (already substituted; an empty one is none, so that
    /// `${env:NAME:-}` falls back to `CONSUL_HTTP_TOKEN`).
    pub consul_token: Option<String>,
}

impl Bootstrap {
    /// The source to use: `--rules` (`arg`, parsed with `env`) when given, else the file's
    /// `rules_source`, else `rules/`; with the file's token when it names one.
    pub fn source(self, arg: Option<&str>, env: &dyn Env) -> Result<RulesSource, String> {
        let source = match (arg, self.rules_source) {
            (Some(text), _) => RulesSource::parse(text, env)?,
            (None, Some(from_file)) => from_file,
            (None, None) => RulesSource::Dir("rules".into()),
        };
        Ok(source.with_token(self.consul_token))
    }
}

/// Reads the bootstrap file; every problem is reported with `file:line:col`.
pub fn read(file: &Path, env: &dyn Env) -> Result<Bootstrap, Vec<Diagnostic>> {
    let mut root = parse_file(file).map_err(|d| vec![d])?;
    let mut reader = DocReader::new(file);
    if root.is_null() {
        return Ok(Bootstrap::default());
    }
    if root.as_map().is_none() {
        reader.at(
            root.loc,
            format!(
                "a bootstrap file is a mapping with {}, found {}",
                KEYS.join(", "),
                root.type_name()
            ),
        );
        return Err(reader.diags);
    }
    reader.unknown_keys(&root, KEYS, "the bootstrap file");
    let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    substitute(&mut reader, &mut root, &base_dir, env);
    let consul_token = reader
        .typed::<String>(&root, "consul_token")
        .filter(|t| !t.is_empty());
    let rules_source = root
        .get("rules_source")
        .and_then(|node| source_of(&mut reader, node, &base_dir, env));
    if !reader.diags.is_empty() {
        return Err(reader.diags);
    }
    Ok(Bootstrap {
        rules_source,
        consul_token,
    })
}

/// `${env:…}` and `${file:…}` (no `vars:` here), files relative to the bootstrap file.
fn substitute(reader: &mut DocReader<'_>, root: &mut Node, base_dir: &Path, env: &dyn Env) {
    let no_vars = BTreeMap::new();
    let sub = Substituter {
        env,
        vars: &no_vars,
        base_dir,
    };
    let mut errors = Vec::new();
    sub.apply(root, &mut errors);
    for e in errors {
        reader.at(e.loc, e.message);
    }
}

/// `rules_source:` parsed; a relative directory is relative to the bootstrap file.
fn source_of(
    reader: &mut DocReader<'_>,
    node: &Node,
    base_dir: &Path,
    env: &dyn Env,
) -> Option<RulesSource> {
    let text: String = reader.value(node)?;
    match RulesSource::parse(&text, env) {
        Ok(RulesSource::Dir(dir)) if dir.is_relative() => {
            Some(RulesSource::Dir(base_dir.join(dir)))
        }
        Ok(source) => Some(source),
        Err(e) => {
            reader.at(node.loc, format!("rules_source: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::source::TOKEN_ENV;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let file = dir.join("patrol.yaml");
        std::fs::write(&file, text).unwrap();
        file
    }

    #[test]
    fn names_a_consul_source_and_its_token_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "rules_source: consul://127.0.0.1:8500/patrol/rules\nconsul_token: ${env:BOOT_TOKEN}\n",
        );
        let vars = env(&[
            ("BOOT_TOKEN", "bootstrap-token-1"),
            (TOKEN_ENV, "env-token"),
        ]);
        let boot = read(&file, &vars).unwrap();
        assert_eq!(boot.consul_token.as_deref(), Some("bootstrap-token-1"));
        let RulesSource::Consul(c) = boot.source(None, &vars).unwrap() else {
            panic!("a consul source");
        };
        assert_eq!(c.to_string(), "consul://127.0.0.1:8500/patrol/rules");
        assert_eq!(
            c.token(),
            Some("bootstrap-token-1"),
            "the file wins over the env"
        );
    }

    #[test]
    fn an_empty_token_leaves_consul_http_token_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "rules_source: consul://c:8500/p\nconsul_token: ${env:UNSET_TOKEN:-}\n",
        );
        let vars = env(&[(TOKEN_ENV, "env-token-33")]);
        let boot = read(&file, &vars).unwrap();
        assert_eq!(boot.consul_token, None);
        let RulesSource::Consul(c) = boot.source(None, &vars).unwrap() else {
            panic!("a consul source");
        };
        assert_eq!(c.token(), Some("env-token-33"));
    }

    #[test]
    fn the_token_can_come_from_a_file_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "file-token-22\n").unwrap();
        let file = write(
            dir.path(),
            "rules_source: consul://c:8500/p\nconsul_token: ${file:token}\n",
        );
        let boot = read(&file, &env(&[])).unwrap();
        assert_eq!(boot.consul_token.as_deref(), Some("file-token-22"));
    }

    #[test]
    fn the_command_line_wins_and_a_relative_directory_is_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "rules_source: team-rules\n");
        let boot = read(&file, &env(&[])).unwrap();
        assert_eq!(
            boot.clone().source(None, &env(&[])).unwrap(),
            RulesSource::Dir(dir.path().join("team-rules"))
        );
        assert_eq!(
            boot.source(Some("other"), &env(&[])).unwrap(),
            RulesSource::Dir("other".into())
        );
        assert_eq!(
            Bootstrap::default().source(None, &env(&[])).unwrap(),
            RulesSource::Dir("rules".into())
        );
    }

    #[test]
    fn problems_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "rules_source: consul://c:8500\nconsul_token: ${env:MISSING_TOKEN}\nrule_source: x\n",
        );
        let problems = read(&file, &env(&[])).unwrap_err();
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let at = |line: u32| problems.iter().find(|p| p.line == line).map(|p| &p.message);
        assert!(
            at(1).is_some_and(|m| m.contains("needs a key prefix")),
            "{shown:?}"
        );
        assert!(
            at(2).is_some_and(|m| m.contains("MISSING_TOKEN is not set")),
            "{shown:?}"
        );
        assert!(
            at(3).is_some_and(|m| m.contains("unknown field `rule_source`")),
            "{shown:?}"
        );
        assert!(shown[0].starts_with(&format!("{}:", file.display())));
    }
}
