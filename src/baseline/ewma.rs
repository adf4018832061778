//! EWMA mean and variance (DESIGN §3):
//! `mean ← α·x + (1−α)·mean`, `var ← (1−α)·(var + α·(x−mean_prev)²)`;
//! a sample is anomalous when it lies outside `mean ± k·σ` after `warmup` samples.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BaselineConfig, Direction};
use crate::result::{Band, format_number};

/// The learned normal of one series. `samples == 0` means nothing learned yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EwmaState {
    pub mean: f64,
    pub var: f64,
    pub samples: u64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What the baseline says about one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The band the sample was judged against (None before anything was learned).
    pub band: Option<Band>,
    /// Whether the band was enforced (warm-up done) and the sample fell outside it.
    pub anomalous: bool,
    /// Human explanation when anomalous.
    pub message: Option<String>,
}

impl EwmaState {
    pub fn stddev(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }

    pub fn band(&self, k: f64) -> Option<Band> {
        if self.samples == 0 {
            return None;
        }
        let sd = self.stddev();
        Some(Band {
            mean: self.mean,
            stddev: sd,
            lower: self.mean - k * sd,
            upper: self.mean + k * sd,
            samples: self.samples,
            method: "ewma".into(),
            anomaly_score: 0.0,
        })
    }

    /// Judges `x` against the band learned so far (before `x` is learned).
    pub fn judge(&self, x: f64, cfg: &BaselineConfig) -> Judgement {
        let band = self.band(cfg.k);
        let warmed_up = self.samples >= cfg.warmup.max(1);
        let anomalous = match (&band, warmed_up) {
            (Some(b), true) => match cfg.direction {
                Direction::Both => x < b.lower || x > b.upper,
                Direction::Up => x > b.upper,
                Direction::Down => x < b.lower,
            },
            _ => false,
        };
        let message = band.as_ref().filter(|_| anomalous).map(|b| {
            format!(
                "value {} outside baseline [{}, {}] (mean {}, σ {}, {} samples)",
                format_number(x),
                format_number(b.lower),
                format_number(b.upper),
                format_number(b.mean),
                format_number(b.stddev),
                b.samples
            )
        });
        Judgement {
            band,
            anomalous,
            message,
        }
    }

    /// Learns `x`. The first sample sets the mean; variance starts at zero.
    pub fn update(&mut self, x: f64, alpha: f64, at: DateTime<Utc>) {
        if !x.is_finite() {
            return;
        }
        if self.samples == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let prev = self.mean;
            let d = x - prev;
            self.mean = alpha * x + (1.0 - alpha) * prev;
            self.var = (1.0 - alpha) * (self.var + alpha * d * d);
        }
        self.samples += 1;
        self.updated_at = Some(at);
    }

    /// Judges `x`, then learns it unless it was anomalous and the config keeps anomalies out.
    pub fn observe(&mut self, x: f64, cfg: &BaselineConfig, at: DateTime<Utc>) -> Judgement {
        let j = self.judge(x, cfg);
        if !j.anomalous || cfg.learn_anomalies {
            self.update(x, cfg.alpha, at);
        }
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> BaselineConfig {
        BaselineConfig::default()
    }

    #[test]
    fn update_follows_the_published_recurrence() {
        // Hand-computed table for alpha = 0.5: x = 10, 20, 20.
        let mut s = EwmaState::default();
        let t = Utc::now();
        s.update(10.0, 0.5, t);
        assert_eq!((s.mean, s.var, s.samples), (10.0, 0.0, 1));
        s.update(20.0, 0.5, t);
        // mean = 0.5*20 + 0.5*10 = 15; var = 0.5*(0 + 0.5*100) = 25
        assert_eq!((s.mean, s.var), (15.0, 25.0));
        s.update(20.0, 0.5, t);
        // mean = 17.5; var = 0.5*(25 + 0.5*25) = 18.75
        assert_eq!((s.mean, s.var), (17.5, 18.75));
        assert!((s.stddev() - 18.75f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn nothing_is_anomalous_during_warmup() {
        let mut s = EwmaState::default();
        let c = BaselineConfig { warmup: 5, ..cfg() };
        for x in [1.0, 1.0, 1.0, 1.0, 1000.0] {
            assert!(!s.observe(x, &c, Utc::now()).anomalous);
        }
    }

    #[test]
    fn spike_after_warmup_is_caught_and_explained() {
        let mut s = EwmaState::default();
        let c = cfg();
        for i in 0..40 {
            let x = 100.0 + (i % 5) as f64;
            assert!(!s.observe(x, &c, Utc::now()).anomalous, "sample {i}");
        }
        let j = s.observe(400.0, &c, Utc::now());
        assert!(j.anomalous);
        let msg = j.message.unwrap();
        assert!(msg.starts_with("value 400 outside baseline ["), "{msg}");
        assert!(msg.contains("40 samples"), "{msg}");
    }

    #[test]
    fn anomalies_are_kept_out_of_learning_unless_asked() {
        let c = BaselineConfig { warmup: 3, ..cfg() };
        let mut s = EwmaState::default();
        for x in [10.0, 11.0, 9.0, 10.0] {
            s.observe(x, &c, Utc::now());
        }
        let before = s.clone();
        assert!(s.observe(1000.0, &c, Utc::now()).anomalous);
        assert_eq!(s, before);
        let learn = BaselineConfig {
            learn_anomalies: true,
            ..c
        };
        s.observe(1000.0, &learn, Utc::now());
        assert_eq!(s.samples, before.samples + 1);
    }

    #[test]
    fn direction_limits_the_side() {
        let mut s = EwmaState::default();
        let t = Utc::now();
        for x in [10.0, 12.0, 8.0, 11.0, 9.0] {
            s.update(x, 0.1, t);
        }
        let up = BaselineConfig {
            warmup: 1,
            direction: Direction::Up,
            ..cfg()
        };
        assert!(!s.judge(-100.0, &up).anomalous);
        assert!(s.judge(100.0, &up).anomalous);
        let down = BaselineConfig {
            direction: Direction::Down,
            ..up
        };
        assert!(s.judge(-100.0, &down).anomalous);
        assert!(!s.judge(100.0, &down).anomalous);
    }

    proptest! {
        #[test]
        fn variance_never_negative_and_mean_within_range(xs in proptest::collection::vec(-1e6f64..1e6, 1..200), alpha in 0.01f64..1.0) {
            let mut s = EwmaState::default();
            let t = Utc::now();
            for &x in &xs { s.update(x, alpha, t); }
            let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(s.var >= 0.0);
            prop_assert!(s.mean >= lo - 1e-6 && s.mean <= hi + 1e-6);
            prop_assert_eq!(s.samples, xs.len() as u64);
        }

        #[test]
        fn constant_series_converges_to_zero_variance(c in -1e3f64..1e3, n in 1usize..100) {
            let mut s = EwmaState::default();
            for _ in 0..n { s.update(c, 0.3, Utc::now()); }
            prop_assert!((s.mean - c).abs() < 1e-9);
            prop_assert!(s.var.abs() < 1e-9);
        }

        #[test]
        fn the_mean_is_always_inside_its_own_band(xs in proptest::collection::vec(0f64..1e4, 2..100), k in 0.5f64..6.0) {
            let mut s = EwmaState::default();
            for &x in &xs { s.update(x, 0.2, Utc::now()); }
            let c = BaselineConfig { warmup: 1, k, ..BaselineConfig::default() };
            prop_assert!(!s.judge(s.mean, &c).anomalous);
        }
    }
}
