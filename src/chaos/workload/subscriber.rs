//! One subscriber of the swarm: a task that behaves like a browser `EventSource`.
//!
//! It opens the stream (`Accept: text/event-stream`, `Last-Event-ID` once it has one), reads it
//! through the WHATWG parser, and when the stream drops waits the server's `retry:` (or the
//! configured initial wait) plus jitter and reconnects; consecutive failed attempts back off up
//! to `max`. Its shared state is small (a range set of received seqs and a few numbers) because
//! a swarm holds tens of thousands of them.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Clock;
use super::ReconnectSpec;
use super::accounting::{Arrival, Reception};
use super::publish::PublishLog;
use super::report::Histogram;
use super::sequence::SequenceReader;
use crate::sse::{SseItem, SseParser};

/// What the subscribers share: settings, the publish log, counters and histograms.
pub(crate) struct Shared {
    pub http: reqwest::Client,
    pub url: reqwest::Url,
    pub headers: reqwest::header::HeaderMap,
    pub reconnect: ReconnectSpec,
    pub reader: SequenceReader,
    pub clock: Clock,
    pub log: Arc<PublishLog>,
    /// Whether a publisher runs (else seqs come from elsewhere and nothing is owed).
    pub publishing: bool,
    pub close: CancellationToken,
    /// Bounds first connection attempts in flight when no connect rate is set.
    pub opening: Option<Arc<Semaphore>>,
    pub connected_now: AtomicU32,
    pub ever_connected: AtomicU32,
    pub reconnects: AtomicU64,
    pub connect_errors: AtomicU64,
    pub latency: Histogram,
    pub reconnect_time: Histogram,
}

/// One subscriber's record, read by `progress` and `finish` while the task writes it.
#[derive(Debug, Default)]
pub(crate) struct SubscriberState {
    /// Response headers of the first successful connection (ns on the workload clock).
    pub first_connect_ns: Option<u64>,
    pub reception: Reception,
    pub reconnects: u32,
    /// The last time bytes arrived (or the first connect); 0: never connected.
    pub last_bytes_ns: u64,
    pub max_gap_ns: u64,
    pub open: bool,
    /// Kept per subscriber (summed when read) so that 20,000 tasks on several threads do not
    /// all write the same cache line on every event.
    pub counts: Counts,
}

/// What one subscriber received.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    /// Deliveries of seqs of this run (duplicates included).
    pub received: u64,
    pub unsequenced: u64,
    pub foreign: u64,
    pub comments: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.received += o.received;
        self.unsequenced += o.unsequenced;
        self.foreign += o.foreign;
        self.comments += o.comments;
    }
}

impl SubscriberState {
    /// Notes that bytes (or the first response) arrived at `now`: the silence before counts.
    fn heard(&mut self, now: u64) {
        if self.last_bytes_ns != 0 {
            self.max_gap_ns = self.max_gap_ns.max(now.saturating_sub(self.last_bytes_ns));
        }
        self.last_bytes_ns = now;
    }

    /// The longest silence, counting the one still going on at `now` when connected before.
    pub(crate) fn max_gap_until(&self, now: u64) -> u64 {
        if self.last_bytes_ns == 0 {
            return self.max_gap_ns;
        }
        self.max_gap_ns.max(now.saturating_sub(self.last_bytes_ns))
    }
}

pub(crate) type StateCell = Arc<Mutex<SubscriberState>>;

pub(crate) fn lock(state: &StateCell) -> std::sync::MutexGuard<'_, SubscriberState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a stream ended.
enum StreamEnd {
    Dropped,
    Closed,
}

/// The subscriber's life: start after `delay`, then connect, read, reconnect until closed.
pub(crate) async fn run(shared: Arc<Shared>, state: StateCell, delay: Duration) {
    tokio::select! {
        biased;
        _ = shared.close.cancelled() => return,
        _ = tokio::time::sleep(delay) => {}
    }
    let mut parser = SseParser::new();
    let mut failures: u32 = 0;
    let mut dropped_at: Option<u64> = None;
    loop {
        let first = lock(&state).first_connect_ns.is_none();
        let opened = tokio::select! {
            biased;
            _ = shared.close.cancelled() => return,
            r = open(&shared, parser.last_event_id(), first) => r,
        };
        match opened {
            Ok(response) => {
                failures = 0;
                on_open(&shared, &state);
                parser.new_stream();
                let end = read(&shared, &state, response, &mut parser, &mut dropped_at).await;
                shared.connected_now.fetch_sub(1, Ordering::Relaxed);
                lock(&state).open = false;
                if matches!(end, StreamEnd::Closed) {
                    return;
                }
                shared.reconnects.fetch_add(1, Ordering::Relaxed);
                lock(&state).reconnects += 1;
                dropped_at.get_or_insert(shared.clock.now_ns());
            }
            Err(()) => {
                shared.connect_errors.fetch_add(1, Ordering::Relaxed);
                failures = failures.saturating_add(1);
            }
        }
        let wait = reconnect_wait(&shared.reconnect, parser.retry(), failures);
        tokio::select! {
            biased;
            _ = shared.close.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The wait before the next attempt: the server's `retry:` (or `initial`), doubled per
/// consecutive failed attempt up to `max` (a longer `retry:` is still honoured), plus jitter.
pub(crate) fn reconnect_wait(
    spec: &ReconnectSpec,
    retry: Option<Duration>,
    failures: u32,
) -> Duration {
    let base = retry.unwrap_or(spec.initial);
    let cap = spec.max.max(base);
    let backoff = base
        .checked_mul(1u32 << failures.min(20))
        .map_or(cap, |d| d.min(cap));
    let jitter = if spec.jitter.is_zero() {
        Duration::ZERO
    } else {
        spec.jitter.mul_f64(fastrand::f64())
    };
    backoff + jitter
}

/// One connection attempt; Ok once 2xx response headers with an event-stream type arrived.
async fn open(shared: &Shared, last_event_id: &str, first: bool) -> Result<reqwest::Response, ()> {
    let _permit = match (&shared.opening, first) {
        (Some(s), true) => Some(s.acquire().await.map_err(|_| ())?),
        _ => None,
    };
    let mut request = shared
        .http
        .get(shared.url.clone())
        .headers(shared.headers.clone())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .header(reqwest::header::CACHE_CONTROL, "no-cache");
    if !last_event_id.is_empty() {
        // Sent as UTF-8 bytes, like a browser; an id no header can carry (a control
        // character) is left out rather than failing every reconnection.
        match reqwest::header::HeaderValue::from_bytes(last_event_id.as_bytes()) {
            Ok(v) => request = request.header("Last-Event-ID", v),
            Err(_) => tracing::debug!("sse subscriber: the last event id cannot be a header"),
        }
    }
    let response = tokio::time::timeout(shared.reconnect.open_timeout, request.send())
        .await
        .map_err(|_| ())?
        .map_err(|e| tracing::debug!("sse subscriber: {}", e.without_url()))?;
    let is_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        });
    if response.status().is_success() && is_stream {
        Ok(response)
    } else {
        tracing::debug!(
            "sse subscriber: HTTP {} (event stream: {is_stream})",
            response.status()
        );
        Err(())
    }
}

fn on_open(shared: &Shared, state: &StateCell) {
    let now = shared.clock.now_ns();
    shared.connected_now.fetch_add(1, Ordering::Relaxed);
    let mut s = lock(state);
    s.open = true;
    if s.first_connect_ns.is_none() {
        s.first_connect_ns = Some(now);
        s.heard(now);
        shared.ever_connected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads one stream until it ends or the swarm closes.
async fn read(
    shared: &Shared,
    state: &StateCell,
    mut response: reqwest::Response,
    parser: &mut SseParser,
    dropped_at: &mut Option<u64>,
) -> StreamEnd {
    loop {
        let chunk = tokio::select! {
            biased;
            _ = shared.close.cancelled() => return StreamEnd::Closed,
            c = response.chunk() => c,
        };
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(_) => return StreamEnd::Dropped,
        };
        let now = shared.clock.now_ns();
        if let Some(dropped) = dropped_at.take() {
            shared
                .reconnect_time
                .record(Duration::from_nanos(now.saturating_sub(dropped)));
        }
        let items = parser.feed(&bytes);
        let mut s = lock(state);
        s.heard(now);
        for item in items {
            match item {
                SseItem::Event(e) => match shared.reader.read(&e.data) {
                    Some(seq) => on_seq(shared, &mut s, seq, now),
                    None => s.counts.unsequenced += 1,
                },
                SseItem::Comment(_) => s.counts.comments += 1,
            }
        }
    }
}

fn on_seq(shared: &Shared, s: &mut SubscriberState, seq: u64, now: u64) {
    if !shared.publishing {
        // No publisher: the seqs' own order is the only one there is.
        s.counts.received += 1;
        s.reception.record(seq, |_, _| true);
        return;
    }
    let Some(started) = shared.log.started_ns(seq) else {
        // Never published in this run (e.g. replayed from an earlier run's buffer).
        s.counts.foreign += 1;
        return;
    };
    s.counts.received += 1;
    let arrival = s
        .reception
        .record(seq, |a, b| shared.log.answered_before_started(a, b));
    if arrival != Arrival::Duplicate {
        shared
            .latency
            .record(Duration::from_nanos(now.saturating_sub(started)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(initial_ms: u64, max_ms: u64, jitter_ms: u64) -> ReconnectSpec {
        ReconnectSpec {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            jitter: Duration::from_millis(jitter_ms),
            open_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_servers_retry_wins_and_failures_back_off_to_the_cap() {
        let s = spec(1000, 8000, 0);
        let ms = Duration::from_millis;
        assert_eq!(reconnect_wait(&s, None, 0), ms(1000));
        assert_eq!(reconnect_wait(&s, Some(ms(50)), 0), ms(50));
        assert_eq!(reconnect_wait(&s, Some(ms(50)), 2), ms(200));
        assert_eq!(reconnect_wait(&s, None, 3), ms(8000));
        assert_eq!(reconnect_wait(&s, None, 40), ms(8000));
        // A retry longer than the cap is still honoured (the server asked for it).
        assert_eq!(reconnect_wait(&s, Some(ms(20_000)), 1), ms(20_000));
    }

    #[test]
    fn jitter_adds_at_most_its_amount() {
        let s = spec(100, 1000, 50);
        for _ in 0..200 {
            let w = reconnect_wait(&s, None, 0);
            assert!(
                w >= Duration::from_millis(100) && w <= Duration::from_millis(150),
                "{w:?}"
            );
        }
    }

    #[test]
    fn silence_is_measured_between_arrivals_and_up_to_now() {
        let mut s = SubscriberState::default();
        assert_eq!(s.max_gap_until(99), 0, "never connected: no silence");
        s.heard(10);
        s.heard(15);
        s.heard(40);
        assert_eq!(s.max_gap_ns, 25);
        assert_eq!(s.max_gap_until(50), 25);
        assert_eq!(s.max_gap_until(100), 60);
    }
}
