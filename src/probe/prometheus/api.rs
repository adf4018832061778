//! One call to the Prometheus HTTP API: the URL under the target's base, its credentials and
//! trust settings, GET (or POST for a query too long for a URL), a bounded read of the answer, and
//! the answer's failures in words: Prometheus' own `errorType`/`error`, authentication (401/403),
//! something that is not Prometheus at all, refused connections and timeouts.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use super::answer::{Data, Envelope};
use crate::config::{Target, TargetSpec, duration};
use crate::probe::ProbeError;
use crate::probe::http::client::client_for_tls;

/// Answers are read up to this size: a query selecting every series of a large server would
/// otherwise be read whole into memory.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Queries go by GET (cacheable, allowed by read-only proxies) unless the URL would be longer
/// than this; then by POST, as proxies cut long URLs (nginx' default header buffer is 8 KiB).
const MAX_GET_URL: usize = 4096;

/// How much of a body that is not the API's JSON a message quotes.
const SNIPPET_CHARS: usize = 200;

/// A Prometheus API as a target describes it.
pub(super) struct Endpoint {
    base: Url,
    headers: HeaderMap,
    credentials: Credentials,
    client: reqwest::Client,
    /// `host:port`, how messages name the server (never with credentials).
    server: String,
}

enum Credentials {
    None,
    Bearer(String),
    Basic { username: String, password: String },
}

impl Endpoint {
    /// The API of a `kind: prometheus` target, or of an `http` one (an inline `url:`).
    pub fn of(target: &Target) -> Result<Endpoint, ProbeError> {
        let (url, headers, tls, credentials) = match &target.spec {
            TargetSpec::Prometheus(p) => {
                let credentials = match (&p.bearer_token, &p.basic_auth) {
                    (Some(token), _) => Credentials::Bearer(token.clone()),
                    (None, Some(b)) => Credentials::Basic {
                        username: b.username.clone(),
                        password: b.password.clone(),
                    },
                    (None, None) => Credentials::None,
                };
                (&p.url, &p.headers, &p.tls, credentials)
            }
            TargetSpec::Http(h) => (&h.url, &h.headers, &h.tls, Credentials::None),
            other => {
                return Err(ProbeError::new(format!(
                    "target {} is of kind {}, not a Prometheus API",
                    target.name,
                    other.kind()
                )));
            }
        };
        // The URL may carry a password: name the problem, never the URL.
        let base = Url::parse(url.trim())
            .map_err(|e| ProbeError::new(format!("invalid Prometheus URL: {e}")))?;
        Ok(Endpoint {
            server: host_port(&base),
            headers: header_map(headers)?,
            client: client_for_tls(tls, &target.base_dir)?,
            credentials,
            base,
        })
    }

    /// Calls `path` (`/api/v1/query`) with `params`; the `data` of a successful answer.
    pub async fn call(
        &self,
        path: &str,
        params: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Data, ProbeError> {
        let request = self.request(path, params).timeout(timeout);
        let timed_out = || {
            ProbeError::new(format!(
                "query to {} timed out after {}",
                self.server,
                duration::format(timeout)
            ))
        };
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                timed_out()
            } else {
                let cause = ProbeError::from(e.without_url());
                ProbeError::new(format!("cannot query {}: {cause}", self.server))
            }
        };
        let exchange = async {
            let mut response = request.send().await.map_err(failed)?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(failed)? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(ProbeError::new(format!(
                        "the answer from {} is larger than {} MiB; select fewer series or \
                         aggregate them in the query (sum by (…))",
                        self.server,
                        MAX_ANSWER_BYTES / 1024 / 1024
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            self.interpret(status, &body, path)
        };
        // reqwest's own timeout covers connect, headers and body; this one is a backstop.
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    fn request(&self, path: &str, params: &[(&str, String)]) -> reqwest::RequestBuilder {
        let url = join_path(&self.base, path);
        let mut get_url = url.clone();
        get_url.query_pairs_mut().extend_pairs(params);
        let request = if get_url.as_str().len() <= MAX_GET_URL {
            self.client.get(get_url)
        } else {
            self.client
                .post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form_body(params))
        };
        // Credentials in the URL (`http://user:pw@…`) are sent by reqwest as basic auth.
        let request = request.headers(self.headers.clone());
        match &self.credentials {
            Credentials::None => request,
            Credentials::Bearer(token) => request.bearer_auth(token),
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
        }
    }

    /// The `data` of an answer, or what went wrong in words.
    fn interpret(&self, status: StatusCode, body: &[u8], path: &str) -> Result<Data, ProbeError> {
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.authentication_error(status, body));
        }
        match serde_json::from_slice::<Envelope>(body) {
            Ok(envelope) if envelope.status == "success" => envelope.data.ok_or_else(|| {
                ProbeError::new(format!("{} answered success without data", self.server))
            }),
            Ok(envelope) if envelope.status == "error" => Err(prometheus_error(&envelope)),
            Ok(envelope) => Err(ProbeError::new(format!(
                "{} answered with status {:?}, neither success nor error",
                self.server, envelope.status
            ))),
            Err(e) if status.is_success() && looks_like_json(body) => Err(ProbeError::new(
                format!("unexpected answer from {}: {e}", self.server),
            )),
            Err(_) => Err(self.not_the_api(status, body, path)),
        }
    }

    fn authentication_error(&self, status: StatusCode, body: &[u8]) -> ProbeError {
        let given = match (&self.credentials, self.sends_credentials_otherwise()) {
            (Credentials::Bearer(_), _) => "to the bearer_token given",
            (Credentials::Basic { .. }, _) => "to the basic_auth given",
            (Credentials::None, true) => "to the credentials given (URL or headers)",
            (Credentials::None, false) => {
                "and the target gives no credentials (bearer_token, basic_auth or headers)"
            }
        };
        ProbeError::new(format!(
            "authentication failed: {} answered HTTP {} {given}{}",
            self.server,
            status_text(status),
            quoted_snippet(body)
        ))
    }

    fn sends_credentials_otherwise(&self) -> bool {
        !self.base.username().is_empty() || self.headers.contains_key(AUTHORIZATION)
    }

    fn not_the_api(&self, status: StatusCode, body: &[u8], path: &str) -> ProbeError {
        let hint = if status == StatusCode::NOT_FOUND {
            format!(
                "; is the target's url the base of the Prometheus API? ({path} under it was \
                 not found)"
            )
        } else {
            String::new()
        };
        ProbeError::new(format!(
            "{} answered HTTP {} without Prometheus API JSON{hint}{}",
            self.server,
            status_text(status),
            quoted_snippet(body)
        ))
    }
}

/// Prometheus' own error, with its type: `bad_data` (the query is wrong), `execution`,
/// `timeout`, `canceled`, `internal`, `unavailable`.
fn prometheus_error(envelope: &Envelope) -> ProbeError {
    let kind = envelope.error_type.as_deref().unwrap_or("unknown");
    let text = envelope.error.as_deref().unwrap_or("(no error text)");
    let what = match kind {
        "bad_data" => "Prometheus rejected the query",
        "timeout" | "canceled" => "Prometheus gave up on the query",
        _ => "Prometheus could not run the query",
    };
    ProbeError::new(format!("{what} ({kind}): {text}"))
}

/// `base` with `path` appended to its path (a route prefix such as `/prometheus` is kept) and
/// its query kept.
fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

/// `params` as an `application/x-www-form-urlencoded` body (the encoding of a URL query, which
/// `Url` writes; reqwest's `form` feature is not enabled).
fn form_body(params: &[(&str, String)]) -> String {
    let mut scratch = Url::parse("http://form.invalid/").expect("a valid constant URL");
    scratch.query_pairs_mut().extend_pairs(params);
    scratch.query().unwrap_or_default().to_string()
}

fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, ProbeError> {
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

/// `host:port` of a URL, without credentials, path or query.
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// `: "<start of the body>"`, or nothing for an empty body.
fn quoted_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return String::new();
    }
    let joined = words.join(" ");
    let mut snippet: String = joined.chars().take(SNIPPET_CHARS).collect();
    if snippet.len() < joined.len() {
        snippet.push('…');
    }
    format!(": {snippet:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_under_a_route_prefix_and_keep_the_base_query() {
        let base = Url::parse("https://ops.example.com/prometheus/?tenant=a").unwrap();
        assert_eq!(
            join_path(&base, "/api/v1/query").as_str(),
            "https://ops.example.com/prometheus/api/v1/query?tenant=a"
        );
        let base = Url::parse("http://127.0.0.1:9090").unwrap();
        assert_eq!(
            join_path(&base, "/api/v1/query_range").as_str(),
            "http://127.0.0.1:9090/api/v1/query_range"
        );
    }

    #[test]
    fn form_bodies_encode_promql() {
        let body = form_body(&[("query", r#"sum(rate(x{a="b c"}[5m])) > 0"#.into())]);
        assert_eq!(
            body,
            "query=sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29%29+%3E+0"
        );
    }

    #[test]
    fn prometheus_errors_keep_type_and_text() {
        let e: Envelope = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#,
        )
        .unwrap();
        assert_eq!(
            prometheus_error(&e).0,
            "Prometheus rejected the query (bad_data): invalid parameter \"query\": 1:5: parse \
             error: unclosed left parenthesis"
        );
        let e: Envelope = serde_json::from_str(
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        )
        .unwrap();
        assert!(
            prometheus_error(&e)
                .0
                .starts_with("Prometheus gave up on the query (timeout)")
        );
    }

    #[test]
    fn snippets_are_short_and_on_one_line() {
        assert_eq!(quoted_snippet(b""), "");
        assert_eq!(quoted_snippet(b"Unauthorized\n"), ": \"Unauthorized\"");
        let long = "x ".repeat(500);
        let s = quoted_snippet(long.as_bytes());
        assert!(s.chars().count() < SNIPPET_CHARS + 10, "{s}");
        assert!(s.ends_with("…\""), "{s}");
    }

    #[test]
    fn servers_are_named_without_credentials() {
        let url = Url::parse("http://patrol:s3cret@prom.internal/").unwrap();
        assert_eq!(host_port(&url), "prom.internal:80");
    }
}
