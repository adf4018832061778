//! `kind: tcp` — connect time in ms; optionally sends bytes and expects a banner.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    /// Bytes to send after connecting (escapes \r \n \t \\ \xHH).
    #[serde(default)]
    pub send: Option<String>,
    /// Bytes the peer must send (a banner such as "SSH-2.0"); missing = `crit`.
    #[serde(default)]
    pub expect: Option<String>,
}

impl Probe for TcpProbe {
    const TARGET_KINDS: &'static [&'static str] = &["tcp"];

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("PLACEHOLDER: tcp probe"))
    }
}
