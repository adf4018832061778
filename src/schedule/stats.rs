//! What the scheduler did: per-job counters and a lateness histogram across all jobs.
//!
//! The histogram is log-linear (32 buckets per power of two of microseconds, so a quantile is
//! within about 3 % of the true value) and has a fixed size, so it can take every observation of a
//! daemon running for months.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::scheduler::JobKey;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of durations in microseconds, with quantiles.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    sum_micros: u128,
    max_micros: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: vec![0; BUCKETS],
            count: 0,
            sum_micros: 0,
            max_micros: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(micros)] += 1;
        self.count += 1;
        self.sum_micros += u128::from(micros);
        self.max_micros = self.max_micros.max(micros);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q`-quantile (0.0–1.0): the middle of the bucket holding it, never above the maximum.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_range(i);
                return Duration::from_micros((low + width / 2).min(self.max_micros));
            }
        }
        Duration::from_micros(self.max_micros)
    }

    pub fn summary(&self) -> LatenessSummary {
        let mean = if self.count == 0 {
            0
        } else {
            (self.sum_micros / u128::from(self.count)) as u64
        };
        LatenessSummary {
            count: self.count,
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: Duration::from_micros(self.max_micros),
            mean: Duration::from_micros(mean),
        }
    }
}

/// Values below `SUB` µs have a bucket each; above, each power of two is cut into `SUB` parts.
fn bucket_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros();
    let mantissa = (micros >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + mantissa) as usize
}

/// Lowest value and width of bucket `i`.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let exp = (i / SUB - 1) as u32 + SUB_BITS;
    let mantissa = i % SUB;
    let width = 1u64 << (exp - SUB_BITS);
    ((SUB + mantissa) * width, width)
}

/// Lateness quantiles (actual start − planned start, jitter included in the plan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatenessSummary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// One job's counters since the scheduler started (kept across reloads while the key stays).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobStats {
    /// Runs handed to the runner.
    pub started: u64,
    /// Fires not run because the previous run was still going.
    pub skipped: u64,
    /// Fires dropped because the scheduler was more than a whole period behind (a suspended host,
    /// a wall clock set forward).
    pub missed: u64,
    pub last_lateness: Option<Duration>,
    pub next_planned: Option<DateTime<Utc>>,
    pub running: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ScheduleStats {
    pub jobs: BTreeMap<JobKey, JobStats>,
    /// Lateness of every scheduled start so far (catch-up runs at start excluded: their lateness
    /// is the downtime, not the scheduler's).
    pub lateness: LatenessSummary,
    pub in_flight: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5_000u64).chain([1 << 20, (1 << 40) + 12345, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= last, "buckets are monotonic");
            last = b;
            let (low, width) = bucket_range(b);
            assert!(low <= v && v - low < width, "{v} in [{low}, {low}+{width})");
        }
    }

    #[test]
    fn quantiles_are_within_a_few_percent() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let close = |got: Duration, want_ms: f64| {
            let got = got.as_secs_f64() * 1000.0;
            assert!(
                (got - want_ms).abs() / want_ms < 0.035,
                "{got} vs {want_ms}"
            );
        };
        close(h.quantile(0.5), 500.0);
        close(h.quantile(0.99), 990.0);
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max, Duration::from_millis(1000));
        assert_eq!(s.mean, Duration::from_micros(500_500));
        assert!(h.quantile(1.0) <= s.max);
    }

    #[test]
    fn empty_and_single_value_histograms() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.summary(), LatenessSummary::default());
        h.record(Duration::from_micros(7));
        assert_eq!(h.quantile(0.5), Duration::from_micros(7));
        assert_eq!(h.quantile(0.0), Duration::from_micros(7));
    }
}
