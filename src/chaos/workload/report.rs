//! What a workload reports, and the lock-free histogram its percentiles come from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Exact below 64 µs, then 64 sub-buckets per power of two: under 1.6 % error up to u64::MAX µs.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// Durations recorded from many tasks at once (microsecond resolution), summarised as
/// percentiles. About 30 KiB whatever the count.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0..=1), within the bucket's precision; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let max = self.max_us.load(Ordering::Relaxed);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_micros(bucket_middle(i).min(max)));
            }
        }
        Some(Duration::from_micros(max))
    }

    pub fn max(&self) -> Option<Duration> {
        (self.count() > 0).then(|| Duration::from_micros(self.max_us.load(Ordering::Relaxed)))
    }

    /// How many values fell at or under each upper bound (ms), then above the last one: a
    /// coarse, fixed-bucket view of the distribution for reports. A fine bucket counts under
    /// the first bound at or above its lowest value, so a value right on a bound counts under
    /// it; values just above a bound may too, within the fine buckets' 1.6 %.
    pub fn distribution(&self, upper_bounds_ms: &[f64]) -> Vec<BucketCount> {
        let mut out: Vec<BucketCount> = upper_bounds_ms
            .iter()
            .map(|&le| BucketCount {
                le_ms: Some(le),
                count: 0,
            })
            .chain(std::iter::once(BucketCount {
                le_ms: None,
                count: 0,
            }))
            .collect();
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let ms = bucket_low(i) as f64 / 1000.0;
            let slot = upper_bounds_ms
                .iter()
                .position(|&le| ms <= le)
                .unwrap_or(upper_bounds_ms.len());
            out[slot].count += n;
        }
        out
    }

    /// Count, p50, p99 and max in milliseconds.
    pub fn millis(&self) -> Millis {
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Millis {
            count: self.count(),
            p50: ms(self.quantile(0.5)),
            p99: ms(self.quantile(0.99)),
            max: ms(self.max()),
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // ≥ SUB_BITS
    let mantissa = (us >> (exp - SUB_BITS)) - SUB;
    (SUB + u64::from(exp - SUB_BITS) * SUB + mantissa) as usize
}

/// The lowest value of bucket `i`, and the width of its range.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let k = i - SUB;
    let shift = k / SUB;
    ((SUB + k % SUB) << shift, 1u64 << shift)
}

fn bucket_low(i: usize) -> u64 {
    bucket_range(i).0
}

/// The middle of bucket `i`'s value range.
fn bucket_middle(i: usize) -> u64 {
    let (low, width) = bucket_range(i);
    low + (width - 1) / 2
}

/// Percentiles of a duration, in milliseconds (0 when nothing was recorded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Millis {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// One bar of a coarse distribution: values at or under `le_ms` (and above the previous
/// bound); `None` is the overflow bucket above the last bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketCount {
    pub le_ms: Option<f64>,
    pub count: u64,
}

/// Upper bounds (ms) of the reconnect-time distribution in reports: a browser's reconnect
/// spans a few ms (server restarted at once) to many seconds (backoff).
pub const RECONNECT_BOUNDS_MS: [f64; 10] = [
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
];

/// The SSE workload's verdict and measurements.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SseWorkloadReport {
    /// Subscribers asked for.
    pub subscribers: u32,
    /// Subscribers that connected at least once (response headers received).
    pub connected: u32,
    /// Subscribers that never connected: owed nothing, so their loss is unknown.
    pub never_connected: u32,
    /// Subscribers without an open stream when the workload closed.
    pub disconnected_at_end: u32,
    /// Accepted publishes (2xx).
    pub published: u64,
    /// Publishes that failed (transport error or non-2xx): their seqs are not owed.
    pub publish_failed: u64,
    /// A few distinct reasons publishes failed (`HTTP 503`, a transport error).
    pub publish_errors: Vec<String>,
    /// Deliveries of events carrying a seq of this run, duplicates included.
    pub received: u64,
    /// Events whose data held no readable seq.
    pub unsequenced: u64,
    /// Events with a seq this run's publisher never started (e.g. replayed from an earlier
    /// run): set aside, neither owed nor counted as received.
    pub foreign: u64,
    /// Comment lines (heartbeats) received.
    pub comments: u64,
    /// Seqs owed, summed over subscribers.
    pub expected: u64,
    /// Owed seqs never received by the end of the drain, summed over subscribers.
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Streams that dropped (each followed by a reconnection attempt).
    pub reconnects: u64,
    /// Connection attempts that failed (refused, non-2xx, wrong content type).
    pub connect_errors: u64,
    pub subscribers_with_loss: u32,
    /// Drop → first byte of the new stream, over completed reconnections.
    pub reconnect_ms: Millis,
    /// The same reconnection times over [`RECONNECT_BOUNDS_MS`], for the report's histogram.
    #[serde(default)]
    pub reconnect_distribution: Vec<BucketCount>,
    /// The longest silence (no bytes: no event, no heartbeat) any subscriber saw.
    pub max_gap_ms: f64,
    /// Each subscriber's longest silence, as a distribution over subscribers.
    pub gap_ms: Millis,
    /// Publish start → event received, first deliveries only.
    pub latency_ms: Millis,
    /// Whether every connected subscriber had everything it was owed before the drain ran out.
    pub drained: bool,
    pub wall_secs: f64,
    /// Up to 20 subscribers with loss, most lost first.
    pub worst: Vec<SubscriberSummary>,
}

/// One subscriber, for the report's `worst` list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriberSummary {
    /// Index in the swarm (0-based).
    pub subscriber: u32,
    /// First connect, ms after the workload started.
    pub first_connect_ms: Option<f64>,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// The lowest lost seqs (up to 20).
    pub lost_sample: Vec<u64>,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub reconnects: u32,
    pub max_gap_ms: f64,
}

/// Live counters of the SSE workload (for the drill's progress display and `abort_when`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SwarmProgress {
    pub subscribers: u32,
    /// Streams open now.
    pub connected: u32,
    /// Subscribers that connected at least once.
    pub ever_connected: u32,
    /// Accepted publishes so far.
    pub published: u64,
    pub publish_failed: u64,
    /// The highest seq handed to a publish so far (every later seq starts after this reading).
    pub last_seq_started: u64,
    pub received: u64,
    pub reconnects: u64,
    /// Connection attempts that failed so far.
    pub connect_errors: u64,
    /// Owed seqs missing below what each subscriber already received (provisional; the final
    /// accounting after the drain is the verdict).
    pub lost_so_far: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS, "{us}");
            last = b;
            let mid = bucket_middle(b) as f64;
            assert!(
                (mid - us as f64).abs() <= us as f64 / 60.0 + 0.5,
                "{us} → {mid}"
            );
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_values() {
        let h = Histogram::default();
        assert_eq!(h.millis(), Millis::default());
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let m = h.millis();
        assert_eq!(m.count, 100);
        assert!((m.p50 - 50.0).abs() < 1.0, "{m:?}");
        assert!((m.p99 - 99.0).abs() < 1.6, "{m:?}");
        assert_eq!(m.max, 100.0);
        // A single huge value only moves the top.
        h.record(Duration::from_secs(3600));
        assert!((h.millis().p50 - 51.0).abs() < 1.0);
        assert_eq!(h.max(), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn the_distribution_counts_every_value_once_under_its_bound() {
        let h = Histogram::default();
        for ms in [3, 9, 10, 40, 700, 700, 30_000] {
            h.record(Duration::from_millis(ms));
        }
        let d = h.distribution(&[10.0, 100.0, 1_000.0]);
        let counts: Vec<u64> = d.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![3, 1, 2, 1]);
        assert_eq!(d[3].le_ms, None);
        assert_eq!(d.iter().map(|b| b.count).sum::<u64>(), h.count());
    }
}
