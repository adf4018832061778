//! Per-receiver rate budgets: token buckets refilled continuously, one per window (a receiver may
//! have a per-minute and a per-second limit, as Feishu does). Driven by the caller's clock, so the
//! sender's logic is testable without waiting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many deliveries a receiver accepts per window; `None` means no limit for that window.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default)]
    pub per_minute: Option<u32>,
    #[serde(default)]
    pub per_second: Option<u32>,
}

impl RateLimit {
    pub const UNLIMITED: RateLimit = RateLimit {
        per_minute: None,
        per_second: None,
    };

    /// The vendors' documented limits: DingTalk and WeCom robots 20 messages a minute, Feishu bots
    /// 100 a minute and 5 a second; other kinds have none.
    pub fn default_for_kind(kind: &str) -> RateLimit {
        match kind {
            "dingtalk" | "wecom" => RateLimit {
                per_minute: Some(20),
                per_second: None,
            },
            "feishu" => RateLimit {
                per_minute: Some(100),
                per_second: Some(5),
            },
            _ => RateLimit::UNLIMITED,
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    capacity: f64,
    refill_per_second: f64,
    tokens: f64,
    at: DateTime<Utc>,
}

impl Bucket {
    fn new(per_window: u32, window_seconds: f64, now: DateTime<Utc>) -> Bucket {
        let capacity = f64::from(per_window);
        Bucket {
            capacity,
            refill_per_second: capacity / window_seconds,
            tokens: capacity,
            at: now,
        }
    }

    /// Adds what accrued since the last look; a clock going backwards adds nothing.
    fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.refill_per_second).min(self.capacity);
            self.at = now;
        }
    }
}

/// A receiver's remaining budget.
#[derive(Clone, Debug)]
pub struct Budget {
    buckets: Vec<Bucket>,
}

impl Budget {
    /// A full budget (a receiver may send its whole allowance at once after a quiet spell).
    pub fn new(limit: RateLimit, now: DateTime<Utc>) -> Budget {
        let buckets = [(limit.per_minute, 60.0), (limit.per_second, 1.0)]
            .into_iter()
            .filter_map(|(n, window)| n.map(|n| Bucket::new(n, window, now)))
            .collect();
        Budget { buckets }
    }

    /// Whole deliveries allowed at `now` (`u32::MAX` when unlimited).
    pub fn available(&mut self, now: DateTime<Utc>) -> u32 {
        self.buckets
            .iter_mut()
            .map(|b| {
                b.refill(now);
                b.tokens.floor() as u32
            })
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Spends one delivery; false (and nothing spent) when the budget is exhausted.
    pub fn take(&mut self, now: DateTime<Utc>) -> bool {
        if self.available(now) == 0 {
            return false;
        }
        for b in &mut self.buckets {
            b.tokens -= 1.0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_per_minute_budget_refills_one_token_per_share_of_the_minute() {
        let mut b = Budget::new(RateLimit::default_for_kind("dingtalk"), t0());
        assert_eq!(b.available(t0()), 20);
        for _ in 0..20 {
            assert!(b.take(t0()));
        }
        assert!(!b.take(t0()));
        assert_eq!(b.available(t0() + Duration::seconds(2)), 0);
        assert_eq!(b.available(t0() + Duration::seconds(3)), 1);
        assert_eq!(b.available(t0() + Duration::minutes(10)), 20, "capped");
    }

    #[test]
    fn the_tighter_window_decides() {
        let mut b = Budget::new(RateLimit::default_for_kind("feishu"), t0());
        assert_eq!(b.available(t0()), 5);
        for _ in 0..5 {
            assert!(b.take(t0()));
        }
        assert!(!b.take(t0()));
        assert_eq!(b.available(t0() + Duration::seconds(1)), 5);
    }

    #[test]
    fn unlimited_kinds_never_run_out_and_a_backwards_clock_adds_nothing() {
        let mut b = Budget::new(RateLimit::default_for_kind("webhook"), t0());
        assert_eq!(b.available(t0()), u32::MAX);
        assert!(b.take(t0()));
        let mut b = Budget::new(
            RateLimit {
                per_minute: Some(1),
                per_second: None,
            },
            t0(),
        );
        assert!(b.take(t0()));
        assert_eq!(b.available(t0() - Duration::hours(1)), 0);
    }
}
