//! `kind: grpc` — placeholder while the probe is being written.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbe {}

impl Probe for GrpcProbe {
    const TARGET_KINDS: &'static [&'static str] = &["grpc"];

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("kind: grpc is not written yet"))
    }
}
