//! Opening a gRPC channel to the check's server: which address and trust settings its target
//! gives, and the TLS verifier that applies them (patrol's own trust rules from [`crate::tls`],
//! not tonic's defaults, so `ca_file` and `insecure_skip_verify` behave as for HTTP checks).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use tonic::metadata::{Ascii, MetadataKey, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::address::{GrpcAddress, parse_grpc_url};
use crate::config::{TargetSpec, TlsOptions, duration};
use crate::probe::{ProbeContext, ProbeError};

/// The server a check talks to and how it trusts it.
pub struct Server {
    pub address: GrpcAddress,
    tls: TlsOptions,
    base_dir: std::path::PathBuf,
    /// Headers of an http target, sent as request metadata (credentials for a proxy in front).
    pub metadata: BTreeMap<String, String>,
}

impl Server {
    /// The check's server: a `kind: grpc` target, an http(s) URL (inline `url:`), or a plaintext
    /// `host:port` (inline `address:`).
    pub fn of(ctx: &ProbeContext<'_>) -> Result<Server, ProbeError> {
        let target = ctx.target().ok_or_else(|| {
            ProbeError::new("a grpc check needs a grpc target, a url or an address")
        })?;
        let none = BTreeMap::new;
        let (url, tls, metadata) = match &target.spec {
            TargetSpec::Grpc(g) => (g.url.clone(), g.tls.clone(), none()),
            TargetSpec::Http(h) => (h.url.clone(), h.tls.clone(), h.headers.clone()),
            TargetSpec::Tcp(t) => (
                format!("http://{}", t.address),
                TlsOptions::default(),
                none(),
            ),
            other => {
                return Err(ProbeError::new(format!(
                    "a grpc check cannot use a {} target",
                    other.kind()
                )));
            }
        };
        Ok(Server {
            address: parse_grpc_url(&url).map_err(ProbeError::new)?,
            tls,
            base_dir: target.base_dir.clone(),
            metadata,
        })
    }

    /// Adds the target's headers to `request` as gRPC metadata.
    pub fn add_metadata<T>(&self, request: &mut tonic::Request<T>) -> Result<(), ProbeError> {
        for (name, value) in &self.metadata {
            let key = MetadataKey::<Ascii>::from_bytes(name.trim().to_ascii_lowercase().as_bytes())
                .map_err(|_| ProbeError::new(format!("invalid header name {name:?}")))?;
            // The value may be a secret: name the header only.
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|_| ProbeError::new(format!("invalid value for header {name}")))?;
            request.metadata_mut().insert(key, value);
        }
        Ok(())
    }

    /// A channel with an HTTP/2 connection to the server, within `timeout`.
    pub async fn connect(&self, timeout: Duration) -> Result<Channel, ProbeError> {
        let where_ = self.address.host_port();
        let mut endpoint = Endpoint::from_shared(self.address.uri())
            .map_err(|e| ProbeError::new(format!("invalid gRPC address {where_}: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("patrol/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| ProbeError::new(format!("invalid user agent: {e}")))?;
        if self.address.tls {
            let config = ClientTlsConfig::new()
                .domain_name(self.address.host.clone())
                .timeout(timeout);
            endpoint = endpoint
                .tls_config_with_verifier(config, verifier(&self.tls, &self.base_dir)?)
                .map_err(|e| {
                    ProbeError::new(format!(
                        "cannot set up TLS for {where_}: {}",
                        ProbeError::from(e)
                    ))
                })?;
        }
        match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => {
                let cause = ProbeError::from(e).0;
                Err(ProbeError::new(format!(
                    "connect to {where_} failed: {cause}{}",
                    hint(&cause)
                )))
            }
            Err(_) => Err(ProbeError::new(format!(
                "connect to {where_} timed out after {}",
                duration::format(timeout)
            ))),
        }
    }
}

/// What the usual TLS failures mean, for messages that otherwise only name rustls' reason.
fn hint(cause: &str) -> &'static str {
    const HINTS: &[(&str, &str)] = &[
        (
            "UnknownIssuer",
            " (the certificate chain does not lead to a trusted CA: set the target's \
             tls.ca_file, or tls.insecure_skip_verify for a test system)",
        ),
        (
            "NotValidForName",
            " (the certificate is not valid for this host name)",
        ),
        ("Expired", " (the server's certificate has expired)"),
        (
            "NoApplicationProtocol",
            " (the server does not offer HTTP/2 over TLS, ALPN h2: is it a gRPC server?)",
        ),
        (
            "InvalidContentType",
            " (the server does not speak TLS: use http:// for plaintext)",
        ),
    ];
    HINTS
        .iter()
        .find(|(reason, _)| cause.contains(reason))
        .map_or("", |(_, hint)| hint)
}

/// The certificate verifier `tls` asks for: any certificate, or the public roots plus the
/// `ca_file` (relative to the rule file's directory).
fn verifier(tls: &TlsOptions, base_dir: &Path) -> Result<Arc<dyn ServerCertVerifier>, ProbeError> {
    if tls.insecure_skip_verify {
        return Ok(crate::tls::insecure_verifier());
    }
    let extra = match &tls.ca_file {
        Some(p) => crate::tls::read_ca_file(&crate::tls::resolve_path(base_dir, p))
            .map_err(ProbeError::new)?,
        None => Vec::new(),
    };
    let roots = crate::tls::root_store(&extra).map_err(ProbeError::new)?;
    Ok(crate::tls::webpki_verifier(roots).map_err(ProbeError::new)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_get_a_hint() {
        let cause = "transport error: invalid peer certificate: UnknownIssuer";
        assert!(hint(cause).contains("tls.ca_file"));
        assert!(hint("received fatal alert: NoApplicationProtocol").contains("ALPN h2"));
        assert_eq!(hint("tcp connect error: Connection refused"), "");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let tls = TlsOptions {
            ca_file: Some("missing-ca.pem".into()),
            ..Default::default()
        };
        let err = verifier(&tls, Path::new("/nonexistent-rules")).unwrap_err();
        assert!(
            err.0
                .starts_with("ca_file /nonexistent-rules/missing-ca.pem: "),
            "{err}"
        );
    }
}
