//! Where rule files come from: a directory (or a file) on disk, or a key prefix in Consul's KV
//! store, written `consul://host:8500/prefix` wherever `--rules` is accepted (`consuls://…` or
//! `?tls` for HTTPS). Either way the texts go through the same loader, so a rule behaves alike
//! wherever it is kept. The bootstrap file ([`bootstrap`]) names a source and the Consul token.

pub mod bootstrap;
pub mod consul;

use std::fmt;
use std::path::{Path, PathBuf};

pub use self::consul::{ConsulSource, KvEntry, KvSnapshot};
use super::{Diagnostic, Env, ProcessEnv, RuleSet};

/// Consul's own variable for the ACL token (read by the `consul` CLI and its libraries too).
pub const TOKEN_ENV: &str = "CONSUL_HTTP_TOKEN";

/// Where the rules are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesSource {
    /// Rule files below a directory (or one file).
    Dir(PathBuf),
    /// Rule files as keys under a Consul KV prefix.
    Consul(ConsulSource),
}

impl RulesSource {
    /// A `--rules` value: `consul://…` and `consuls://…` name Consul (token from
    /// `CONSUL_HTTP_TOKEN` in `env`), any other URL is refused, anything else is a path.
    pub fn parse(text: &str, env: &dyn Env) -> Result<RulesSource, String> {
        match url_scheme(text) {
            Some(_) if ConsulSource::accepts(text) => {
                ConsulSource::parse(text, env).map(RulesSource::Consul)
            }
            Some(scheme) => Err(format!(
                "unsupported rules source {scheme}://…: give a directory or consul://HOST:PORT/PREFIX"
            )),
            None => Ok(RulesSource::Dir(PathBuf::from(text))),
        }
    }

    /// A `--rules` value given as a path argument (non-UTF-8 paths are paths).
    pub fn from_path_arg(path: &Path, env: &dyn Env) -> Result<RulesSource, String> {
        match path.to_str() {
            Some(text) => RulesSource::parse(text, env),
            None => Ok(RulesSource::Dir(path.to_path_buf())),
        }
    }

    /// Uses `token` for Consul (a bootstrap file's `consul_token` wins over the environment);
    /// a directory has no use for it.
    pub fn with_token(self, token: Option<String>) -> RulesSource {
        match (self, token) {
            (RulesSource::Consul(c), Some(t)) => RulesSource::Consul(c.with_token(t)),
            (other, _) => other,
        }
    }

    /// The directory, for a source on disk.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            RulesSource::Dir(d) => Some(d),
            RulesSource::Consul(_) => None,
        }
    }

    /// Reads and loads the rules with the process environment: every file of the directory, or
    /// one consistent snapshot of the Consul prefix. A source that cannot be read is a problem
    /// like an invalid file (named by the source), so callers report both alike.
    pub async fn load(&self) -> Result<RuleSet, Vec<Diagnostic>> {
        match self {
            RulesSource::Dir(dir) => super::load(std::slice::from_ref(dir)),
            RulesSource::Consul(consul) => {
                let snapshot = consul.fetch(None).await.map_err(|e| vec![e.diagnostic()])?;
                consul.load_snapshot(&snapshot, &ProcessEnv)
            }
        }
    }
}

/// The rules an optional `--rules` names (a directory, a file or `consul://…`), else those of
/// `rules/` when it exists, else none: what drills and playbooks run against.
pub async fn load_optional(arg: Option<&Path>) -> Result<RuleSet, Vec<Diagnostic>> {
    let source = match arg {
        Some(path) => RulesSource::from_path_arg(path, &ProcessEnv)
            .map_err(|e| vec![Diagnostic::new(path, super::Loc { line: 1, col: 1 }, e)])?,
        None if Path::new("rules").exists() => RulesSource::Dir(PathBuf::from("rules")),
        None => return super::load(&[]),
    };
    source.load().await
}

impl fmt::Display for RulesSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesSource::Dir(d) => write!(f, "{}", d.display()),
            RulesSource::Consul(c) => write!(f, "{c}"),
        }
    }
}

/// The scheme of `text` when it is written like a URL (`scheme://…`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (starts_with_letter && rest_ok).then_some(scheme)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn no_env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn paths_stay_paths_and_consul_urls_name_consul() {
        let env = no_env();
        assert_eq!(
            RulesSource::parse("rules", &env).unwrap(),
            RulesSource::Dir(PathBuf::from("rules"))
        );
        assert_eq!(
            RulesSource::parse("/etc/patrol/rules.d", &env).unwrap(),
            RulesSource::Dir(PathBuf::from("/etc/patrol/rules.d"))
        );
        let consul = RulesSource::parse("consul://127.0.0.1:8500/patrol/rules", &env).unwrap();
        assert!(matches!(consul, RulesSource::Consul(_)));
        assert_eq!(consul.to_string(), "consul://127.0.0.1:8500/patrol/rules");
        assert_eq!(consul.dir(), None);
    }

    #[test]
    fn other_urls_are_refused_by_name() {
        let err = RulesSource::parse("http://consul:8500/v1/kv/rules", &no_env()).unwrap_err();
        assert!(
            err.contains("http://") && err.contains("consul://"),
            "{err}"
        );
    }

    #[test]
    fn the_token_comes_from_the_environment_unless_given() {
        let env: BTreeMap<String, String> =
            [(TOKEN_ENV.to_string(), "from-the-environment".to_string())].into();
        let RulesSource::Consul(c) = RulesSource::parse("consul://c:8500/p", &env).unwrap() else {
            panic!("a consul source");
        };
        assert_eq!(c.token(), Some("from-the-environment"));
        let RulesSource::Consul(c) = RulesSource::Consul(c).with_token(Some("from-file".into()))
        else {
            panic!("a consul source");
        };
        assert_eq!(c.token(), Some("from-file"));
        let dir = RulesSource::Dir("rules".into()).with_token(Some("unused".into()));
        assert_eq!(dir, RulesSource::Dir("rules".into()));
    }
}
