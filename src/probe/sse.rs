//! `kind: sse` — opens a Server-Sent Events stream and listens for a `window`: time to the
//! response headers, time to the first event, events in the window, the longest silence (comment
//! heartbeats count as activity) and the `retry:` the server asks for; checks `expect:`.
//!
//! A stream that answers and then goes quiet is the failure this probe exists for, so listening
//! always ends within the check's timeout and a stall is reported as such, with what was seen,
//! never as a bare "timed out".

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::condition::Condition;
use crate::config::{CheckCommon, Issues, duration};

mod outcome;
mod stream;
mod tally;

/// How long to listen when `window` is not set (but at most half the timeout, so an unset
/// window always fits).
const DEFAULT_WINDOW: Duration = Duration::from_secs(5);

/// What an EventSource asks for; `expect.content_type` defaults to it.
const EVENT_STREAM: &str = "text/event-stream";

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseProbe {
    /// Path joined to the target's URL (`/events?topic=x`).
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers, sent after the target's own (a header named in both takes this value).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Last-Event-ID`, as a reconnecting EventSource does: checks that the server
    /// resumes from that position.
    #[serde(default)]
    pub last_event_id: Option<String>,
    /// How long to listen after the response headers arrived (default 5s, or half the timeout
    /// if that is shorter). Must be shorter than `timeout`; listening also ends when the
    /// timeout is about to run out.
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<duration::DurationSchema>")]
    pub window: Option<Duration>,
    /// What to measure: `events` (default: events received within the window),
    /// `time_to_headers_ms`, `time_to_first_event_ms` (both from sending the request),
    /// `max_gap_ms` (longest silence), `retry_ms` (the server's `retry:`).
    #[serde(default)]
    pub value: SseValue,
    #[serde(default)]
    pub expect: SseExpect,
}

/// The measured value of an SSE check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SseValue {
    /// Events dispatched within the window (comments are not events).
    #[default]
    Events,
    /// From sending the request until the response headers arrived.
    TimeToHeadersMs,
    /// From sending the request until the first event was complete.
    TimeToFirstEventMs,
    /// The longest time without an event or a comment within the window.
    MaxGapMs,
    /// The reconnection time the stream set with `retry:` (the last one seen).
    RetryMs,
}

impl SseValue {
    pub fn name(self) -> &'static str {
        match self {
            SseValue::Events => "events",
            SseValue::TimeToHeadersMs => "time_to_headers_ms",
            SseValue::TimeToFirstEventMs => "time_to_first_event_ms",
            SseValue::MaxGapMs => "max_gap_ms",
            SseValue::RetryMs => "retry_ms",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            SseValue::Events => "",
            _ => "ms",
        }
    }
}

/// Expectations; each one that is not met makes the result `crit` with a message naming it.
/// Besides these, a status other than 200 and a stream that stalls after its headers (no event
/// and no comment in the whole window) always fail.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SseExpect {
    /// Condition on the number of events within the window (`gt(0)`).
    pub events: Option<Condition>,
    /// Condition on the longest silence in ms (`lt(15000)` for a 15 s heartbeat).
    pub max_gap: Option<Condition>,
    /// Media type of the response (parameters such as `charset` are ignored); `""` accepts any.
    pub content_type: Option<String>,
    /// The server keeps the stream open for the whole window (default `true`); `false` accepts
    /// a server that sends its events and closes.
    pub stays_open: bool,
}

impl Default for SseExpect {
    fn default() -> Self {
        SseExpect {
            events: None,
            max_gap: None,
            content_type: Some(EVENT_STREAM.to_string()),
            stays_open: true,
        }
    }
}

impl SseExpect {
    /// The expected media type, if one is expected.
    fn content_type(&self) -> Option<&str> {
        self.content_type
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }
}

impl SseProbe {
    /// The window in effect for a check with `timeout`.
    fn window(&self, timeout: Duration) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW.min(timeout / 2))
    }

    fn validate_request(&self, issues: &mut Issues) {
        if let Some(p) = &self.path
            && p.contains("://")
        {
            issues.at(
                &["path"],
                "path is joined to the target's URL; write a full URL in `url:` instead",
            );
        }
        for (name, value) in &self.headers {
            if let Err(problem) = stream::header(name, value) {
                issues.at(&["headers", name], problem);
            }
            if name.trim().eq_ignore_ascii_case("last-event-id") && self.last_event_id.is_some() {
                issues.at_key(
                    &["headers", name],
                    "set either `last_event_id` or a Last-Event-ID header, not both",
                );
            }
        }
        if let Some(id) = &self.last_event_id
            && let Err(problem) = stream::last_event_id(id)
        {
            issues.at(&["last_event_id"], problem);
        }
    }

    fn validate_expect(&self, issues: &mut Issues) {
        issues.condition(&["expect", "events"], self.expect.events.as_ref());
        if let Some(e) = self.expect.max_gap.as_ref().and_then(Condition::error) {
            // People write silences as durations; the condition compares milliseconds.
            issues.at(
                &["expect", "max_gap"],
                format!("{e}; max_gap is compared in milliseconds, e.g. lt(15000)"),
            );
        }
        if let Some(t) = self.expect.content_type()
            && !is_media_type(t)
        {
            issues.at(
                &["expect", "content_type"],
                format!("{t:?} is not a media type such as {EVENT_STREAM}"),
            );
        }
    }
}

impl Probe for SseProbe {
    const TARGET_KINDS: &'static [&'static str] = &["http"];

    fn validate(&self, check: &CheckCommon, issues: &mut Issues) {
        if let Some(problem) = self.window.and_then(|w| window_problem(w, check.timeout)) {
            issues.at(&["window"], problem);
        }
        self.validate_request(issues);
        self.validate_expect(issues);
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let started = tokio::time::Instant::now();
        let budget = listening_budget(ctx.timeout);
        let deadline = started + budget;
        let window = self.window(ctx.timeout);
        let opened = stream::Plan::new(self, ctx)?.open(deadline, budget).await?;
        let (status, content_type) = (opened.status, opened.content_type.clone());
        let time_to_headers = opened.time_to_headers;
        let until = (opened.headers_at + window).min(deadline);
        // An EventSource fails the connection on any status but 200: there is no stream to read.
        let listened = match status {
            200 => Some(opened.listen(until).await),
            _ => None,
        };
        let observed = outcome::Observed {
            status,
            content_type,
            time_to_headers,
            window,
            timeout: ctx.timeout,
            listened,
        };
        Ok(outcome::measurement(self.value, &self.expect, &observed))
    }
}

/// Why `window` cannot work with `timeout`, if it cannot.
fn window_problem(window: Duration, timeout: Duration) -> Option<String> {
    if window.is_zero() {
        return Some("window must be longer than zero".into());
    }
    (window >= timeout).then(|| {
        format!(
            "window ({}) must be shorter than the check's timeout ({}): listening starts once the headers arrived and must end within the timeout",
            duration::format(window),
            duration::format(timeout)
        )
    })
}

/// How long the probe may wait for headers and listen: a little less than the timeout, so the
/// probe reports what it saw before the runner's own timeout cuts it off with nothing.
fn listening_budget(timeout: Duration) -> Duration {
    let margin = (timeout / 20).min(Duration::from_millis(250));
    timeout - margin
}

/// `type/subtype` (parameters allowed), as in a Content-Type header.
fn is_media_type(text: &str) -> bool {
    let essence = text.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((kind, sub)) => {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            };
            token(kind) && token(sub)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_unset_window_fits_any_timeout() {
        let probe = SseProbe::default();
        assert_eq!(probe.window(secs(10)), secs(5));
        assert_eq!(probe.window(secs(60)), secs(5));
        assert_eq!(probe.window(secs(2)), secs(1));
        let set = SseProbe {
            window: Some(secs(8)),
            ..SseProbe::default()
        };
        assert_eq!(set.window(secs(10)), secs(8));
    }

    #[test]
    fn a_window_must_be_shorter_than_the_timeout() {
        assert_eq!(window_problem(secs(9), secs(10)), None);
        let same = window_problem(secs(10), secs(10)).unwrap();
        assert!(same.contains("window (10s) must be shorter than the check's timeout (10s)"));
        assert!(window_problem(secs(30), secs(10)).is_some());
        assert_eq!(
            window_problem(Duration::ZERO, secs(10)).unwrap(),
            "window must be longer than zero"
        );
    }

    #[test]
    fn the_budget_leaves_the_runner_a_margin() {
        assert_eq!(listening_budget(secs(10)), Duration::from_millis(9750));
        assert_eq!(listening_budget(secs(1)), Duration::from_millis(950));
        assert!(listening_budget(secs(600)) > secs(599));
    }

    #[test]
    fn media_types_are_recognised() {
        assert!(is_media_type("text/event-stream"));
        assert!(is_media_type("text/event-stream; charset=utf-8"));
        assert!(is_media_type("application/vnd.api+json"));
        assert!(!is_media_type("event-stream"));
        assert!(!is_media_type("text/"));
        assert!(!is_media_type("text/event stream"));
    }

    #[test]
    fn an_empty_content_type_expects_none() {
        let any = SseExpect {
            content_type: Some("  ".into()),
            ..SseExpect::default()
        };
        assert_eq!(any.content_type(), None);
        assert_eq!(
            SseExpect::default().content_type(),
            Some("text/event-stream")
        );
    }

    #[test]
    fn value_names_and_units() {
        assert_eq!(SseValue::default(), SseValue::Events);
        assert_eq!(SseValue::Events.unit(), "");
        assert_eq!(SseValue::MaxGapMs.name(), "max_gap_ms");
        assert_eq!(SseValue::RetryMs.unit(), "ms");
    }
}
