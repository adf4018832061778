//! Sending one HTTP request: which URL, headers and trust settings apply, a process-wide cache of
//! reqwest clients (a run of 1,000 checks must not build 1,000 TLS configurations and connection
//! pools), and the exchange itself with its timing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::{HttpProbe, HttpValue};
use crate::config::{TargetSpec, TlsOptions, duration};
use crate::probe::{ProbeContext, ProbeError};

/// Bodies are kept up to this size for `json:` and `body_matches`; `body_bytes` counts them whole.
const BODY_KEEP_LIMIT: usize = 16 * 1024 * 1024;

/// Redirects followed at most, like browsers and curl's usual settings.
const MAX_REDIRECTS: usize = 10;

/// Which certificates a client trusts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Trust {
    PublicRoots,
    /// Public roots plus the CA certificates of this PEM text (keyed by content, so an edited file
    /// gets a new client).
    PublicRootsAnd(Vec<u8>),
    AnyCertificate,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ClientKey {
    trust: Trust,
    follow_redirects: bool,
}

static CLIENTS: LazyLock<Mutex<HashMap<ClientKey, reqwest::Client>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Everything needed to send the request, worked out before anything goes on the wire.
pub(super) struct Plan {
    pub url: Url,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Option<String>,
    client: ClientKey,
}

/// What came back.
pub(super) struct Exchange {
    pub status: u16,
    /// From sending the request until the last body byte arrived.
    pub latency_ms: f64,
    pub headers: HeaderMap,
    /// The body, up to [`BODY_KEEP_LIMIT`].
    pub body: Vec<u8>,
    /// Size of the whole body.
    pub body_bytes: u64,
    /// DER of the server's leaf certificate (HTTPS only).
    pub peer_certificate: Option<Vec<u8>>,
}

impl Exchange {
    pub fn body_truncated(&self) -> bool {
        self.body_bytes > self.body.len() as u64
    }
}

impl Plan {
    pub fn new(probe: &HttpProbe, ctx: &ProbeContext<'_>) -> Result<Plan, ProbeError> {
        let req = &probe.request;
        let target = ctx.target().and_then(|t| match &t.spec {
            TargetSpec::Http(h) => Some((t, h)),
            _ => None,
        });
        let url = match (&req.url, target) {
            (Some(u), _) => {
                Url::parse(u).map_err(|e| ProbeError::new(format!("invalid request.url: {e}")))?
            }
            (None, Some((_, h))) => {
                join_url(&h.url, req.path.as_deref()).map_err(ProbeError::new)?
            }
            (None, None) => {
                return Err(ProbeError::new(
                    "an http check needs a target, a url, or request.url",
                ));
            }
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProbeError::new(format!(
                "unsupported URL scheme {:?} (http or https)",
                url.scheme()
            )));
        }
        if probe.value == HttpValue::CertDaysLeft && url.scheme() != "https" {
            return Err(ProbeError::new(format!(
                "cert_days_left needs an https URL; {} is plain http",
                host_port(&url)
            )));
        }
        let method = Method::from_bytes(req.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| ProbeError::new(format!("invalid HTTP method {:?}", req.method)))?;
        // The target's headers (often credentials) and trust settings belong to the target's
        // origin: a `request.url` pointing elsewhere must not receive them.
        let target = target.filter(|(_, h)| same_origin(&h.url, &url));
        let mut headers = HeaderMap::new();
        if let Some((_, h)) = target {
            add_headers(&mut headers, &h.headers)?;
        }
        add_headers(&mut headers, &req.headers)?;
        let trust = match target {
            Some((t, h)) => trust_of(&h.tls, &t.base_dir)?,
            None => Trust::PublicRoots,
        };
        Ok(Plan {
            url,
            method,
            headers,
            body: req.body.clone(),
            client: ClientKey {
                trust,
                follow_redirects: req.follow_redirects,
            },
        })
    }

    /// Sends the request and reads the whole response within `timeout`.
    pub async fn send(self, timeout: Duration) -> Result<Exchange, ProbeError> {
        let where_ = host_port(&self.url);
        let client = client_for(&self.client)?;
        let mut request = client
            .request(self.method, self.url)
            .headers(self.headers)
            .timeout(timeout);
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let timed_out = || {
            ProbeError::new(format!(
                "request to {where_} timed out after {}",
                duration::format(timeout)
            ))
        };
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                timed_out()
            } else {
                let cause = ProbeError::from(e.without_url());
                ProbeError::new(format!("request to {where_} failed: {cause}"))
            }
        };
        let exchange = async {
            let started = Instant::now();
            let mut response = request.send().await.map_err(failed)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let peer_certificate = response
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .map(<[u8]>::to_vec);
            let mut body = Vec::new();
            let mut body_bytes = 0u64;
            while let Some(chunk) = response.chunk().await.map_err(failed)? {
                body_bytes += chunk.len() as u64;
                let room = BODY_KEEP_LIMIT.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Exchange {
                status,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                headers,
                body,
                body_bytes,
                peer_certificate,
            })
        };
        // reqwest's own timeout covers connect, headers and body; this one is a backstop.
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }
}

/// `base` with `path` appended to its path (not RFC 3986 resolution, which would drop the last
/// segment of `http://host/api` and surprise everyone). A query in `path` is appended to the base's.
pub(crate) fn join_url(base: &str, path: Option<&str>) -> Result<Url, String> {
    // The base URL may carry credentials: name the problem, not the URL.
    let mut url = Url::parse(base).map_err(|e| format!("invalid target URL: {e}"))?;
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(url);
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let joined = format!(
        "{}/{}",
        url.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    if let Some(q) = query {
        let merged = match url.query().filter(|b| !b.is_empty()) {
            Some(b) => format!("{b}&{q}"),
            None => q.to_string(),
        };
        url.set_query(Some(&merged));
    }
    Ok(url)
}

/// `host:port` of a URL, the way messages name a server (never with credentials or query).
pub(crate) fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Whether `url` has the scheme, host and port of the target URL `base`.
fn same_origin(base: &str, url: &Url) -> bool {
    Url::parse(base).is_ok_and(|b| b.origin() == url.origin())
}

fn add_headers(
    map: &mut HeaderMap,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(), ProbeError> {
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ProbeError::new(format!("invalid header name {name:?}")))?;
        // The value may be a secret: name the header only.
        let v = HeaderValue::from_str(value)
            .map_err(|_| ProbeError::new(format!("invalid value for header {name}")))?;
        map.insert(n, v);
    }
    Ok(())
}

fn trust_of(tls: &TlsOptions, base_dir: &Path) -> Result<Trust, ProbeError> {
    if tls.insecure_skip_verify {
        return Ok(Trust::AnyCertificate);
    }
    match &tls.ca_file {
        None => Ok(Trust::PublicRoots),
        Some(p) => {
            let path = crate::tls::resolve_path(base_dir, p);
            let pem = std::fs::read(&path)
                .map_err(|e| ProbeError::new(format!("ca_file {}: {e}", path.display())))?;
            Ok(Trust::PublicRootsAnd(pem))
        }
    }
}

/// The shared client for another HTTP-speaking probe (sse, pprof, prometheus, consul): trusts
/// what the target's `tls` says and follows redirects. Requests set their own timeouts.
pub fn client_for_tls(tls: &TlsOptions, base_dir: &Path) -> Result<reqwest::Client, ProbeError> {
    client_for(&ClientKey {
        trust: trust_of(tls, base_dir)?,
        follow_redirects: true,
    })
}

/// Like [`client_for_tls`], but never follows a redirect: for APIs whose credentials travel in
/// their own headers (Consul's `X-Consul-Token`), which reqwest would carry to another host.
pub fn client_for_tls_without_redirects(
    tls: &TlsOptions,
    base_dir: &Path,
) -> Result<reqwest::Client, ProbeError> {
    client_for(&ClientKey {
        trust: trust_of(tls, base_dir)?,
        follow_redirects: false,
    })
}

/// The cached client for `key`, built on first use.
fn client_for(key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(key) {
        return Ok(c.clone());
    }
    let client = build_client(key)?;
    clients.insert(key.clone(), client.clone());
    Ok(client)
}

fn build_client(key: &ClientKey) -> Result<reqwest::Client, ProbeError> {
    let mut tls = match &key.trust {
        Trust::PublicRoots => crate::tls::root_store(&[]).and_then(crate::tls::verifying_config),
        Trust::PublicRootsAnd(pem) => crate::tls::parse_ca_pem(pem)
            .map_err(|e| format!("ca_file: {e}"))
            .and_then(|extra| crate::tls::root_store(&extra))
            .and_then(crate::tls::verifying_config),
        Trust::AnyCertificate => Ok(crate::tls::insecure_config()),
    }
    .map_err(ProbeError::new)?;
    // A preconfigured rustls config is used as is: offer HTTP/2 and HTTP/1.1 ourselves.
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let redirects = if key.follow_redirects {
        reqwest::redirect::Policy::limited(MAX_REDIRECTS)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tls_info(true)
        .redirect(redirects)
        .user_agent(concat!("patrol/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ProbeError::new(format!(
                "cannot build the HTTP client: {}",
                ProbeError::from(e)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(base: &str, path: Option<&str>) -> String {
        join_url(base, path).unwrap().to_string()
    }

    #[test]
    fn path_is_appended_to_the_base_path() {
        assert_eq!(
            joined("http://h:8080", Some("/health")),
            "http://h:8080/health"
        );
        assert_eq!(
            joined("http://h:8080/", Some("health")),
            "http://h:8080/health"
        );
        assert_eq!(
            joined("http://h/api", Some("/v1/status")),
            "http://h/api/v1/status"
        );
        assert_eq!(
            joined("http://h/api/", Some("/v1/status")),
            "http://h/api/v1/status"
        );
    }

    #[test]
    fn missing_or_empty_path_keeps_the_base() {
        assert_eq!(joined("https://h/api?x=1", None), "https://h/api?x=1");
        assert_eq!(joined("https://h/api", Some("  ")), "https://h/api");
    }

    #[test]
    fn queries_of_base_and_path_are_merged() {
        assert_eq!(
            joined("http://h/api", Some("/q?a=1&b=2")),
            "http://h/api/q?a=1&b=2"
        );
        assert_eq!(
            joined("http://h/api?key=k", Some("/q?a=1")),
            "http://h/api/q?key=k&a=1"
        );
    }

    #[test]
    fn invalid_base_error_does_not_echo_the_url() {
        let err = join_url("not a url with s3cret", Some("/x")).unwrap_err();
        assert!(err.starts_with("invalid target URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn host_port_names_the_server_without_credentials() {
        let url = Url::parse("https://user:pw@example.com/x?token=t").unwrap();
        assert_eq!(host_port(&url), "example.com:443");
        let url = Url::parse("http://[::1]:8080/").unwrap();
        assert_eq!(host_port(&url), "[::1]:8080");
    }

    #[test]
    fn target_settings_stay_with_the_target_origin() {
        let u = Url::parse("https://api.internal:8443/x").unwrap();
        assert!(same_origin("https://api.internal:8443/base", &u));
        assert!(!same_origin("https://api.internal/base", &u));
        assert!(!same_origin("http://api.internal:8443", &u));
        assert!(!same_origin("https://other.internal:8443", &u));
    }
}
