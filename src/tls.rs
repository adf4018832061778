//! Shared rustls client configurations: public roots (webpki-roots) plus an optional CA file, an
//! "accept any certificate" mode for self-signed test systems, and a recording verifier that lets a
//! handshake finish whatever the chain's verdict, so the `tls` probe can still read the leaf and
//! report its days left next to the reason the chain is invalid.
//!
//! Every configuration uses the ring provider explicitly, so nothing here depends on a process-wide
//! default having been installed first.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

/// The ring provider every patrol TLS client uses.
pub fn provider() -> Arc<CryptoProvider> {
    PROVIDER.clone()
}

/// `path` resolved against `base` (the directory of the rule file that named it) when relative.
pub fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Reads the certificates of a PEM file. A file without any certificate is an error: trusting
/// "nothing extra" silently would hide a wrong path or a key file given by mistake.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    parse_ca_pem(&pem).map_err(|e| format!("ca_file {}: {e}", path.display()))
}

/// The certificates of PEM text (other PEM sections are skipped).
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE found in the PEM data".into());
    }
    Ok(certs)
}

/// The public roots plus `extra` CA certificates.
pub fn root_store(extra: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("CA certificate not usable as a trust anchor: {e}"))?;
    }
    Ok(Arc::new(roots))
}

/// A configuration that verifies chains and names against `roots`.
pub fn verifying_config(roots: Arc<RootCertStore>) -> Result<ClientConfig, String> {
    let verifier = webpki_verifier(roots)?;
    Ok(config_with(verifier))
}

/// A configuration that accepts any certificate (`insecure_skip_verify`). Handshake signatures are
/// still checked, so the peer must hold the key of the certificate it shows.
pub fn insecure_config() -> ClientConfig {
    config_with(insecure_verifier())
}

/// The verifier behind [`insecure_config`], for clients that take a verifier rather than a whole
/// configuration (tonic).
pub fn insecure_verifier() -> Arc<dyn ServerCertVerifier> {
    Arc::new(Verifier::new(ChainPolicy::AcceptAny))
}

/// A configuration whose handshake succeeds whatever the chain's verdict, and the place that
/// verdict is written to. Build one per connection: the verdict belongs to a single handshake.
pub fn recording_config(
    roots: Arc<RootCertStore>,
) -> Result<(ClientConfig, Arc<ChainVerdict>), String> {
    let verdict = Arc::new(ChainVerdict::default());
    let verifier = Verifier::new(ChainPolicy::Record {
        webpki: webpki_verifier(roots)?,
        verdict: verdict.clone(),
    });
    Ok((config_with(Arc::new(verifier)), verdict))
}

pub fn webpki_verifier(roots: Arc<RootCertStore>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| format!("cannot build certificate verifier: {e}"))
}

fn config_with(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// Days from `now` until the certificate (DER) expires; negative once it has.
pub fn days_left(der: &[u8], now: SystemTime) -> Result<f64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot parse the server certificate: {e}"))?;
    let not_after = cert.validity().not_after.timestamp() as f64;
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Ok((not_after - now) / 86_400.0)
}

/// The outcome of verifying one server's chain: `None` until the handshake got that far.
#[derive(Debug, Default)]
pub struct ChainVerdict(Mutex<Option<Result<(), String>>>);

impl ChainVerdict {
    pub fn get(&self) -> Option<Result<(), String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, outcome: Result<(), String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }
}

/// Readable reason for a rejected chain: rustls shows several reasons only by their variant name
/// (`UnknownIssuer`) and times as UNIX seconds.
fn describe_rejection(e: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    let at = |t: UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map_or_else(|| format!("{} (UNIX)", t.as_secs()), |d| d.to_rfc3339())
    };
    let rustls::Error::InvalidCertificate(c) = e else {
        return e.to_string();
    };
    match c {
        E::UnknownIssuer => "unknown issuer: the chain does not lead to a trusted CA (self-signed, or a private CA without ca_file)".into(),
        E::BadSignature => "bad signature".into(),
        E::Expired => "certificate expired".into(),
        E::ExpiredContext { not_after, .. } => format!("certificate expired at {}", at(*not_after)),
        E::NotValidYet => "certificate not valid yet".into(),
        E::NotValidYetContext { not_before, .. } => format!("certificate not valid before {}", at(*not_before)),
        E::Revoked => "certificate revoked".into(),
        E::NotValidForName => "certificate not valid for the server name".into(),
        E::UnhandledCriticalExtension => "certificate has an unhandled critical extension".into(),
        E::BadEncoding => "certificate is badly encoded".into(),
        other => other.to_string(),
    }
}

/// What a [`Verifier`] makes of the server's certificate chain.
#[derive(Debug)]
enum ChainPolicy {
    /// Accept any certificate (`insecure_skip_verify`).
    AcceptAny,
    /// Verify like the webpki verifier but record the verdict instead of failing the handshake.
    Record {
        webpki: Arc<WebPkiServerVerifier>,
        verdict: Arc<ChainVerdict>,
    },
}

/// The verifier of patrol's own configurations: the chain as its [`ChainPolicy`] says, and
/// handshake signatures always checked against the presented key, with the provider's algorithms
/// (the same ones the webpki verifier uses).
#[derive(Debug)]
struct Verifier {
    chain: ChainPolicy,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(chain: ChainPolicy) -> Verifier {
        Verifier {
            chain,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let ChainPolicy::Record { webpki, verdict } = &self.chain {
            let outcome = webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| describe_rejection(&e));
            verdict.set(outcome);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn relative_paths_resolve_against_the_rule_directory() {
        assert_eq!(
            resolve_path(Path::new("/rules/team"), Path::new("ca.pem")),
            PathBuf::from("/rules/team/ca.pem")
        );
        assert_eq!(
            resolve_path(Path::new("/rules"), Path::new("/etc/ca.pem")),
            PathBuf::from("/etc/ca.pem")
        );
    }

    #[test]
    fn pem_without_certificates_is_rejected() {
        let err = parse_ca_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(err.contains("no CERTIFICATE"), "{err}");
        assert!(parse_ca_pem(b"").is_err());
    }

    #[test]
    fn public_roots_are_loaded_and_configs_build() {
        let roots = root_store(&[]).unwrap();
        assert!(roots.len() > 50, "webpki roots: {}", roots.len());
        verifying_config(roots.clone()).unwrap();
        let (_, verdict) = recording_config(roots).unwrap();
        assert_eq!(verdict.get(), None);
        let _ = insecure_config();
    }

    #[test]
    fn rejections_read_as_sentences() {
        let invalid = |c| rustls::Error::InvalidCertificate(c);
        let unknown = describe_rejection(&invalid(rustls::CertificateError::UnknownIssuer));
        assert!(unknown.starts_with("unknown issuer: "), "{unknown}");
        let expired = describe_rejection(&invalid(rustls::CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_100_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
        }));
        assert_eq!(expired, "certificate expired at 2023-11-14T22:13:20+00:00");
        assert_eq!(
            describe_rejection(&rustls::Error::HandshakeNotComplete),
            rustls::Error::HandshakeNotComplete.to_string()
        );
    }

    #[test]
    fn days_left_of_garbage_is_an_error() {
        let err = days_left(
            b"not a certificate",
            SystemTime::now() + Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.contains("cannot parse"), "{err}");
    }
}
