//! `kind: dns` — resolves `name`; value = resolve time in ms; `expect: {answers, contains}`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum RecordType {
    #[default]
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "MX")]
    Mx,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsProbe {
    /// Name to resolve.
    pub name: String,
    #[serde(default)]
    pub record_type: RecordType,
    /// `ip:port` of the DNS server to ask (default: the system resolver).
    #[serde(default)]
    pub nameserver: Option<String>,
    #[serde(default)]
    pub expect: DnsExpect,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DnsExpect {
    /// Condition on the number of answers.
    pub answers: Option<Condition>,
    /// Text one of the answers must contain (an address, a CNAME target, …).
    pub contains: Option<String>,
}

impl Probe for DnsProbe {
    const TARGET_KINDS: &'static [&'static str] = &[];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if self.name.trim().is_empty() {
            issues.at(&["name"], "name is empty");
        }
        issues.condition(&["expect", "answers"], self.expect.answers.as_ref());
        if let Some(ns) = &self.nameserver
            && ns.parse::<std::net::SocketAddr>().is_err()
            && ns.parse::<std::net::IpAddr>().is_err()
        {
            issues.at(&["nameserver"], format!("nameserver {ns:?} is not an ip or ip:port"));
        }
    }

    async fn measure(&self, _ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        Err(ProbeError::new("PLACEHOLDER: dns probe"))
    }
}
