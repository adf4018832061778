//! The speed half of `patrol bench detect`: ns per EWMA update (the hot path of every live
//! sample) and the time to refit many seasonal models (the background work of the daemon).

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::generate::{self, DAY_SECS};
use super::method_config;
use crate::baseline::{BaselineConfig, BaselineMethod, EwmaState, FitOutcome, Model, forecast};
use crate::bench::Memory;

#[derive(Clone, Debug, Serialize)]
pub struct EwmaTiming {
    pub updates: u64,
    /// `EwmaState::update`: the mean/variance recurrence alone.
    pub update_ns: f64,
    /// `detector::observe` with method ewma: band, score, verdict and update — what a live
    /// sample costs.
    pub observe_ns: f64,
}

/// Times `updates` EWMA updates, then as many full verdicts.
pub fn time_ewma(updates: u64) -> EwmaTiming {
    let updates = updates.max(1);
    let at: DateTime<Utc> = DateTime::from_timestamp(generate::START, 0).unwrap_or_default();
    let value = |i: u64| 100.0 + (i.wrapping_mul(7919) % 1000) as f64 * 0.01;

    let mut state = EwmaState::default();
    let started = Instant::now();
    for i in 0..updates {
        state.update(black_box(value(i)), 0.1, at);
    }
    black_box(&state);
    let update = started.elapsed();

    let cfg = BaselineConfig::default();
    let mut state = EwmaState::default();
    let started = Instant::now();
    for i in 0..updates {
        let v = crate::baseline::observe(&cfg, &mut state, Model::None, None, value(i), at);
        black_box(v);
    }
    let observe = started.elapsed();
    EwmaTiming {
        updates,
        update_ns: update.as_nanos() as f64 / updates as f64,
        observe_ns: observe.as_nanos() as f64 / updates as f64,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RefitTiming {
    pub series: usize,
    /// Mean samples per fitted history (the generated weeks lose and duplicate a few).
    pub points_per_series: f64,
    pub threads: usize,
    /// Wall time of all fits on `threads` threads: the busiest thread's time spent fitting
    /// (generating the series is not counted).
    pub wall_secs: f64,
    pub fit_ms_mean: f64,
    pub fit_ms_p50: f64,
    pub fit_ms_p99: f64,
    pub fit_ms_max: f64,
    pub fitted: usize,
    pub learning: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub peak_rss_kib: Option<u64>,
}

enum Fit {
    Fitted,
    Learning,
    Failed(String),
}

/// Fits a seasonal model (period 1d, all 7 days of history) on each of `n` generated series
/// of 2,016 points, on `threads` threads.
pub fn time_refits(n: usize, threads: usize) -> RefitTiming {
    let cfg = BaselineConfig {
        history: Some(Duration::from_secs(7 * DAY_SECS as u64)),
        ..method_config(BaselineMethod::Seasonal)
    };
    let step = Duration::from_secs(generate::STEP_SECS as u64);
    let horizon = forecast::horizon(&cfg, step);
    let results: Mutex<Vec<(Duration, usize, Fit)>> = Mutex::new(Vec::with_capacity(n));
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, n.max(1));
    super::super::usage::reset_peak_rss();
    let mut wall = Duration::ZERO;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut fitting = Duration::ZERO;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let points = generate::variant(i, 7).points;
                        let t0 = Instant::now();
                        let outcome = forecast::fit(&cfg, &points, step, horizon);
                        let took = t0.elapsed();
                        fitting += took;
                        let fit = match outcome {
                            Ok(FitOutcome::Fitted(f)) => {
                                black_box(f);
                                Fit::Fitted
                            }
                            Ok(FitOutcome::Learning { .. }) => Fit::Learning,
                            Err(e) => Fit::Failed(e),
                        };
                        results.lock().unwrap_or_else(|p| p.into_inner()).push((
                            took,
                            points.len(),
                            fit,
                        ));
                    }
                    fitting
                })
            })
            .collect();
        // The busiest thread's fitting time: the wall time of the fits, without generating.
        for w in workers {
            wall = wall.max(w.join().unwrap_or_default());
        }
    });
    let peak_rss_kib = Memory::now().map(|m| m.peak_kib);
    summarise(
        results.into_inner().unwrap_or_else(|p| p.into_inner()),
        threads,
        wall,
        peak_rss_kib,
    )
}

fn summarise(
    results: Vec<(Duration, usize, Fit)>,
    threads: usize,
    wall: Duration,
    peak_rss_kib: Option<u64>,
) -> RefitTiming {
    let mut ms: Vec<f64> = results.iter().map(|r| r.0.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if ms.is_empty() {
            0.0
        } else {
            ms[((ms.len() - 1) as f64 * p).round() as usize]
        }
    };
    let count = |f: fn(&Fit) -> bool| results.iter().filter(|r| f(&r.2)).count();
    RefitTiming {
        series: results.len(),
        points_per_series: results.iter().map(|r| r.1).sum::<usize>() as f64
            / results.len().max(1) as f64,
        threads,
        wall_secs: wall.as_secs_f64(),
        fit_ms_mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
        fit_ms_p50: pct(0.5),
        fit_ms_p99: pct(0.99),
        fit_ms_max: ms.last().copied().unwrap_or(0.0),
        fitted: count(|f| matches!(f, Fit::Fitted)),
        learning: count(|f| matches!(f, Fit::Learning)),
        failed: count(|f| matches!(f, Fit::Failed(_))),
        first_error: results.iter().find_map(|r| match &r.2 {
            Fit::Failed(e) => Some(e.clone()),
            _ => None,
        }),
        peak_rss_kib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_timing_counts_every_update() {
        let t = time_ewma(10_000);
        assert_eq!(t.updates, 10_000);
        assert!(t.update_ns > 0.0 && t.observe_ns > 0.0, "{t:?}");
    }

    #[test]
    fn refit_timing_fits_every_series_and_sorts_outcomes() {
        let t = time_refits(3, 2);
        assert_eq!(t.series, 3);
        assert_eq!(t.fitted + t.learning + t.failed, 3);
        assert!(t.points_per_series > 1900.0, "{t:?}");
        assert!(t.fit_ms_p50 <= t.fit_ms_max && t.wall_secs >= 0.0);
        assert_eq!(t.first_error.is_some(), t.failed > 0);
    }
}
