//! Workloads driven during a drill: an SSE swarm and constant-rate HTTP.
//!
//! - `sse`: N subscribers behaving like browser `EventSource`s (resume with `Last-Event-ID`,
//!   honour `retry:`), a publisher stamping each event with a seq, and per-subscriber zero-loss
//!   accounting (`accounting`, pure) from the subscriber's first connect to the end of the drain.
//! - `http`: constant-rate requests, success rate and latency overall and per second.

pub mod accounting;
pub mod fd_limit;
pub mod http;
pub mod pace;
pub mod publish;
pub mod report;
pub mod sequence;
pub mod sse;
mod subscriber;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Issues;

pub use accounting::{Account, Arrival, Publications, PublishRecord, Reception, SeqSet};
pub use fd_limit::raise_fd_limit;
pub use http::{HttpLoad, HttpProgress, HttpWorkloadReport, HttpWorkloadSpec, SecondStats};
pub use publish::{PublishLog, PublishSpec};
pub use report::{Histogram, Millis, SseWorkloadReport, SubscriberSummary, SwarmProgress};
pub use sequence::SequenceReader;
pub use sse::SseSwarm;

/// `workload: sse:` of a drill.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseWorkloadSpec {
    /// The stream to subscribe to (often through a fault proxy).
    pub url: String,
    /// Subscribers to hold open.
    pub subscribers: u32,
    /// Subscribers opened per second (default: as fast as the server accepts them).
    #[serde(default)]
    pub connect_rate: Option<f64>,
    /// Headers sent with every subscription (e.g. an auth token).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The publisher whose events the subscribers must receive (none: count only).
    #[serde(default)]
    pub publish: Option<PublishSpec>,
    /// How to read the publisher's seq back from `data:`: `json:$.seq` or `regex:<one group>`.
    #[serde(default = "default_sequence")]
    pub sequence: String,
    #[serde(default)]
    pub reconnect: ReconnectSpec,
}

fn default_sequence() -> String {
    "json:$.seq".into()
}

/// How a subscriber reconnects after its stream drops, like a browser `EventSource`: it waits
/// the server's `retry:` (or `initial`), plus up to `jitter`; consecutive failed attempts double
/// the wait up to `max`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSpec {
    /// Wait before reconnecting when the server sent no `retry:` (default 1s).
    #[serde(default = "default_initial", with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub initial: Duration,
    /// Cap of the backoff after failed attempts (default 30s).
    #[serde(default = "default_max", with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub max: Duration,
    /// Random extra wait, 0 up to this (default 0: every subscriber reconnects at once, like a
    /// fleet of browsers does).
    #[serde(default, with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub jitter: Duration,
    /// How long to wait for the response headers of a (re)connection (default 30s).
    #[serde(default = "default_open_timeout", with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub open_timeout: Duration,
}

fn default_initial() -> Duration {
    Duration::from_secs(1)
}

fn default_max() -> Duration {
    Duration::from_secs(30)
}

fn default_open_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for ReconnectSpec {
    fn default() -> Self {
        ReconnectSpec {
            initial: default_initial(),
            max: default_max(),
            jitter: Duration::ZERO,
            open_timeout: default_open_timeout(),
        }
    }
}

/// The most subscribers one swarm accepts.
pub const MAX_SUBSCRIBERS: u32 = 1_000_000;

impl SseWorkloadSpec {
    /// Reports every problem, at paths relative to the `sse:` mapping (`["publish", "rate"]`).
    pub fn validate(&self, issues: &mut Issues) {
        if let Err((field, e)) = request_parts(&self.url, "GET", &self.headers) {
            issues.at(&[field], e);
        }
        if self.subscribers == 0 || self.subscribers > MAX_SUBSCRIBERS {
            issues.at(
                &["subscribers"],
                format!("must be between 1 and {MAX_SUBSCRIBERS}"),
            );
        }
        if let Some(rate) = self.connect_rate
            && !(rate.is_finite() && rate > 0.0)
        {
            issues.at(
                &["connect_rate"],
                "must be a number of subscribers per second above 0",
            );
        }
        if let Err(e) = SequenceReader::parse(&self.sequence) {
            issues.at(&["sequence"], e);
        }
        if let Some(publish) = &self.publish
            && let Err(e) = publish.plan()
        {
            // `plan` names the field as `publish.<field>: …`.
            let (field, message) = e.split_once(": ").unwrap_or(("publish", &e));
            let path: Vec<&str> = field.split('.').collect();
            issues.at(&path, message.to_string());
        }
        let r = &self.reconnect;
        if r.initial > r.max {
            issues.at(
                &["reconnect", "initial"],
                "must not be longer than reconnect.max",
            );
        }
        if r.open_timeout.is_zero() {
            issues.at(&["reconnect", "open_timeout"], "must be longer than zero");
        }
    }

    /// All problems as one message (`field: problem; …`), for callers without a rule file.
    pub fn check(&self) -> Result<(), String> {
        let mut issues = Issues::default();
        self.validate(&mut issues);
        issues_text(&issues)
    }
}

/// `field.path: message; …`, or Ok when there is nothing to say.
pub(crate) fn issues_text(issues: &Issues) -> Result<(), String> {
    if issues.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = issues
        .items
        .iter()
        .map(|(path, msg)| format!("{}: {msg}", crate::config::path_text(path)))
        .collect();
    Err(lines.join("; "))
}

/// Parses a URL, a method and headers; an error names the field (`url`, `method`, `headers`).
pub(crate) fn request_parts(
    url: &str,
    method: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(reqwest::Url, reqwest::Method, reqwest::header::HeaderMap), (&'static str, String)> {
    let parsed = reqwest::Url::parse(url).map_err(|e| ("url", format!("invalid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(("url", format!("{url:?} must be an http:// or https:// URL")));
    }
    let method = reqwest::Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| ("method", format!("{method:?} is not an HTTP method")))?;
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ("headers", format!("{name:?} is not a valid header name")))?;
        let v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            (
                "headers",
                format!("the value of {name:?} is not a valid header value"),
            )
        })?;
        map.insert(n, v);
    }
    Ok((parsed, method, map))
}

/// The workload's clock: nanoseconds since the workload started (monotonic).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Nanoseconds as milliseconds.
pub(crate) fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod spec_tests;
