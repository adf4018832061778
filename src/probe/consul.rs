//! `kind: consul` — placeholder while the probe is being written.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsulProbe {}

impl Probe for ConsulProbe {
    const TARGET_KINDS: &'static [&'static str] = &["consul"];

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("kind: consul is not written yet"))
    }
}
