//! `redis`: `CLIENT PAUSE <ms> ALL|WRITE` on a redis target of the rules, for the fault window —
//! so the pause ends by itself even if patrol dies; revert sends `CLIENT UNPAUSE` (Redis ≥ 6.2).
//!
//! The journal keeps the target's NAME, never its URL (which may hold a password): a recovery
//! looks the target up in the rules it was given.

use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Fault, FaultContext};
use crate::config::{Issues, TargetSpec};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Which clients a pause holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PauseMode {
    /// Every command of every client.
    #[default]
    All,
    /// Only writes (and other commands that may change data).
    Write,
}

impl PauseMode {
    fn word(self) -> &'static str {
        match self {
            PauseMode::All => "ALL",
            PauseMode::Write => "WRITE",
        }
    }
}

/// A `redis:` fault.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisFault {
    /// A `kind: redis` target of the rules.
    pub target: String,
    /// all (default) or write.
    #[serde(default)]
    pub mode: PauseMode,
}

/// What a redis fault's revert needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedisState {
    pub target: String,
    pub mode: PauseMode,
    /// When the server ends the pause by itself.
    pub until: DateTime<Utc>,
}

impl Fault for RedisFault {
    type State = RedisState;

    fn validate(&self, issues: &mut Issues) {
        if self.target.trim().is_empty() {
            issues.at(
                &["target"],
                "target: the name of a redis target is required",
            );
        }
    }

    fn describe(&self) -> String {
        format!(
            "CLIENT PAUSE {} on redis target `{}` for the fault window, CLIENT UNPAUSE on revert \
             (blast radius: every client of that server)",
            self.mode.word(),
            self.target
        )
    }

    async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
        let mut server = Server::connect(ctx, &self.target).await?;
        let info: String = server.query(redis::cmd("INFO").arg("server")).await?;
        let version = crate::probe::redis::info_field(&info, "redis_version")
            .ok_or_else(|| format!("{}: INFO server has no redis_version", server.at))?;
        if version_at_least(&version, (6, 2)) {
            Ok(())
        } else {
            Err(format!(
                "{} runs Redis {version}: CLIENT PAUSE WRITE and CLIENT UNPAUSE need 6.2 or later",
                server.at
            ))
        }
    }

    async fn inject(&self, ctx: &FaultContext, window: Duration) -> Result<RedisState, String> {
        let ms = window.as_millis().max(1);
        let mut server = Server::connect(ctx, &self.target).await?;
        let until = Utc::now() + window;
        let _: () = server
            .query(
                redis::cmd("CLIENT")
                    .arg("PAUSE")
                    .arg(ms.to_string())
                    .arg(self.mode.word()),
            )
            .await?;
        Ok(RedisState {
            target: self.target.clone(),
            mode: self.mode,
            until,
        })
    }

    async fn revert(ctx: &FaultContext, state: &RedisState) -> Result<String, String> {
        let mut server = match Server::connect(ctx, &state.target).await {
            Ok(s) => s,
            Err(e) if Utc::now() >= state.until => {
                return Ok(format!(
                    "the pause ended by itself at {} ({e})",
                    state.until.format("%H:%M:%S")
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{e}; the pause ends by itself at {}",
                    state.until.format("%H:%M:%S")
                ));
            }
        };
        unpause(&mut server).await
    }

    async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
        let mut server = Server::connect(ctx, &self.target).await?;
        unpause(&mut server).await
    }
}

async fn unpause(server: &mut Server) -> Result<String, String> {
    let _: () = server.query(redis::cmd("CLIENT").arg("UNPAUSE")).await?;
    Ok(format!("CLIENT UNPAUSE on {}", server.at))
}

/// One connection to a redis target, with its address for messages (never its URL).
struct Server {
    conn: redis::aio::MultiplexedConnection,
    at: String,
}

impl Server {
    async fn connect(ctx: &FaultContext, target: &str) -> Result<Server, String> {
        let url = match ctx.rules.targets.get(target).map(|t| &t.spec) {
            Some(TargetSpec::Redis(t)) => t.url.clone(),
            Some(other) => {
                return Err(format!(
                    "target `{target}` is a {} target, not redis",
                    other.kind()
                ));
            }
            None => return Err(format!("no target `{target}` in the rules")),
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|e| format!("target `{target}`: invalid Redis URL: {e}"))?;
        let at = client.get_connection_info().addr().to_string();
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect to {at}: {}", server_words(&e)))?;
        Ok(Server { conn, at })
    }

    async fn query<T: redis::FromRedisValue>(&mut self, cmd: &mut redis::Cmd) -> Result<T, String> {
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut self.conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{}: {}", self.at, server_words(&e))),
            Err(_) => Err(format!(
                "{}: no reply within {}s",
                self.at,
                TIMEOUT.as_secs()
            )),
        }
    }
}

/// The server's words, without the crate's preamble.
fn server_words(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// Whether `version` ("7.0.15") is at least `(major, minor)`.
fn version_at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::FaultSpec;
    use crate::chaos::fault::test_support::{issues_of, spec_of};

    #[test]
    fn a_redis_fault_parses_with_mode_all_by_default() {
        let spec = spec_of("redis", "{ target: cache }");
        let FaultSpec::Redis(r) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(r.mode, PauseMode::All);
        assert!(issues_of(&spec).is_empty());
        let spec = spec_of("redis", "{ target: cache, mode: write }");
        assert!(
            spec.describe()
                .starts_with("CLIENT PAUSE WRITE on redis target `cache`")
        );
        assert_eq!(issues_of(&spec_of("redis", "{ target: ' ' }")).len(), 1);
    }

    #[test]
    fn versions_compare() {
        assert!(version_at_least("7.0.15", (6, 2)));
        assert!(version_at_least("6.2.0", (6, 2)));
        assert!(!version_at_least("6.0.9", (6, 2)));
        assert!(!version_at_least("5.0", (6, 2)));
    }
}
