//! `kind: redis` — a read-only command (`PING`, `INFO replication`, `LLEN key`, `DBSIZE`,
//! `CLUSTER INFO`, …); `field:` picks a field of INFO / CLUSTER INFO output.
//!
//! One plain connection per run with a connect timeout and no retries: a dead server must be
//! reported as dead within the check's timeout, not after a reconnect loop.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::config::{CheckCommon, Issues, TargetSpec};

mod command;
mod reply;

pub use command::{Command, split_args};
pub use reply::info_field;

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisProbe {
    /// The command and its arguments, as typed in redis-cli. Only read-only commands.
    pub command: String,
    /// Field of `INFO` / `CLUSTER INFO` output to measure (`master_link_status`, `connected_clients`).
    #[serde(default)]
    pub field: Option<String>,
}

impl Probe for RedisProbe {
    const TARGET_KINDS: &'static [&'static str] = &["redis"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if let Err(e) = Command::read_only(&self.command) {
            issues.at(&["command"], e);
        }
        if self.field.as_deref().is_some_and(|f| f.trim().is_empty()) {
            issues.at(&["field"], "field is empty");
        }
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        // Checked again here: a check built in code never went through `patrol validate`.
        let command = Command::read_only(&self.command).map_err(ProbeError)?;
        let url = match ctx.target().map(|t| &t.spec) {
            Some(TargetSpec::Redis(t)) => t.url.as_str(),
            _ => return Err(ProbeError::new("a redis check needs a redis target or url")),
        };
        let client = redis::Client::open(url)
            .map_err(|e| ProbeError::new(format!("invalid Redis URL: {e}")))?;
        let at = client.get_connection_info().addr().to_string();
        let deadline = tokio::time::Instant::now() + ctx.timeout;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ctx.timeout))
            .set_response_timeout(Some(ctx.timeout));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| ProbeError::new(format!("cannot connect to {at}: {e}")))?;
        let mut cmd = redis::cmd(&command.name);
        for arg in &command.args {
            cmd.arg(arg.as_slice());
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let reply =
            match tokio::time::timeout(left, cmd.query_async::<redis::Value>(&mut conn)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    return Err(ProbeError::new(format!(
                        "{}: {}",
                        command.name,
                        redis_error(&e)
                    )));
                }
                Err(_) => {
                    return Err(ProbeError::new(format!(
                        "{} got no reply from {at} in time",
                        command.name
                    )));
                }
            };
        reply::measure_reply(reply, self.field.as_deref())
    }
}

/// The server's words (`ERR This instance has cluster support disabled`), without the crate's
/// "An error was signalled by the server -" preamble.
fn redis_error(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}
