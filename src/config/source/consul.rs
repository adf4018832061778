//! Rules kept in Consul's KV store under a key prefix (`consul://host:8500/patrol/rules`).
//!
//! - Which keys: every key below `prefix/` whose name ends in `.yaml` or `.yml`; folder keys
//!   (ending in `/`), other keys and keys with a hidden segment (`.draft/x.yaml`) are skipped,
//!   as a rules directory's other and hidden files are. `kind: playbook` / `kind: drill`
//!   documents among them are left alone, as in a directory.
//! - One snapshot: all keys come from one `GET /v1/kv/<prefix>/?recurse` answer, so a rule set
//!   never mixes two states of the prefix. Each key's text is parsed exactly as a file's, and
//!   problems name `consul://host:8500/prefix/key.yaml:line:col`.
//! - Relative paths inside a key (`${file:…}`, `tls.ca_file`) are relative to patrol's working
//!   directory: a key has no directory of its own.
//! - The revision is the hash of the rule keys plus `@consul:<highest ModifyIndex>`.
//! - Token: `CONSUL_HTTP_TOKEN` (Consul's own convention) or the bootstrap file's `consul_token`,
//!   sent as `X-Consul-Token`, never put into a URL, message or log. HTTPS trusts the public
//!   roots plus `CONSUL_CACERT` when set (Consul's convention too).
//! - Watching: blocking queries (`?index=N&wait=…`) as Consul's documentation prescribes: the
//!   index is reset to 0 when it goes backwards (a restarted or restored Consul) and kept above
//!   0, queries are rate limited, errors back off from 1 s to 30 s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Url;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::TOKEN_ENV;
use crate::config::load::{RuleText, load_from_sources};
use crate::config::{Diagnostic, Env, Loc, Revision, RuleSet, TlsOptions};

/// Consul's HTTP API port when the URL names none.
const DEFAULT_PORT: u16 = 8500;
/// Consul's variable naming a CA file to trust for HTTPS.
const CA_ENV: &str = "CONSUL_CACERT";
/// How long a plain (non-blocking) read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// A blocking query's answer may come this much after its `wait` (Consul adds up to wait/16 of
/// jitter, and the network its share).
const BLOCKING_GRACE: Duration = Duration::from_secs(15);
/// Queries of a watch are at least this far apart: an index that keeps changing (busy keys under
/// the prefix) or a Consul answering at once must not turn the watch into a busy loop.
const MIN_QUERY_SPACING: Duration = Duration::from_millis(250);
/// First and longest pause after a failed query.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A Consul KV prefix holding rule files.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsulSource {
    /// `http://host:8500` (or `https://…`): where Consul's HTTP API answers.
    base_url: String,
    /// The key prefix, without leading or trailing `/` (`patrol/rules`).
    prefix: String,
    /// `?dc=NAME`: the datacenter asked (default: the agent's).
    datacenter: Option<String>,
    /// ACL token, sent as `X-Consul-Token`.
    token: Option<String>,
    /// Extra CA certificates for HTTPS (`CONSUL_CACERT`).
    ca_file: Option<PathBuf>,
    /// `consul://host:8500` (or `consuls://…`): what rule files are named below.
    shown: String,
}

/// The token stays out of debug output.
impl fmt::Debug for ConsulSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulSource")
            .field("base_url", &self.base_url)
            .field("prefix", &self.prefix)
            .field("datacenter", &self.datacenter)
            .field("token", &self.token.as_ref().map(|_| crate::secrets::MASK))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl fmt::Display for ConsulSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.shown, self.prefix)
    }
}

/// One rule key of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvEntry {
    /// The full key (`patrol/rules/web.yaml`).
    pub key: String,
    pub value: Vec<u8>,
    pub modify_index: u64,
}

/// What one `?recurse` answer said about the prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvSnapshot {
    /// `X-Consul-Index` of the answer: where the next blocking query waits from.
    pub index: u64,
    /// The rule keys, sorted by key (the merge order).
    pub entries: Vec<KvEntry>,
}

/// Why Consul could not be read; never contains the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    /// The source (`consul://host:8500/prefix`).
    pub source: String,
    pub message: String,
}

impl SourceError {
    /// The error as a problem of the rules, named by the source.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::new(&self.source, Loc { line: 1, col: 1 }, &self.message)
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// A blocking query: answer once the prefix's index passes `index`, or after `wait`.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub index: u64,
    pub wait: Duration,
}

/// A key as Consul's KV API lists it (other fields are not needed).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KvPair {
    key: String,
    value: Option<String>,
    modify_index: u64,
}

impl ConsulSource {
    /// Whether `text` is written as a Consul source.
    pub fn accepts(text: &str) -> bool {
        text.starts_with("consul://") || text.starts_with("consuls://")
    }

    /// `consul://host[:port]/prefix[?tls][&dc=NAME]` or `consuls://…`; the token from
    /// `CONSUL_HTTP_TOKEN`, a CA file from `CONSUL_CACERT` (both in `env`).
    pub fn parse(text: &str, env: &dyn Env) -> Result<ConsulSource, String> {
        let url = Url::parse(text).map_err(|e| format!("invalid Consul source {text:?}: {e}"))?;
        let mut tls = url.scheme() == "consuls";
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{}: give the token in {TOKEN_ENV} or the bootstrap file's consul_token, not in the URL",
                shown_without_credentials(&url)
            ));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{text}: needs a host: consul://HOST:PORT/PREFIX"))?;
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let prefix = crate::secrets::percent_decode(url.path().trim_matches('/'));
        if prefix.is_empty() {
            return Err(format!(
                "{text}: needs a key prefix: consul://{host}:{port}/PREFIX"
            ));
        }
        let mut datacenter = None;
        for (name, value) in url.query_pairs() {
            match (name.as_ref(), value.as_ref()) {
                ("tls", "" | "true" | "1") => tls = true,
                ("tls", "false" | "0") => {}
                ("dc", dc) if !dc.is_empty() => datacenter = Some(dc.to_string()),
                _ => {
                    return Err(format!(
                        "{text}: unknown option `{name}={value}`; expected tls or dc=NAME"
                    ));
                }
            }
        }
        let token = env.var(TOKEN_ENV).filter(|t| !t.is_empty());
        if let Some(t) = &token {
            crate::secrets::register(t);
        }
        let (http, shown) = if tls {
            ("https", "consuls")
        } else {
            ("http", "consul")
        };
        Ok(ConsulSource {
            base_url: format!("{http}://{host}:{port}"),
            prefix,
            datacenter,
            token,
            ca_file: env.var(CA_ENV).filter(|f| !f.is_empty()).map(PathBuf::from),
            shown: format!("{shown}://{host}:{port}"),
        })
    }

    /// The same source with `token` (registered as a secret; empty means none).
    pub fn with_token(mut self, token: String) -> ConsulSource {
        crate::secrets::register(&token);
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// What the rule files are named below: `consul://host:8500/prefix`.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(self.to_string())
    }

    fn error(&self, message: impl Into<String>) -> SourceError {
        SourceError {
            source: self.to_string(),
            message: crate::secrets::redact_owned(message.into()),
        }
    }

    /// The URL of the prefix's listing (`/v1/kv/<prefix>/?recurse`), blocking when `block` says.
    fn listing_url(&self, block: Option<Block>) -> Result<Url, SourceError> {
        let mut url = Url::parse(&self.base_url)
            .map_err(|e| self.error(format!("invalid Consul address: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| self.error("invalid Consul address"))?
            .extend(["v1", "kv"])
            .extend(self.prefix.split('/'))
            // The trailing slash: `patrol/rules` must not also list `patrol/rules-old/…`.
            .push("");
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("recurse", "true");
            if let Some(dc) = &self.datacenter {
                query.append_pair("dc", dc);
            }
            if let Some(b) = block {
                query.append_pair("index", &b.index.to_string());
                query.append_pair("wait", &format!("{}s", b.wait.as_secs().max(1)));
            }
        }
        Ok(url)
    }

    fn client(&self) -> Result<reqwest::Client, SourceError> {
        let tls = TlsOptions {
            insecure_skip_verify: false,
            ca_file: self.ca_file.clone(),
        };
        crate::probe::http::client::client_for_tls_without_redirects(&tls, Path::new(""))
            .map_err(|e| self.error(e.to_string()))
    }

    /// One consistent snapshot of the prefix (an empty one when Consul has no key under it);
    /// with `block`, Consul answers once something under the prefix changed or the wait ends.
    pub async fn fetch(&self, block: Option<Block>) -> Result<KvSnapshot, SourceError> {
        let url = self.listing_url(block)?;
        let timeout = block.map_or(READ_TIMEOUT, |b| b.wait + b.wait / 16 + BLOCKING_GRACE);
        let mut request = self.client()?.get(url).timeout(timeout);
        if let Some(token) = &self.token {
            request = request.header("X-Consul-Token", token);
        }
        let response = request.send().await.map_err(|e| {
            self.error(format!(
                "cannot reach Consul at {}: {}",
                self.base_url,
                error_chain(&e)
            ))
        })?;
        let status = response.status();
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| self.error(format!("reading Consul's answer: {}", error_chain(&e))))?;
        match status.as_u16() {
            200 => self.snapshot_of(&body, index),
            // No key under the prefix (Consul still says its index).
            404 => Ok(KvSnapshot {
                index: index.unwrap_or(0),
                entries: Vec::new(),
            }),
            401 | 403 => Err(self.error(format!(
                "Consul refused to list the keys ({status}: {}); check the ACL token in {TOKEN_ENV} or consul_token and its read access to the prefix",
                answer_text(&body)
            ))),
            _ => Err(self.error(format!(
                "Consul answered {status}: {}",
                answer_text(&body)
            ))),
        }
    }

    /// The rule keys of a `?recurse` answer.
    fn snapshot_of(&self, body: &[u8], index: Option<u64>) -> Result<KvSnapshot, SourceError> {
        let pairs: Vec<KvPair> = serde_json::from_slice(body).map_err(|e| {
            self.error(format!(
                "Consul's key listing is not the KV API's JSON: {e}"
            ))
        })?;
        let highest = pairs.iter().map(|p| p.modify_index).max().unwrap_or(0);
        let mut entries = Vec::new();
        for pair in pairs {
            if !self.is_rule_key(&pair.key) {
                continue;
            }
            let value = match &pair.value {
                None => Vec::new(),
                Some(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| {
                        self.error(format!("the value of {} is not base64: {e}", pair.key))
                    })?,
            };
            entries.push(KvEntry {
                key: pair.key,
                value,
                modify_index: pair.modify_index,
            });
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(KvSnapshot {
            index: index.unwrap_or(highest),
            entries,
        })
    }

    /// Whether `key` is a rule file of this prefix (see the module documentation).
    pub fn is_rule_key(&self, key: &str) -> bool {
        let Some(relative) = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|k| k.strip_prefix('/'))
        else {
            return false;
        };
        let hidden = relative.split('/').any(|seg| seg.starts_with('.'));
        !hidden && (relative.ends_with(".yaml") || relative.ends_with(".yml"))
    }

    /// The name a key's diagnostics carry: `consul://host:8500/<key>`.
    fn name_of(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.shown))
    }

    /// The snapshot's rule files as loader texts (relative paths inside resolve against the
    /// working directory).
    fn texts(&self, snapshot: &KvSnapshot) -> Vec<RuleText> {
        snapshot
            .entries
            .iter()
            .map(|e| RuleText {
                name: self.name_of(&e.key),
                base_dir: PathBuf::new(),
                bytes: e.value.clone(),
            })
            .collect()
    }

    /// The revision the snapshot's rules have: their hash and highest `ModifyIndex`.
    pub fn revision_of(&self, snapshot: &KvSnapshot) -> Revision {
        let named: Vec<(PathBuf, Vec<u8>)> = snapshot
            .entries
            .iter()
            .map(|e| (self.name_of(&e.key), e.value.clone()))
            .collect();
        let index = snapshot
            .entries
            .iter()
            .map(|e| e.modify_index)
            .max()
            .unwrap_or(0);
        Revision::of_consul(&self.root(), &named, index)
    }

    /// The rules of a snapshot, loaded exactly as files are; a prefix without rule keys is a
    /// problem (an emptied prefix must not silently unload every check).
    pub fn load_snapshot(
        &self,
        snapshot: &KvSnapshot,
        env: &dyn Env,
    ) -> Result<RuleSet, Vec<Diagnostic>> {
        if snapshot.entries.is_empty() {
            return Err(vec![Diagnostic::new(
                self.root(),
                Loc { line: 1, col: 1 },
                format!("no rule files under {self} (keys ending in .yaml or .yml)"),
            )]);
        }
        load_from_sources(self.texts(snapshot), self.revision_of(snapshot), env)
    }

    /// Watches the prefix with blocking queries until `shutdown`, calling `changed` with every
    /// snapshot whose rules differ from the last ones seen. `current` is the hash
    /// ([`Revision::files`]) of the rules already loaded: the first query answers at once, and
    /// a change made since that load is reported.
    pub async fn watch(
        &self,
        current: String,
        wait: Duration,
        shutdown: CancellationToken,
        mut changed: impl FnMut(KvSnapshot),
    ) {
        let mut last_seen = current;
        let mut index = 0;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let started = Instant::now();
            let fetched = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.fetch(Some(Block { index, wait })) => r,
            };
            let pause = match fetched {
                Ok(snapshot) => {
                    backoff = BACKOFF_FIRST;
                    index = next_index(index, snapshot.index);
                    let hash = self.revision_of(&snapshot).files;
                    if hash != last_seen {
                        last_seen = hash;
                        changed(snapshot);
                    }
                    MIN_QUERY_SPACING.saturating_sub(started.elapsed())
                }
                Err(e) => {
                    tracing::warn!(
                        "watching the rules in Consul: {e}; retrying in {}s",
                        backoff.as_secs()
                    );
                    let pause = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    // Consul may have restarted with other indexes: start over.
                    index = 0;
                    pause
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// The index the next blocking query waits from, per Consul's rules: one that went backwards
/// (Consul restarted, a snapshot restored) starts over at 0; one that is 0 becomes 1, so the
/// next query blocks instead of answering at once forever.
pub fn next_index(previous: u64, returned: u64) -> u64 {
    if returned < previous {
        0
    } else {
        returned.max(1)
    }
}

/// An error with its causes (reqwest's own text hides the interesting part: "connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Consul's error text (short, one line).
fn answer_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.trim().lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        "no message".into()
    } else {
        line.chars().take(200).collect()
    }
}

/// The URL as the user wrote it, less its credentials (for the message refusing them).
fn shown_without_credentials(url: &Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn source(text: &str) -> ConsulSource {
        ConsulSource::parse(text, &env(&[])).unwrap()
    }

    fn entry(key: &str, text: &str, modify_index: u64) -> KvEntry {
        KvEntry {
            key: key.into(),
            value: text.as_bytes().to_vec(),
            modify_index,
        }
    }

    #[test]
    fn parses_host_port_prefix_and_options() {
        let s = source("consul://10.0.0.5:8501/patrol/rules/?dc=eu1");
        assert_eq!(s.base_url, "http://10.0.0.5:8501");
        assert_eq!(s.prefix, "patrol/rules");
        assert_eq!(s.datacenter.as_deref(), Some("eu1"));
        assert_eq!(s.to_string(), "consul://10.0.0.5:8501/patrol/rules");
        let default_port = source("consul://consul.service/patrol");
        assert_eq!(default_port.base_url, "http://consul.service:8500");
        let tls = source("consul://consul.service/patrol?tls");
        assert_eq!(tls.base_url, "https://consul.service:8500");
        assert_eq!(tls.to_string(), "consuls://consul.service:8500/patrol");
        assert_eq!(
            source("consuls://c:8501/p").base_url,
            "https://c:8501",
            "consuls:// is HTTPS"
        );
    }

    #[test]
    fn refuses_what_cannot_work_with_a_reason() {
        let e = |text: &str| ConsulSource::parse(text, &env(&[])).unwrap_err();
        assert!(e("consul://c:8500").contains("needs a key prefix"));
        assert!(e("consul://c:8500/").contains("needs a key prefix"));
        assert!(e("consul://c:8500/p?stale").contains("unknown option `stale=`"));
        let with_token = e("consul://user:s3cr3t-token@c:8500/p");
        assert!(with_token.contains(TOKEN_ENV), "{with_token}");
        assert!(!with_token.contains("s3cr3t-token"), "{with_token}");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let s = ConsulSource::parse(
            "consul://c:8500/p",
            &env(&[(TOKEN_ENV, "debug-hidden-token")]),
        )
        .unwrap();
        assert_eq!(s.token(), Some("debug-hidden-token"));
        let shown = format!("{s:?} {s}");
        assert!(!shown.contains("debug-hidden-token"), "{shown}");
    }

    #[test]
    fn the_listing_asks_below_the_prefix_and_blocks_when_told() {
        let s = source("consul://c:8500/patrol/rules?dc=eu1");
        assert_eq!(
            s.listing_url(None).unwrap().as_str(),
            "http://c:8500/v1/kv/patrol/rules/?recurse=true&dc=eu1"
        );
        let blocking = Block {
            index: 42,
            wait: Duration::from_secs(300),
        };
        assert_eq!(
            s.listing_url(Some(blocking)).unwrap().as_str(),
            "http://c:8500/v1/kv/patrol/rules/?recurse=true&dc=eu1&index=42&wait=300s"
        );
    }

    #[test]
    fn only_yaml_keys_below_the_prefix_are_rule_files() {
        let s = source("consul://c:8500/patrol/rules");
        assert!(s.is_rule_key("patrol/rules/web.yaml"));
        assert!(s.is_rule_key("patrol/rules/team/db.yml"));
        assert!(!s.is_rule_key("patrol/rules/"), "the folder key");
        assert!(!s.is_rule_key("patrol/rules/team/"), "a sub-folder key");
        assert!(!s.is_rule_key("patrol/rules/README.md"));
        assert!(!s.is_rule_key("patrol/rules/.draft/web.yaml"), "hidden");
        assert!(
            !s.is_rule_key("patrol/rules-old/web.yaml"),
            "a sibling prefix"
        );
    }

    #[test]
    fn a_listing_becomes_sorted_rule_entries_with_the_answers_index() {
        let s = source("consul://c:8500/patrol/rules");
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let body = serde_json::json!([
            {"LockIndex": 0, "Key": "patrol/rules/", "Flags": 0, "Value": null, "CreateIndex": 3, "ModifyIndex": 3},
            {"LockIndex": 0, "Key": "patrol/rules/z.yaml", "Flags": 0, "Value": b64("checks: []"), "CreateIndex": 5, "ModifyIndex": 9},
            {"LockIndex": 0, "Key": "patrol/rules/a.yml", "Flags": 0, "Value": b64("vars: {}"), "CreateIndex": 4, "ModifyIndex": 4},
            {"LockIndex": 0, "Key": "patrol/rules/notes.txt", "Flags": 0, "Value": b64("x"), "CreateIndex": 11, "ModifyIndex": 11},
        ]);
        let snap = s
            .snapshot_of(body.to_string().as_bytes(), Some(12))
            .unwrap();
        assert_eq!(snap.index, 12);
        assert_eq!(
            snap.entries,
            vec![
                entry("patrol/rules/a.yml", "vars: {}", 4),
                entry("patrol/rules/z.yaml", "checks: []", 9)
            ]
        );
        assert_eq!(
            s.snapshot_of(body.to_string().as_bytes(), None)
                .unwrap()
                .index,
            11,
            "without X-Consul-Index: the highest ModifyIndex"
        );
        // The revision counts the rule keys only.
        assert_eq!(s.revision_of(&snap).consul_index, Some(9));
    }

    #[test]
    fn keys_load_like_files_and_problems_name_the_key() {
        let s = source("consul://127.0.0.1:8500/patrol/rules");
        let good = KvSnapshot {
            index: 7,
            entries: vec![entry(
                "patrol/rules/web.yaml",
                "checks:\n  - {name: up, kind: tcp, address: \"127.0.0.1:1\"}\n",
                7,
            )],
        };
        let rules = s.load_snapshot(&good, &env(&[])).unwrap();
        assert_eq!(rules.checks.len(), 1);
        assert_eq!(
            rules.files,
            vec![PathBuf::from(
                "consul://127.0.0.1:8500/patrol/rules/web.yaml"
            )]
        );
        assert!(rules.revision.to_string().ends_with("@consul:7"));
        let bad = KvSnapshot {
            index: 8,
            entries: vec![entry(
                "patrol/rules/bad.yaml",
                "checks:\n  - {name: up, kind: tcp, address: \"127.0.0.1:1\", crit: gt(}\n",
                8,
            )],
        };
        let problems = s.load_snapshot(&bad, &env(&[])).unwrap_err();
        let shown = problems[0].to_string();
        assert!(
            shown.starts_with("consul://127.0.0.1:8500/patrol/rules/bad.yaml:2:"),
            "{shown}"
        );
    }

    #[test]
    fn an_empty_prefix_is_a_problem_naming_it() {
        let s = source("consul://127.0.0.1:8500/patrol/rules");
        let empty = KvSnapshot {
            index: 3,
            entries: Vec::new(),
        };
        let problems = s.load_snapshot(&empty, &env(&[])).unwrap_err();
        assert_eq!(
            problems[0].message,
            "no rule files under consul://127.0.0.1:8500/patrol/rules (keys ending in .yaml or .yml)"
        );
    }

    #[test]
    fn the_index_resets_when_it_goes_backwards_and_stays_above_zero() {
        assert_eq!(next_index(0, 15), 15);
        assert_eq!(next_index(15, 15), 15, "a timed-out wait");
        assert_eq!(next_index(15, 20), 20);
        assert_eq!(next_index(15, 3), 0, "Consul restarted: start over");
        assert_eq!(next_index(0, 0), 1, "never block on index 0");
    }
}
