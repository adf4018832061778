//! The wire side of `kind: sse`: which URL and headers, opening the stream with a deadline for
//! the response headers, and listening to the body chunk by chunk through the shared WHATWG
//! parser until the window ends, the server closes, or the stream breaks.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::SseProbe;
use super::tally::Tally;
use crate::config::{TargetSpec, duration};
use crate::probe::http::client::{client_for_tls, host_port, join_url};
use crate::probe::{ProbeContext, ProbeError};
use crate::sse::SseParser;

/// Bytes a stream may send without completing an event or a comment: what the parser holds
/// for an unfinished event is bounded by this, whatever the server sends.
pub(super) const PENDING_LIMIT: usize = 16 * 1024 * 1024;

/// The request, worked out before anything goes on the wire.
pub(super) struct Plan {
    url: Url,
    headers: HeaderMap,
    client: reqwest::Client,
    timeout: Duration,
}

/// A response whose headers have arrived.
pub(super) struct Opened {
    response: reqwest::Response,
    pub status: u16,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// From sending the request until the headers arrived.
    pub time_to_headers: Duration,
    /// When the headers arrived: the window starts here.
    pub headers_at: Instant,
}

/// How listening ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum StreamEnd {
    /// The window ended with the stream still open.
    WindowOver,
    /// The server ended the response.
    Closed,
    /// Reading failed (connection reset, malformed chunked encoding).
    Broken(String),
    /// [`PENDING_LIMIT`] bytes arrived without completing an event or a comment.
    Overlong,
}

/// What listening saw.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Listened {
    pub tally: Tally,
    /// The last valid `retry:` the stream sent.
    pub retry: Option<Duration>,
    /// From the headers until listening ended.
    pub span: Duration,
    pub end: StreamEnd,
}

impl Plan {
    pub fn new(probe: &SseProbe, ctx: &ProbeContext<'_>) -> Result<Plan, ProbeError> {
        let (target, http) = match ctx.target() {
            Some(t) => match &t.spec {
                TargetSpec::Http(h) => (t, h),
                _ => {
                    return Err(ProbeError::new(
                        "an sse check needs an http target or a url",
                    ));
                }
            },
            None => {
                return Err(ProbeError::new(
                    "an sse check needs an http target or a url",
                ));
            }
        };
        let url = join_url(&http.url, probe.path.as_deref()).map_err(ProbeError::new)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ProbeError::new(format!(
                "unsupported URL scheme {:?} (http or https)",
                url.scheme()
            )));
        }
        // What an EventSource sends; the target's and the check's own headers may override it.
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        add_headers(&mut headers, &http.headers)?;
        add_headers(&mut headers, &probe.headers)?;
        if let Some(id) = &probe.last_event_id {
            let value = last_event_id(id).map_err(ProbeError::new)?;
            headers.insert(HeaderName::from_static("last-event-id"), value);
        }
        Ok(Plan {
            url,
            headers,
            client: client_for_tls(&http.tls, &target.base_dir)?,
            timeout: ctx.timeout,
        })
    }

    /// Sends the request and waits for the response headers until `deadline`, `budget` after
    /// the check started.
    pub async fn open(self, deadline: Instant, budget: Duration) -> Result<Opened, ProbeError> {
        let where_ = host_port(&self.url);
        let request = self
            .client
            .get(self.url)
            .headers(self.headers)
            // A backstop only: the deadlines below end waiting and listening before it.
            .timeout(self.timeout);
        let sent_at = Instant::now();
        let response = match tokio::time::timeout_at(deadline, request.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) if !e.is_timeout() => {
                let cause = ProbeError::from(e.without_url());
                return Err(ProbeError::new(format!(
                    "request to {where_} failed: {cause}"
                )));
            }
            Ok(Err(_)) | Err(_) => {
                return Err(ProbeError::new(format!(
                    "no response headers from {where_} within {} (timeout {})",
                    whole_millis(budget),
                    whole_millis(self.timeout)
                )));
            }
        };
        let headers_at = Instant::now();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(Opened {
            status: response.status().as_u16(),
            content_type,
            time_to_headers: headers_at - sent_at,
            headers_at,
            response,
        })
    }
}

impl Opened {
    /// Reads the stream until `until`, the server closes it, or it breaks; counts what it sent.
    pub async fn listen(mut self, until: Instant) -> Listened {
        let mut parser = SseParser::new();
        let mut tally = Tally::default();
        let end = loop {
            let chunk = match tokio::time::timeout_at(until, self.response.chunk()).await {
                Err(_) => break StreamEnd::WindowOver,
                Ok(Ok(None)) => break StreamEnd::Closed,
                Ok(Err(e)) => break StreamEnd::Broken(ProbeError::from(e.without_url()).0),
                Ok(Ok(Some(chunk))) => chunk,
            };
            let at = self.headers_at.elapsed();
            let items = parser.feed(&chunk);
            tally.record(at, chunk.len(), &items);
            if tally.pending_bytes > PENDING_LIMIT {
                break StreamEnd::Overlong;
            }
        };
        // A window that ran out ends exactly at `until`, not when the timer was noticed.
        let span = match end {
            StreamEnd::WindowOver => until.saturating_duration_since(self.headers_at),
            _ => self.headers_at.elapsed(),
        };
        tally.finish(span);
        Listened {
            tally,
            retry: parser.retry(),
            span,
            end,
        }
    }
}

/// The value of a request header, or why it cannot be sent (naming the header only: the value
/// may be a secret).
pub(super) fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let v = HeaderValue::from_str(value).map_err(|_| {
        format!("invalid value for header {name}: no line breaks or control characters")
    })?;
    Ok((n, v))
}

/// The `Last-Event-ID` header for `id`: an event ID never holds a NUL or a line break.
pub(super) fn last_event_id(id: &str) -> Result<HeaderValue, String> {
    if id.contains(['\0', '\r', '\n']) {
        return Err("last_event_id must not contain NUL or line breaks".into());
    }
    HeaderValue::from_str(id)
        .map_err(|_| "last_event_id must not contain control characters".into())
}

fn add_headers(
    map: &mut HeaderMap,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(), ProbeError> {
    for (name, value) in headers {
        let (n, v) = header(name, value).map_err(ProbeError::new)?;
        map.insert(n, v);
    }
    Ok(())
}

/// `d` without its sub-millisecond part, as messages show it ("1s 950ms").
pub(super) fn whole_millis(d: Duration) -> String {
    duration::format(Duration::from_millis(d.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_problems_never_show_the_value() {
        assert!(header("X-Token", "abc").is_ok());
        let err = header("X-Token", "s3cret\r\nX-Evil: 1").unwrap_err();
        assert!(err.contains("X-Token"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            header("bad name", "v")
                .unwrap_err()
                .contains("invalid header name")
        );
    }

    #[test]
    fn event_ids_with_line_breaks_or_nul_are_refused() {
        assert_eq!(last_event_id("1795258090:0").unwrap(), "1795258090:0");
        assert!(last_event_id("a\nb").is_err());
        assert!(last_event_id("a\0b").is_err());
        assert!(last_event_id("").is_ok());
    }

    #[test]
    fn durations_in_messages_are_whole_milliseconds() {
        assert_eq!(whole_millis(Duration::from_micros(1_950_700)), "1s 950ms");
        assert_eq!(whole_millis(Duration::from_secs(5)), "5s");
    }
}
