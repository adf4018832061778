//! The constant-rate publisher: one POST (by default) per tick, its body rendered from a template
//! with `{{seq}}` (1, 2, 3…) and `{{ts}}` (ms since the Unix epoch).
//!
//! Each seq's publish START instant is recorded before the request is sent, in a lock-free log
//! that 20,000 subscribers read on every event (for latency) without contention. A publish that
//! fails (transport error or non-2xx) is counted and its seq is not owed to anyone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::accounting::{Publications, PublishRecord};
use super::pace::{Pacer, parse_rate};
use super::{Clock, request_parts};

/// Publishes in flight at once; beyond it the publisher waits (and falls behind its rate).
const MAX_IN_FLIGHT: usize = 256;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Distinct publish errors kept for the report.
const ERROR_SAMPLE: usize = 5;

/// `publish:` of an SSE workload.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishSpec {
    /// Where to publish (any node of the cluster).
    pub url: String,
    /// HTTP method (default POST).
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Publishes per second: `50/s`, `600/m`, or a number per second.
    pub rate: String,
    /// Request body; `{{seq}}` and `{{ts}}` are replaced (default `{"seq": {{seq}}, "ts": {{ts}}}`).
    #[serde(default = "default_body")]
    pub body: String,
    /// Per-publish timeout (default 10s); a publish that times out failed.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub timeout: Option<Duration>,
}

fn default_method() -> String {
    "POST".into()
}

fn default_body() -> String {
    r#"{"seq": {{seq}}, "ts": {{ts}}}"#.into()
}

/// A checked [`PublishSpec`].
#[derive(Clone, Debug)]
pub(crate) struct PublishPlan {
    url: reqwest::Url,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    rate: f64,
    body: String,
    timeout: Duration,
}

impl PublishSpec {
    /// Checks every field; errors name the field (`publish.rate: …`).
    pub(crate) fn plan(&self) -> Result<PublishPlan, String> {
        let (url, method, headers) = request_parts(&self.url, &self.method, &self.headers)
            .map_err(|(field, e)| format!("publish.{field}: {e}"))?;
        let rate = parse_rate(&self.rate).map_err(|e| format!("publish.rate: {e}"))?;
        if !self.body.contains("{{seq}}") {
            return Err("publish.body: the body must contain {{seq}} (how subscribers tell publishes apart)".into());
        }
        Ok(PublishPlan {
            url,
            method,
            headers,
            rate,
            body: self.body.clone(),
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }
}

/// Renders the body template for one publish.
pub fn render_body(template: &str, seq: u64, ts_ms: u64) -> String {
    template
        .replace("{{seq}}", &seq.to_string())
        .replace("{{ts}}", &ts_ms.to_string())
}

const SEGMENT: usize = 4096;
const SEGMENTS: usize = 4096;
const PENDING: u64 = 1;
const ACCEPTED: u64 = 2;
const FAILED: u64 = 3;

/// One publish attempt in the log.
#[derive(Default)]
struct Entry {
    /// 0 = not started, else `started_ns << 2 | state`.
    started: AtomicU64,
    /// When its response arrived (ns), 0 while in flight.
    finished_ns: AtomicU64,
}

/// Every publish attempt: its start and end (ns on the workload clock) and outcome, by seq.
/// Segments of atomics allocated as the run grows, so readers never take a lock. Holds 16.7 M
/// seqs.
pub struct PublishLog {
    segments: Box<[OnceLock<Box<[Entry]>>]>,
    last_seq: AtomicU64,
    accepted: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Default for PublishLog {
    fn default() -> Self {
        PublishLog {
            segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(),
            last_seq: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }
}

impl PublishLog {
    pub const CAPACITY: u64 = (SEGMENT * SEGMENTS) as u64;

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        let segment = self.segments.get(i / SEGMENT)?.get()?;
        Some(&segment[i % SEGMENT])
    }

    /// Records that `seq` (the next one) started at `started_ns`; false when the log is full.
    pub fn start(&self, seq: u64, started_ns: u64) -> bool {
        let Some(i) = seq.checked_sub(1).and_then(|i| usize::try_from(i).ok()) else {
            return false;
        };
        let Some(cell) = self.segments.get(i / SEGMENT) else {
            return false;
        };
        let segment = cell.get_or_init(|| (0..SEGMENT).map(|_| Entry::default()).collect());
        segment[i % SEGMENT]
            .started
            .store(started_ns << 2 | PENDING, Ordering::Release);
        self.last_seq.fetch_max(seq, Ordering::AcqRel);
        true
    }

    /// Records the outcome of `seq`'s publish, answered at `finished_ns`.
    pub fn finish(&self, seq: u64, accepted: bool, finished_ns: u64) {
        if let Some(e) = self.entry(seq) {
            let state = if accepted { ACCEPTED } else { FAILED };
            // Only this seq's publish task writes its entry once it started.
            let started = e.started.load(Ordering::Acquire) & !3;
            e.finished_ns.store(finished_ns.max(1), Ordering::Release);
            e.started.store(started | state, Ordering::Release);
        }
        let counter = if accepted {
            &self.accepted
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps a few distinct error texts for the report.
    pub fn note_error(&self, text: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < ERROR_SAMPLE && !errors.contains(&text) {
            errors.push(text);
        }
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn started_ns(&self, seq: u64) -> Option<u64> {
        let v = self.entry(seq)?.started.load(Ordering::Acquire);
        (v != 0).then_some(v >> 2)
    }

    /// Whether the publisher had put `earlier` before `later`: `earlier`'s publish was answered
    /// before `later`'s started. Publishes in flight together have no order of their own, so
    /// the system cannot be blamed for delivering them either way round.
    pub fn answered_before_started(&self, earlier: u64, later: u64) -> bool {
        let finished = self
            .entry(earlier)
            .map_or(0, |e| e.finished_ns.load(Ordering::Acquire));
        finished != 0 && self.started_ns(later).is_some_and(|s| finished <= s)
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Acquire)
    }

    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Every attempt so far; a publish still pending counts as not accepted.
    pub fn snapshot(&self) -> Publications {
        let records = (1..=self.last_seq())
            .map(|seq| {
                let (v, answered) = self.entry(seq).map_or((0, 0), |e| {
                    (
                        e.started.load(Ordering::Acquire),
                        e.finished_ns.load(Ordering::Acquire),
                    )
                });
                PublishRecord {
                    seq,
                    started_ns: v >> 2,
                    answered_ns: (answered != 0).then_some(answered),
                    accepted: v & 3 == ACCEPTED,
                }
            })
            .collect();
        // Seqs are started in order by one task with a monotonic clock, so this cannot fail.
        Publications::new(records).unwrap_or_default()
    }
}

/// The publishing task.
pub(crate) struct Publisher {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    pub(crate) fn spawn(
        plan: PublishPlan,
        http: reqwest::Client,
        log: Arc<PublishLog>,
        clock: Clock,
    ) -> Publisher {
        let stop = CancellationToken::new();
        let task = tokio::spawn(publish_loop(plan, http, log, clock, stop.clone()));
        Publisher { stop, task }
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops and waits for the publishes in flight (each bounded by its timeout).
    pub(crate) async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn publish_loop(
    plan: PublishPlan,
    http: reqwest::Client,
    log: Arc<PublishLog>,
    clock: Clock,
    stop: CancellationToken,
) {
    let plan = Arc::new(plan);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut pacer = Pacer::new(plan.rate);
    let mut tasks = JoinSet::new();
    for seq in 1..=PublishLog::CAPACITY {
        let Some(permit) = pacer.next_slot(&in_flight, &stop).await else {
            break;
        };
        if !log.start(seq, clock.now_ns()) {
            break;
        }
        let (plan, http, log) = (plan.clone(), http.clone(), log.clone());
        tasks.spawn(async move {
            let accepted = send(&plan, &http, seq, &log).await;
            log.finish(seq, accepted, clock.now_ns());
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn send(plan: &PublishPlan, http: &reqwest::Client, seq: u64, log: &PublishLog) -> bool {
    let ts_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let request = http
        .request(plan.method.clone(), plan.url.clone())
        .headers(plan.headers.clone())
        .timeout(plan.timeout)
        .body(render_body(&plan.body, seq, ts_ms));
    match request.send().await {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            log.note_error(format!("HTTP {}", response.status()));
            false
        }
        Err(e) => {
            log.note_error(crate::secrets::redact_owned(e.without_url().to_string()));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_template_gets_seq_and_timestamp() {
        assert_eq!(
            render_body(
                r#"{"seq": {{seq}}, "ts": {{ts}}, "s2": "{{seq}}"}"#,
                7,
                1795258090123
            ),
            r#"{"seq": 7, "ts": 1795258090123, "s2": "7"}"#
        );
    }

    #[test]
    fn the_log_tracks_starts_and_outcomes() {
        let log = PublishLog::default();
        assert!(log.start(1, 10));
        assert!(log.start(2, 20));
        assert!(log.start(3, 30));
        log.finish(1, true, 15);
        log.finish(2, false, 25);
        assert_eq!((log.accepted(), log.failed(), log.last_seq()), (1, 1, 3));
        assert_eq!(log.started_ns(2), Some(20));
        assert_eq!(log.started_ns(4), None);
        // 1 was answered (15) before 2 started (20), 2 (25) before 3 started (30).
        assert!(log.answered_before_started(1, 2));
        assert!(log.answered_before_started(2, 3));
        assert!(!log.answered_before_started(3, 2), "3 is still in flight");
        let p = log.snapshot();
        assert_eq!(p.attempts(), 3);
        // 3 answered (45) after 4 started (40): in flight together, no order between them.
        assert!(log.start(4, 40));
        log.finish(3, true, 45);
        assert!(!log.answered_before_started(3, 4));
        assert!(
            p.is_accepted(1) && !p.is_accepted(2) && !p.is_accepted(3),
            "pending is not accepted"
        );
        assert!(!log.start(0, 1));
        assert!(!log.start(PublishLog::CAPACITY + 1, 1));
        // Crossing a segment boundary allocates the next segment.
        assert!(log.start(SEGMENT as u64 + 1, 40));
        assert_eq!(log.started_ns(SEGMENT as u64 + 1), Some(40));
    }

    #[test]
    fn a_plan_names_the_bad_field() {
        let spec = |rate: &str, body: &str, url: &str| PublishSpec {
            url: url.into(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            rate: rate.into(),
            body: body.into(),
            timeout: None,
        };
        assert!(
            spec("50/s", "{{seq}}", "http://127.0.0.1:1/p")
                .plan()
                .is_ok()
        );
        let e = spec("fast", "{{seq}}", "http://127.0.0.1:1/p")
            .plan()
            .unwrap_err();
        assert!(e.starts_with("publish.rate:"), "{e}");
        let e = spec("5/s", "{}", "http://127.0.0.1:1/p")
            .plan()
            .unwrap_err();
        assert!(e.starts_with("publish.body:"), "{e}");
        let e = spec("5/s", "{{seq}}", "nope").plan().unwrap_err();
        assert!(e.starts_with("publish.url:"), "{e}");
    }
}
