//! `kind: tls` — TLS handshake with `address`; value = days until the leaf certificate expires;
//! a chain that does not verify is `crit`.
//!
//! The handshake is allowed to finish whatever the chain's verdict (see [`crate::tls`]), so an
//! expired or self-signed certificate still reports its days left next to the reason it failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::ServerName;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::config::{CheckCommon, Issues, TargetSpec, duration};
use crate::result::Value;

/// Port of `address` values written without one.
const DEFAULT_PORT: u16 = 443;

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

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if let Some(name) = &self.server_name
            && ServerName::try_from(name.as_str()).is_err()
        {
            issues.at(
                &["server_name"],
                format!("{name:?} is not a DNS name or IP address"),
            );
        }
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let (host, port) = endpoint(ctx)?;
        let name = self.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| ProbeError::new(format!("invalid server name {name:?}")))?;
        let base_dir = ctx.check.origin.file.parent().unwrap_or(Path::new(""));
        let extra = match &self.ca_file {
            Some(p) => crate::tls::read_ca_file(&crate::tls::resolve_path(base_dir, p))
                .map_err(ProbeError::new)?,
            None => Vec::new(),
        };
        let roots = crate::tls::root_store(&extra).map_err(ProbeError::new)?;
        let (config, verdict) = crate::tls::recording_config(roots).map_err(ProbeError::new)?;
        let where_ = display_endpoint(&host, port);
        let handshake = async {
            let tcp = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| ProbeError::new(format!("connect to {where_} failed: {e}")))?;
            let tls = TlsConnector::from(Arc::new(config))
                .connect(server_name, tcp)
                .await
                .map_err(|e| {
                    ProbeError::new(format!(
                        "TLS handshake with {where_} failed: {}",
                        ProbeError::from(e)
                    ))
                })?;
            let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
            leaf.map(|c| c.to_vec())
                .ok_or_else(|| ProbeError::new(format!("{where_} sent no certificate")))
        };
        let leaf = tokio::time::timeout(ctx.timeout, handshake)
            .await
            .map_err(|_| {
                ProbeError::new(format!(
                    "TLS handshake with {where_} timed out after {}",
                    duration::format(ctx.timeout)
                ))
            })??;
        let days = crate::tls::days_left(&leaf, SystemTime::now()).map_err(ProbeError::new)?;
        let mut m = Measurement {
            samples: vec![Sample::single(Value::Num(days))],
            unit: "days".into(),
            failures: Vec::new(),
            ..Default::default()
        };
        match verdict.get() {
            Some(Ok(())) => {}
            Some(Err(reason)) => m
                .failures
                .push(format!("certificate chain invalid: {reason}")),
            None => m
                .failures
                .push("certificate chain invalid: it was never verified".into()),
        }
        Ok(m)
    }
}

/// Host and port to connect to: a tcp target's `address` (port 443 when missing) or an http
/// target's URL.
fn endpoint(ctx: &ProbeContext<'_>) -> Result<(String, u16), ProbeError> {
    match ctx.target().map(|t| &t.spec) {
        Some(TargetSpec::Tcp(t)) => {
            split_host_port(&t.address, DEFAULT_PORT).map_err(ProbeError::new)
        }
        Some(TargetSpec::Http(h)) => {
            // The URL may carry credentials: name the problem, not the URL.
            let url = reqwest::Url::parse(&h.url)
                .map_err(|e| ProbeError::new(format!("invalid target URL: {e}")))?;
            let host = url
                .host_str()
                .ok_or_else(|| ProbeError::new("the target URL has no host"))?;
            let port = url.port_or_known_default().unwrap_or(DEFAULT_PORT);
            Ok((
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port,
            ))
        }
        _ => Err(ProbeError::new(
            "a tls check needs a tcp or http target, or an inline address",
        )),
    }
}

/// `host:port`, `[v6]:port`, a bare host or a bare IPv6 address (then with `default_port`).
pub(crate) fn split_host_port(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let a = address.trim();
    let port_of = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in address {a:?}"))
    };
    if let Some(rest) = a.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed [ in address {a:?}"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), port_of(p)?)),
            None if after.is_empty() => Ok((host.to_string(), default_port)),
            None => Err(format!("unexpected {after:?} after ] in address {a:?}")),
        };
    }
    match a.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((a.to_string(), default_port)),
        Some((host, p)) if !host.is_empty() => Ok((host.to_string(), port_of(p)?)),
        Some(_) => Err(format!("address {a:?} has no host")),
        None if a.is_empty() => Err("address is empty".into()),
        None => Ok((a.to_string(), default_port)),
    }
}

fn display_endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_host_port("example.com:8443", 443),
            Ok(("example.com".into(), 8443))
        );
        assert_eq!(
            split_host_port("example.com", 443),
            Ok(("example.com".into(), 443))
        );
        assert_eq!(split_host_port("[::1]:9443", 443), Ok(("::1".into(), 9443)));
        assert_eq!(split_host_port("[::1]", 443), Ok(("::1".into(), 443)));
        assert_eq!(split_host_port("::1", 443), Ok(("::1".into(), 443)));
        assert_eq!(
            split_host_port(" 10.0.0.1:443 ", 1),
            Ok(("10.0.0.1".into(), 443))
        );
    }

    #[test]
    fn malformed_addresses_are_errors() {
        assert!(
            split_host_port("host:http", 443)
                .unwrap_err()
                .contains("invalid port")
        );
        assert!(
            split_host_port(":443", 443)
                .unwrap_err()
                .contains("no host")
        );
        assert!(
            split_host_port("[::1", 443)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(split_host_port("", 443).is_err());
    }

    #[test]
    fn endpoints_are_displayed_with_brackets_for_ipv6() {
        assert_eq!(display_endpoint("::1", 443), "[::1]:443");
        assert_eq!(display_endpoint("db", 5432), "db:5432");
    }
}
