//! `kind: dns` — resolves `query_name` (not `name`, which is the check's own name); value = resolve time in ms; `expect: {answers, contains}`.
//!
//! With `nameserver:` the resolver asks that server only (UDP, then TCP); without, it follows the
//! system configuration. A name that does not exist (NXDOMAIN) or has no records of the type is
//! an *answer* — zero records, judged by `expect.answers` — while a server that does not answer is
//! an `error`: the check could not learn anything.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType as WireType;
use hickory_resolver::{Resolver, TokioResolver};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues};
use crate::result::Value;

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

impl RecordType {
    fn wire(self) -> WireType {
        match self {
            RecordType::A => WireType::A,
            RecordType::Aaaa => WireType::AAAA,
            RecordType::Cname => WireType::CNAME,
            RecordType::Txt => WireType::TXT,
            RecordType::Mx => WireType::MX,
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsProbe {
    /// Name to resolve. (`name` is the check's own name, so two checks can ask for A and AAAA of
    /// the same host; Gatus calls this field `query-name` too.)
    pub query_name: String,
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
        if self.query_name.trim().is_empty() {
            issues.at(&["query_name"], "query_name is empty");
        }
        issues.condition(&["expect", "answers"], self.expect.answers.as_ref());
        if let Some(ns) = &self.nameserver
            && let Err(e) = parse_nameserver(ns)
        {
            issues.at(&["nameserver"], e);
        }
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let (resolver, server) = self.resolver(ctx.timeout)?;
        let wanted = self.record_type.wire();
        let started = Instant::now();
        let lookup = tokio::time::timeout(
            ctx.timeout,
            resolver.lookup(self.query_name.as_str(), wanted),
        )
        .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let answers = match lookup {
            Ok(Ok(found)) => Answers {
                records: found
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == wanted)
                    .map(|r| r.data.to_string())
                    .collect(),
                why_none: String::new(),
            },
            Ok(Err(e)) if e.is_no_records_found() => Answers {
                records: Vec::new(),
                why_none: if e.is_nx_domain() {
                    "NXDOMAIN".into()
                } else {
                    format!("no {wanted} records")
                },
            },
            Ok(Err(e)) => {
                return Err(ProbeError::new(format!(
                    "resolving {} {wanted} via {server}: {e}",
                    self.query_name
                )));
            }
            Err(_) => {
                return Err(ProbeError::new(format!(
                    "no answer from {server} within {}",
                    crate::config::duration::format(ctx.timeout)
                )));
            }
        };
        Ok(Measurement {
            samples: vec![Sample::single(Value::Num(
                (elapsed_ms * 1000.0).round() / 1000.0,
            ))],
            unit: "ms".into(),
            failures: self.expect.failures(&answers),
            ..Default::default()
        })
    }
}

/// The records of the asked type, as text (`10.0.0.1`, `10 mail.example.com.`), and why there are
/// none when there are none.
struct Answers {
    records: Vec<String>,
    why_none: String,
}

impl DnsExpect {
    fn failures(&self, answers: &Answers) -> Vec<String> {
        let mut failures = Vec::new();
        let count = answers.records.len();
        if let Some(cond) = &self.answers
            && !cond.matches(&Value::Num(count as f64))
        {
            let why = if answers.why_none.is_empty() {
                String::new()
            } else {
                format!(" ({})", answers.why_none)
            };
            failures.push(format!("answers: {count} answers, expected {cond}{why}"));
        }
        if let Some(text) = &self.contains {
            let needle = text.to_lowercase();
            if !answers
                .records
                .iter()
                .any(|r| r.to_lowercase().contains(&needle))
            {
                let got = if count == 0 {
                    answers.why_none.clone()
                } else {
                    answers.records.join(", ")
                };
                failures.push(format!("contains: no answer contains {text:?} (got {got})"));
            }
        }
        failures
    }
}

impl DnsProbe {
    /// A resolver for one run, and how messages name the server(s) it asks.
    fn resolver(&self, timeout: Duration) -> Result<(TokioResolver, String), ProbeError> {
        let (mut builder, server) = match &self.nameserver {
            Some(ns) => {
                let addr = parse_nameserver(ns).map_err(ProbeError)?;
                let config = ResolverConfig::from_name_servers(vec![only_server(addr)]);
                (
                    Resolver::builder_with_config(config, TokioRuntimeProvider::default()),
                    addr.to_string(),
                )
            }
            None => {
                let builder = TokioResolver::builder_tokio().map_err(|e| {
                    ProbeError::new(format!(
                        "cannot read the system resolver configuration: {e}"
                    ))
                })?;
                (builder, "the system resolver".to_string())
            }
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        // No retries: the check's timeout is the whole budget, and a lost answer is the finding.
        opts.attempts = 0;
        opts.try_tcp_on_error = true;
        if self.nameserver.is_some() {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        let resolver = builder
            .build()
            .map_err(|e| ProbeError::new(format!("cannot build a resolver: {e}")))?;
        Ok((resolver, server))
    }
}

/// A name server asked over UDP and, when UDP fails or the answer is truncated, TCP.
fn only_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
}

/// `ip`, `ip:port` or `[v6]:port`; port 53 when none is given.
fn parse_nameserver(ns: &str) -> Result<SocketAddr, String> {
    let ns = ns.trim();
    ns.parse::<SocketAddr>()
        .or_else(|_| ns.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("nameserver {ns:?} is not an ip or ip:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_default_to_port_53() {
        assert_eq!(
            parse_nameserver("10.0.0.2"),
            Ok("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(parse_nameserver("::1"), Ok("[::1]:53".parse().unwrap()));
        assert!(parse_nameserver("dns.google").is_err());
    }

    #[test]
    fn expectations_name_what_failed() {
        let expect = DnsExpect {
            answers: Some(Condition::parse("ge(1)")),
            contains: Some("10.0.0.9".into()),
        };
        let none = Answers {
            records: Vec::new(),
            why_none: "NXDOMAIN".into(),
        };
        assert_eq!(
            expect.failures(&none),
            vec![
                "answers: 0 answers, expected ge(1) (NXDOMAIN)".to_string(),
                "contains: no answer contains \"10.0.0.9\" (got NXDOMAIN)".to_string()
            ]
        );
        let some = Answers {
            records: vec!["10.0.0.1".into(), "10.0.0.9".into()],
            why_none: String::new(),
        };
        assert!(expect.failures(&some).is_empty());
    }
}
