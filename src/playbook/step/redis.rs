//! `redis: {target: NAME, command: [GET, key], write, timeout}` — one command (an argv list, each
//! word a template) on a `kind: redis` target of the rules. Output: `steps.<name>.reply`, the
//! reply as JSON (nil → null, arrays → lists, maps → mappings, binary strings → `{base64: …}`).
//!
//! Commands on the read-only list (the `kind: redis` check's list, plus the reads a person runs
//! while diagnosing: HGETALL, SMEMBERS, ZRANGE, SCAN, KEYS…) run anywhere; anything else counts
//! as a write and needs `write: true` on the step AND `allow_write: true` on the target, which
//! `validate` says otherwise. `--dry-run` runs reads and only plans writes (Redis has no
//! transaction to roll back).

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{StepEnv, StepKind, targets};
use crate::config::{Issues, RuleSet, Target, TargetSpec};
use crate::probe::redis::Command;

const KINDS: &[&str] = &["redis"];

/// Reads a playbook may run besides the check's read-only list: they return more than a check
/// could measure, but change nothing.
const MORE_READS: &[&str] = &[
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HSCAN",
    "HRANDFIELD",
    "SMEMBERS",
    "SSCAN",
    "SRANDMEMBER",
    "SINTER",
    "SINTERCARD",
    "SUNION",
    "SDIFF",
    "ZRANGE",
    "ZREVRANGE",
    "ZRANGEBYSCORE",
    "ZREVRANGEBYSCORE",
    "ZRANGEBYLEX",
    "ZREVRANGEBYLEX",
    "ZSCAN",
    "ZRANDMEMBER",
    "XRANGE",
    "XREVRANGE",
    "SCAN",
    "KEYS",
    "RANDOMKEY",
    "DUMP",
    "GEOPOS",
    "GEODIST",
    "GEOHASH",
    "GEOSEARCH",
    "SORT_RO",
    "SUBSTR",
];

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// One Redis command.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisStep {
    /// A `kind: redis` target of the rules.
    pub target: String,
    /// The command and its arguments, one list item each (`[HGET, "user:{{ params.id }}", name]`).
    pub command: Vec<String>,
    /// Let a command that is not on the read-only list run (the target must allow writes too).
    #[serde(default)]
    pub write: bool,
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
}

impl RedisStep {
    /// The command, its name upper-cased; an error when there is none.
    fn parsed(&self) -> Result<Command, String> {
        let (name, args) = self
            .command
            .split_first()
            .filter(|(name, _)| !name.trim().is_empty())
            .ok_or("command is empty: write it as a list, e.g. [GET, key]")?;
        Ok(Command {
            name: name.trim().to_ascii_uppercase(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        })
    }

    /// Whether the command may change data: anything not known to only read.
    pub fn is_write(&self) -> bool {
        match self.parsed() {
            Ok(cmd) => !is_read(&cmd),
            Err(_) => false,
        }
    }

    /// Why the command may not run on `target`, when it may not.
    fn refusal(&self, target: &Target) -> Option<(&'static str, String)> {
        if !self.is_write() {
            return None;
        }
        let name = self.parsed().map(|c| c.name).unwrap_or_default();
        if !self.write {
            return Some((
                "command",
                format!(
                    "{name} may change data (it is not on the read-only list); a write needs \
                     `write: true` on the step and `allow_write: true` on target `{}`",
                    target.name
                ),
            ));
        }
        let allowed = matches!(&target.spec, TargetSpec::Redis(t) if t.allow_write);
        (!allowed).then(|| ("write", targets::writes_not_allowed(target)))
    }
}

/// Whether `cmd` only reads: on the check's read-only list or on [`MORE_READS`].
fn is_read(cmd: &Command) -> bool {
    cmd.check_read_only().is_ok() || MORE_READS.contains(&cmd.name.as_str())
}

impl StepKind for RedisStep {
    fn validate(&self, rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
        let name = match self.parsed() {
            Ok(cmd) => cmd.name,
            Err(e) => {
                issues.at(&["command"], e);
                return;
            }
        };
        let Some(target) = targets::validate(rules, &self.target, KINDS, issues) else {
            return;
        };
        // A templated command name is only known when rendered: the runner checks it again then.
        if name.contains("{{") || name.contains("{%") {
            return;
        }
        if let Some((field, message)) = self.refusal(target) {
            issues.at(&[field], message);
        }
    }

    fn dry_run_safe(&self) -> bool {
        !self.is_write()
    }

    fn describe(&self) -> String {
        let what = if self.is_write() { "write" } else { "read" };
        format!(
            "redis ({what}) on {}: {}",
            self.target,
            self.command.join(" ")
        )
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let target = targets::named(env.rules, &self.target, KINDS)?;
        if let Some((_, message)) = self.refusal(target) {
            return Err(message);
        }
        let url = target.spec.url().unwrap_or_default();
        let reply = send(url, &self.parsed()?, self.timeout)
            .await
            .map_err(|e| crate::secrets::mask_url_password(&e, url))?;
        Ok(json!({ "reply": reply_json(reply)? }))
    }
}

/// Sends `cmd` on one connection, within `timeout` in all.
async fn send(url: &str, cmd: &Command, timeout: Duration) -> Result<redis::Value, String> {
    let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
    let at = client.get_connection_info().addr().to_string();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let work = async {
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect to {at}: {e}"))?;
        let mut request = redis::cmd(&cmd.name);
        for arg in &cmd.args {
            request.arg(arg.as_slice());
        }
        request
            .query_async::<redis::Value>(&mut conn)
            .await
            .map_err(|e| format!("{}: {}", cmd.name, server_words(&e)))
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("{} got no reply from {at} in time", cmd.name)))
}

/// The server's words (`WRONGTYPE Operation against a key…`) without the crate's preamble.
fn server_words(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// A reply as JSON; a server error is the step's error.
fn reply_json(reply: redis::Value) -> Result<Value, String> {
    use redis::Value as R;
    Ok(match reply {
        R::Nil => Value::Null,
        R::Int(n) => json!(n),
        R::Double(n) => json!(n),
        R::Boolean(b) => json!(b),
        R::Okay => json!("OK"),
        R::SimpleString(s) => json!(s),
        R::VerbatimString { text, .. } => json!(text),
        R::BulkString(bytes) => bytes_json(bytes),
        R::Array(items) | R::Set(items) | R::Push { data: items, .. } => Value::Array(
            items
                .into_iter()
                .map(reply_json)
                .collect::<Result<_, _>>()?,
        ),
        R::Map(pairs) => map_json(pairs)?,
        R::Attribute { data, .. } => reply_json(*data)?,
        R::ServerError(e) => {
            return Err(match e.details() {
                Some(d) => format!("{} {d}", e.code()),
                None => e.code().to_string(),
            });
        }
        other => json!(format!("{other:?}")),
    })
}

/// Text when it is UTF-8, else `{base64: …}`.
fn bytes_json(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::String(text),
        Err(e) => {
            json!({ "base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes()) })
        }
    }
}

/// A map reply as a mapping when every key is text, else a list of `[key, value]` pairs.
fn map_json(pairs: Vec<(redis::Value, redis::Value)>) -> Result<Value, String> {
    let pairs: Vec<(Value, Value)> = pairs
        .into_iter()
        .map(|(k, v)| Ok((reply_json(k)?, reply_json(v)?)))
        .collect::<Result<_, String>>()?;
    if pairs.iter().all(|(k, _)| k.is_string()) {
        let map: Map<String, Value> = pairs
            .into_iter()
            .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v))
            .collect();
        return Ok(Value::Object(map));
    }
    Ok(Value::Array(
        pairs.into_iter().map(|(k, v)| json!([k, v])).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::step::test_support::{load, problems, rules};

    const RULES: &str = "targets:\n  ro: { kind: redis, url: \"redis://127.0.0.1:1\" }\n  rw: { kind: redis, url: \"redis://127.0.0.1:1\", allow_write: true }\n";

    fn step(command: &[&str], write: bool) -> RedisStep {
        RedisStep {
            target: "rw".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            write,
            timeout: default_timeout(),
        }
    }

    #[test]
    fn reads_are_the_check_list_plus_diagnosing_reads() {
        for argv in [
            &["GET", "k"][..],
            &["mget", "a", "b"],
            &["HGETALL", "h"],
            &["TTL", "k"],
            &["SCAN", "0", "MATCH", "p:*"],
            &["KEYS", "p:*"],
            &["LRANGE", "l", "0", "-1"],
            &["SMEMBERS", "s"],
            &["ZRANGE", "z", "0", "-1"],
            &["XLEN", "x"],
            &["INFO"],
            &["CLIENT", "LIST"],
            &["PING"],
            &["DBSIZE"],
            &["MEMORY", "USAGE", "k"],
            &["SLOWLOG", "GET", "10"],
            &["CONFIG", "GET", "maxmemory"],
        ] {
            let s = step(argv, false);
            assert!(!s.is_write(), "{argv:?}");
            assert!(s.dry_run_safe(), "{argv:?}");
        }
        for argv in [
            &["SET", "k", "v"][..],
            &["DEL", "k"],
            &["FLUSHALL"],
            &["CONFIG", "SET", "maxmemory", "1"],
            &["CLIENT", "KILL", "ID", "1"],
            &["EVAL", "return 1", "0"],
            &["EXPIRE", "k", "1"],
            &["UNKNOWNCMD"],
        ] {
            let s = step(argv, true);
            assert!(s.is_write(), "{argv:?}");
            assert!(!s.dry_run_safe(), "{argv:?}");
        }
    }

    #[test]
    fn a_write_needs_both_allowances() {
        let rules = rules(RULES);
        let p = problems(
            "  - redis: { target: rw, command: [SET, k, v] }\n  - redis: { target: ro, command: [DEL, k], write: true }\n",
            &rules,
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("pb.yaml:4:35: error: SET may change data (it is not on the read-only list); a write needs `write: true` on the step and `allow_write: true` on target `rw`"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("pb.yaml:5:52: error: target `ro` does not allow writes"),
            "{p:?}"
        );
        load(
            "  - redis: { target: rw, command: [SET, k, v], write: true }\n  - redis: { target: ro, command: [GET, k] }\n",
            &rules,
        )
        .expect("valid");
    }

    #[test]
    fn empty_commands_and_other_targets_are_refused() {
        let rules = rules(
            "targets:\n  db: { kind: sqlite, url: \"sqlite://x.db\" }\n  c: { kind: redis, url: \"redis://127.0.0.1:1\" }\n",
        );
        let p = problems(
            "  - redis: { target: c, command: [] }\n  - redis: { target: db, command: [PING] }\n",
            &rules,
        );
        assert!(p[0].contains("command is empty"), "{p:?}");
        assert!(p[1].contains("target `db` is sqlite, not redis"), "{p:?}");
    }

    #[test]
    fn replies_become_json() {
        use redis::Value as R;
        let reply = R::Array(vec![
            R::Nil,
            R::Int(3),
            R::BulkString(b"text".to_vec()),
            R::BulkString(vec![0xff, 0x00]),
            R::Okay,
            R::Map(vec![(R::SimpleString("a".into()), R::Boolean(true))]),
            R::Map(vec![(R::Int(1), R::Double(0.5))]),
        ]);
        assert_eq!(
            reply_json(reply).unwrap(),
            json!([null, 3, "text", {"base64": "/wA="}, "OK", {"a": true}, [[1, 0.5]]])
        );
    }
}
