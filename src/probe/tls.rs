//! `kind: tls` — TLS handshake with `address`; value = days until the leaf certificate expires;
//! a chain that does not verify is `crit`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsProbe {
    /// Name to verify the certificate for (default: the host of the address).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file with CA certificates to trust besides the public roots (relative to the rule file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Probe for TlsProbe {
    const TARGET_KINDS: &'static [&'static str] = &["tcp", "http"];

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("PLACEHOLDER: tls probe"))
    }
}
