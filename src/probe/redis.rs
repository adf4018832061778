//! `kind: redis` — a read-only command (`PING`, `INFO replication`, `LLEN key`, `DBSIZE`,
//! `CLUSTER INFO`, …); `field:` picks a field of INFO / CLUSTER INFO output.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::config::{CheckCommon, Issues};

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

    fn validate(&self, _check: &CheckCommon, _issues: &mut Issues) {}

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("PLACEHOLDER: redis probe"))
    }
}
