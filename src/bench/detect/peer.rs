//! The named peer of `patrol bench detect`: a Zabbix-style seasonal average, the reference a
//! team without patrol has (Zabbix `baselinedev`/`trendavg`: the same time of day over the
//! previous days). For a sample at `t` it pools every earlier sample within `±half_window` of
//! `t − d·1 day` for d = 1 … `days`, and calls the sample anomalous when it lies more than
//! `k` population standard deviations from their mean. Scores use the same z²/(z²+9) mapping as
//! patrol's, so ranking quality compares like with like. Online: each verdict reads only
//! samples pushed before it. It keeps every sample it was given (Zabbix keeps raw history too;
//! anomalies are not left out).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::baseline::score::from_z;

const DAY: i64 = 86_400;

/// What the peer says about one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeerVerdict {
    pub score: f64,
    pub anomalous: bool,
}

/// The peer's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeasonalAverageConfig {
    /// Previous days compared.
    pub days: i64,
    /// Seconds either side of the same time of day.
    pub half_window: i64,
    /// Band half-width in standard deviations.
    pub k: f64,
    /// Days that must have samples before the peer judges.
    pub min_days: usize,
}

impl Default for SeasonalAverageConfig {
    fn default() -> Self {
        SeasonalAverageConfig {
            days: 7,
            half_window: 600,
            k: 3.0,
            min_days: 2,
        }
    }
}

/// One series judged by the seasonal average.
#[derive(Clone, Debug)]
pub struct SeasonalAverage {
    cfg: SeasonalAverageConfig,
    /// (unix seconds, value), sorted by time.
    past: VecDeque<(i64, f64)>,
}

impl SeasonalAverage {
    pub fn new(cfg: SeasonalAverageConfig) -> SeasonalAverage {
        SeasonalAverage {
            cfg,
            past: VecDeque::new(),
        }
    }

    /// Judges `x` at `t` against the earlier days, then remembers it.
    pub fn push(&mut self, t: DateTime<Utc>, x: f64) -> PeerVerdict {
        let now = t.timestamp();
        let verdict = self.judge(now, x);
        let at = self.past.partition_point(|p| p.0 <= now);
        self.past.insert(at, (now, x));
        let oldest = now - self.cfg.days * DAY - self.cfg.half_window;
        while self.past.front().is_some_and(|p| p.0 < oldest) {
            self.past.pop_front();
        }
        verdict
    }

    fn judge(&self, now: i64, x: f64) -> PeerVerdict {
        let (mut n, mut sum, mut sum_sq, mut days) = (0usize, 0.0, 0.0, 0usize);
        for d in 1..=self.cfg.days {
            let centre = now - d * DAY;
            let from = self
                .past
                .partition_point(|p| p.0 < centre - self.cfg.half_window);
            let to = self
                .past
                .partition_point(|p| p.0 <= centre + self.cfg.half_window);
            if to > from {
                days += 1;
            }
            for &(_, v) in self.past.range(from..to) {
                n += 1;
                sum += v;
                sum_sq += v * v;
            }
        }
        if days < self.cfg.min_days || n < 2 {
            return PeerVerdict {
                score: 0.0,
                anomalous: false,
            };
        }
        let mean = sum / n as f64;
        let sd = (sum_sq / n as f64 - mean * mean).max(0.0).sqrt();
        let z = if sd > 0.0 {
            (x - mean) / sd
        } else if x == mean {
            0.0
        } else {
            f64::INFINITY
        };
        PeerVerdict {
            score: from_z(z),
            anomalous: z.abs() > self.cfg.k,
        }
    }

    /// Bytes this series holds (the struct and its kept samples).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.past.capacity() * std::mem::size_of::<(i64, f64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_067_200 + secs, 0).unwrap()
    }

    #[test]
    fn it_waits_for_two_days_then_compares_the_same_time_of_day() {
        let mut p = SeasonalAverage::new(SeasonalAverageConfig::default());
        // A daily pattern: 10 at night (hour < 12), 100 by day, with ±1 wiggle.
        let value = |i: i64| {
            let hour = (i * 300 % DAY) / 3600;
            (if hour < 12 { 10.0 } else { 100.0 }) + (i % 3) as f64 - 1.0
        };
        for i in 0..(2 * DAY / 300) {
            let v = p.push(at(i * 300), value(i));
            assert!(!v.anomalous, "day 0-1 sample {i} judged before two days");
        }
        // Day 2: the usual afternoon is normal, a 50 at 02:00 is not (the nights were 10 ± 1).
        let v = p.push(at(2 * DAY + 13 * 3600), 100.0);
        assert!(!v.anomalous && v.score < 0.2, "{v:?}");
        let v = p.push(at(2 * DAY + 2 * 3600), 50.0);
        assert!(v.anomalous && v.score > 0.9, "{v:?}");
    }

    #[test]
    fn samples_older_than_the_compared_days_are_dropped() {
        let cfg = SeasonalAverageConfig {
            days: 2,
            ..SeasonalAverageConfig::default()
        };
        let mut p = SeasonalAverage::new(cfg);
        for i in 0..(5 * DAY / 300) {
            p.push(at(i * 300), 1.0);
        }
        // Two days plus the half window, at 5-minute steps.
        assert!(
            p.past.len() <= (2 * DAY + 600) as usize / 300 + 1,
            "{}",
            p.past.len()
        );
        assert!(p.state_bytes() > p.past.len() * 16);
    }

    #[test]
    fn a_constant_history_flags_any_change_and_out_of_order_samples_are_kept_sorted() {
        let mut p = SeasonalAverage::new(SeasonalAverageConfig::default());
        for i in (0..(3 * DAY / 300)).rev() {
            p.push(at(i * 300), 5.0);
        }
        assert!(
            p.past
                .iter()
                .zip(p.past.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0)
        );
        let mut q = SeasonalAverage::new(SeasonalAverageConfig::default());
        for i in 0..(3 * DAY / 300) {
            q.push(at(i * 300), 5.0);
        }
        assert!(!q.push(at(3 * DAY), 5.0).anomalous);
        assert!(q.push(at(3 * DAY + 300), 5.5).anomalous);
    }
}
