//! The SSE swarm: N subscribers opened at `connect_rate`/s (one small tokio task each), a
//! constant-rate publisher, live progress, and the final zero-loss report after a drain.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::accounting::{Publications, account, provisional_lost};
use super::fd_limit::raise_fd_limit;
use super::publish::{PublishLog, Publisher};
use super::report::{
    Histogram, RECONNECT_BOUNDS_MS, SseWorkloadReport, SubscriberSummary, SwarmProgress,
};
use super::sequence::SequenceReader;
use super::subscriber::{self, Counts, Shared, StateCell, SubscriberState, lock};
use super::{Clock, SseWorkloadSpec, ns_to_ms, request_parts};

/// First connection attempts in flight at once when no connect rate is set.
const OPENING_AT_ONCE: usize = 256;
/// Descriptors kept free beyond one per subscriber (publisher connections, the runtime, logs).
const FD_MARGIN: u64 = 64;
const FD_MARGIN_PUBLISHING: u64 = 128;
/// How long closing may take before the remaining tasks are aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// How often `finish` checks whether everyone caught up.
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// Subscribers listed in the report's `worst`, and lost seqs sampled for each.
const WORST: usize = 20;
const LOST_SAMPLE: usize = 20;

/// A running SSE workload. Dropping it without [`SseSwarm::finish`] stops everything.
pub struct SseSwarm {
    shared: Arc<Shared>,
    states: Vec<StateCell>,
    tasks: Vec<JoinHandle<()>>,
    publisher: Option<Publisher>,
    started: std::time::Instant,
}

impl SseSwarm {
    /// Checks the spec, makes room for the sockets and starts the subscribers and the publisher.
    /// Must be called inside a tokio runtime. The client must have no overall request timeout
    /// (streams are long-lived); publishes get their own timeout.
    pub fn start(spec: &SseWorkloadSpec, http: reqwest::Client) -> Result<SseSwarm, String> {
        spec.check()?;
        tokio::runtime::Handle::try_current()
            .map_err(|_| "the SSE swarm must be started inside a tokio runtime".to_string())?;
        let (url, _, headers) =
            request_parts(&spec.url, "GET", &spec.headers).map_err(|(f, e)| format!("{f}: {e}"))?;
        let reader = SequenceReader::parse(&spec.sequence).map_err(|e| format!("sequence: {e}"))?;
        let plan = spec.publish.as_ref().map(|p| p.plan()).transpose()?;
        let margin = if plan.is_some() {
            FD_MARGIN_PUBLISHING
        } else {
            FD_MARGIN
        };
        raise_fd_limit(u64::from(spec.subscribers) + margin)
            .map_err(|e| format!("cannot hold {} SSE subscribers: {e}", spec.subscribers))?;
        let clock = Clock::start();
        let log = Arc::new(PublishLog::default());
        let shared = Arc::new(Shared {
            http: http.clone(),
            url,
            headers,
            reconnect: spec.reconnect.clone(),
            reader,
            clock,
            log: log.clone(),
            publishing: plan.is_some(),
            close: CancellationToken::new(),
            opening: spec
                .connect_rate
                .is_none()
                .then(|| Arc::new(Semaphore::new(OPENING_AT_ONCE))),
            connected_now: AtomicU32::new(0),
            ever_connected: AtomicU32::new(0),
            reconnects: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            latency: Histogram::default(),
            reconnect_time: Histogram::default(),
        });
        let mut states = Vec::with_capacity(spec.subscribers as usize);
        let mut tasks = Vec::with_capacity(spec.subscribers as usize);
        for i in 0..spec.subscribers {
            let state: StateCell = Arc::new(Mutex::new(SubscriberState::default()));
            let delay = spec.connect_rate.map_or(Duration::ZERO, |rate| {
                Duration::from_secs_f64(f64::from(i) / rate)
            });
            tasks.push(tokio::spawn(subscriber::run(
                shared.clone(),
                state.clone(),
                delay,
            )));
            states.push(state);
        }
        let publisher = plan.map(|plan| Publisher::spawn(plan, http, log, clock));
        Ok(SseSwarm {
            shared,
            states,
            tasks,
            publisher,
            started: std::time::Instant::now(),
        })
    }

    /// Live counters; `lost_so_far` is provisional (see [`SwarmProgress`]).
    pub fn progress(&self) -> SwarmProgress {
        let s = &self.shared;
        let pubs = s.log.snapshot();
        let (mut lost_so_far, mut counts) = (0, Counts::default());
        for st in &self.states {
            let st = lock(st);
            lost_so_far += provisional_lost(&pubs, st.first_connect_ns, &st.reception);
            counts += st.counts;
        }
        SwarmProgress {
            subscribers: self.states.len() as u32,
            connected: s.connected_now.load(Ordering::Relaxed),
            ever_connected: s.ever_connected.load(Ordering::Relaxed),
            published: s.log.accepted(),
            publish_failed: s.log.failed(),
            last_seq_started: s.log.last_seq(),
            received: counts.received,
            reconnects: s.reconnects.load(Ordering::Relaxed),
            connect_errors: s.connect_errors.load(Ordering::Relaxed),
            lost_so_far,
        }
    }

    /// Stops publishing (publishes in flight complete); subscribers keep reading.
    pub fn stop_publishing(&self) {
        if let Some(p) = &self.publisher {
            p.stop();
        }
    }

    /// Stops publishing if not already, waits until every subscriber that connected has
    /// received every seq it is owed or `drain` elapsed, then closes every stream and reports.
    pub async fn finish(mut self, drain: Duration) -> SseWorkloadReport {
        if let Some(p) = self.publisher.take() {
            p.finish().await;
        }
        let pubs = self.shared.log.snapshot();
        let deadline = tokio::time::Instant::now() + drain;
        let drained = loop {
            if self.all_caught_up(&pubs) {
                break true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break false;
            }
            tokio::time::sleep(DRAIN_POLL.min(deadline - now)).await;
        };
        let end_ns = self.shared.clock.now_ns();
        let open_at_end: Vec<bool> = self.states.iter().map(|s| lock(s).open).collect();
        self.close().await;
        self.report(&pubs, drained, end_ns, &open_at_end)
    }

    fn all_caught_up(&self, pubs: &Publications) -> bool {
        self.states.iter().all(|st| {
            let st = lock(st);
            st.first_connect_ns.is_none()
                || account(pubs, st.first_connect_ns, &st.reception, 0).lost == 0
        })
    }

    /// Cancels every subscriber and waits for them (aborting any that hang).
    async fn close(&mut self) {
        self.shared.close.cancel();
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(CLOSE_GRACE, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                "sse swarm: subscribers still running after {CLOSE_GRACE:?}; aborting them"
            );
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    fn report(
        &self,
        pubs: &Publications,
        drained: bool,
        end_ns: u64,
        open_at_end: &[bool],
    ) -> SseWorkloadReport {
        let s = &self.shared;
        let gaps = Histogram::default();
        let mut r = SseWorkloadReport {
            subscribers: self.states.len() as u32,
            published: pubs.accepted_count(),
            publish_failed: pubs.attempts() - pubs.accepted_count(),
            publish_errors: s.log.errors(),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            connect_errors: s.connect_errors.load(Ordering::Relaxed),
            reconnect_ms: s.reconnect_time.millis(),
            reconnect_distribution: s.reconnect_time.distribution(&RECONNECT_BOUNDS_MS),
            latency_ms: s.latency.millis(),
            drained,
            wall_secs: self.started.elapsed().as_secs_f64(),
            ..SseWorkloadReport::default()
        };
        let mut lossy = Vec::new();
        for (i, state) in self.states.iter().enumerate() {
            let st = lock(state);
            r.received += st.counts.received;
            r.unsequenced += st.counts.unsequenced;
            r.foreign += st.counts.foreign;
            r.comments += st.counts.comments;
            let Some(first) = st.first_connect_ns else {
                r.never_connected += 1;
                continue;
            };
            r.connected += 1;
            if !open_at_end[i] {
                r.disconnected_at_end += 1;
            }
            let a = account(pubs, Some(first), &st.reception, LOST_SAMPLE);
            let gap = st.max_gap_until(end_ns);
            gaps.record(Duration::from_nanos(gap));
            r.expected += a.expected;
            r.lost += a.lost;
            r.duplicates += a.duplicates;
            r.out_of_order += a.out_of_order;
            if a.lost > 0 {
                r.subscribers_with_loss += 1;
                lossy.push(SubscriberSummary {
                    subscriber: i as u32,
                    first_connect_ms: Some(ns_to_ms(first)),
                    expected: a.expected,
                    received: a.received,
                    lost: a.lost,
                    lost_sample: a.lost_sample,
                    duplicates: a.duplicates,
                    out_of_order: a.out_of_order,
                    reconnects: st.reconnects,
                    max_gap_ms: ns_to_ms(gap),
                });
            }
        }
        r.gap_ms = gaps.millis();
        r.max_gap_ms = r.gap_ms.max;
        lossy.sort_by(|a, b| b.lost.cmp(&a.lost).then(a.subscriber.cmp(&b.subscriber)));
        lossy.truncate(WORST);
        r.worst = lossy;
        r
    }
}

impl Drop for SseSwarm {
    fn drop(&mut self) {
        self.shared.close.cancel();
        if let Some(p) = &self.publisher {
            p.stop();
        }
    }
}
