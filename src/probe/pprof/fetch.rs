//! Fetching one `?debug=1` profile from the target: its URL under the pprof path, the target's
//! headers and trust settings, the check's timeout, and a bounded body.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{TargetSpec, duration};
use crate::probe::{ProbeContext, ProbeError};

/// Where `net/http/pprof` registers its handlers.
pub const DEFAULT_PATH: &str = "/debug/pprof";

/// Profiles larger than this are refused (a debug=1 goroutine profile aggregates stacks; even
/// services with 100,000 goroutines write a few MiB).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// One profile's URL and how to ask for it.
pub struct Endpoint {
    url: Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

/// Problems of a `path:` as written.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.contains(['?', '#']) || path.chars().any(char::is_whitespace) {
        return Err(format!(
            "path {path:?} must be a plain URL path such as /debug/pprof (no query, fragment or \
             spaces)"
        ));
    }
    Ok(())
}

impl Endpoint {
    /// The endpoint of `profile` (`goroutine`, `heap`) under `path` of the check's target.
    pub fn of(
        ctx: &ProbeContext<'_>,
        path: Option<&str>,
        profile: &str,
    ) -> Result<Endpoint, ProbeError> {
        let (target, http) = match ctx.target() {
            Some(t) => match &t.spec {
                TargetSpec::Http(h) => (t, h),
                _ => return Err(ProbeError::new("a pprof check needs an http target or url")),
            },
            None => return Err(ProbeError::new("a pprof check needs an http target or url")),
        };
        let url = profile_url(&http.url, path.unwrap_or(DEFAULT_PATH), profile)?;
        Ok(Endpoint {
            url,
            headers: headers(&http.headers)?,
            client: crate::probe::http::client::client_for_tls(&http.tls, &target.base_dir)?,
        })
    }

    /// `GET host:port/debug/pprof/goroutine?debug=1`, as messages name the request (never with
    /// credentials, nor the base URL's own query, which may hold a token).
    pub fn describe(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        let port = self
            .url
            .port_or_known_default()
            .map_or(String::new(), |p| format!(":{p}"));
        format!("GET {host}{port}{}?debug=1", self.url.path())
    }

    /// The profile's text, read whole within `timeout`.
    pub async fn get(&self, timeout: Duration) -> Result<String, ProbeError> {
        let timed_out = || {
            ProbeError::new(format!(
                "{} timed out after {}",
                self.describe(),
                duration::format(timeout)
            ))
        };
        let failed = |e: reqwest::Error| match e.is_timeout() {
            true => timed_out(),
            false => ProbeError::new(format!(
                "{} failed: {}",
                self.describe(),
                ProbeError::from(e.without_url())
            )),
        };
        let exchange = async {
            let mut response = self
                .client
                .get(self.url.clone())
                .headers(self.headers.clone())
                .timeout(timeout)
                .send()
                .await
                .map_err(failed)?;
            let status = response.status();
            if !status.is_success() {
                return Err(ProbeError::new(self.refusal(status)));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(failed)? {
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(ProbeError::new(format!(
                        "{}: the profile is larger than {} MiB",
                        self.describe(),
                        BODY_LIMIT / (1024 * 1024)
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(String::from_utf8_lossy(&body).into_owned())
        };
        // reqwest's timeout covers the whole exchange; this one is a backstop.
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// Why a non-2xx answer is not a profile, with the likely cause for the usual ones.
    fn refusal(&self, status: reqwest::StatusCode) -> String {
        let hint = match status.as_u16() {
            404 => {
                "; is net/http/pprof served on this port, under this path? (set `path:` when it \
                 is not /debug/pprof)"
            }
            401 | 403 => "; the endpoint wants credentials (the target's `headers:`)",
            _ => "",
        };
        format!("{} answered {status}{hint}", self.describe())
    }
}

/// `base` + `path` + `/profile`, with `debug=1` added to the base's query.
fn profile_url(base: &str, path: &str, profile: &str) -> Result<Url, ProbeError> {
    // The base URL may carry credentials: name the problem, not the URL.
    let mut url =
        Url::parse(base).map_err(|e| ProbeError::new(format!("invalid target URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProbeError::new(format!(
            "unsupported URL scheme {:?} (http or https)",
            url.scheme()
        )));
    }
    check_path(path).map_err(ProbeError::new)?;
    let segments = [url.path(), path, profile]
        .iter()
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    url.set_path(&format!("/{segments}"));
    let query = match url.query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{q}&debug=1"),
        None => "debug=1".into(),
    };
    url.set_query(Some(&query));
    Ok(url)
}

fn headers(headers: &std::collections::BTreeMap<String, String>) -> Result<HeaderMap, ProbeError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ProbeError::new(format!("invalid header name {name:?}")))?;
        // The value may be a secret: name the header only.
        let v = HeaderValue::from_str(value)
            .map_err(|_| ProbeError::new(format!("invalid value for header {name}")))?;
        map.insert(n, v);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, path: &str, profile: &str) -> String {
        profile_url(base, path, profile).unwrap().to_string()
    }

    #[test]
    fn the_profile_is_under_the_pprof_path_of_the_base() {
        assert_eq!(
            url("http://orders:6060", DEFAULT_PATH, "goroutine"),
            "http://orders:6060/debug/pprof/goroutine?debug=1"
        );
        assert_eq!(
            url("http://orders:6060/internal/", "/debug/pprof/", "heap"),
            "http://orders:6060/internal/debug/pprof/heap?debug=1"
        );
        assert_eq!(
            url("https://gw/svc/debug/pprof?token=t", "", "heap"),
            "https://gw/svc/debug/pprof/heap?token=t&debug=1"
        );
        assert_eq!(
            url("http://h:1", "debug/pprof", "goroutine"),
            "http://h:1/debug/pprof/goroutine?debug=1"
        );
    }

    #[test]
    fn bad_bases_and_paths_are_named_without_the_url() {
        let err = profile_url("not a url s3cret", DEFAULT_PATH, "heap").unwrap_err();
        assert!(err.0.starts_with("invalid target URL"), "{err}");
        assert!(!err.0.contains("s3cret"));
        let err = profile_url("ftp://h", DEFAULT_PATH, "heap").unwrap_err();
        assert!(err.0.contains("unsupported URL scheme \"ftp\""), "{err}");
        assert!(check_path("/debug/pprof?debug=2").is_err());
        assert!(check_path("/debug pprof").is_err());
        assert!(check_path("").is_ok());
    }
}
