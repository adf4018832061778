//! `seasonal` and `ets`: a model fitted from a series' stored history, turned into a forecast of
//! the next steps with a prediction interval at the baseline's `level`. Samples arriving until
//! the next refit are judged against the forecast step their time falls on. Fitting is slow
//! (milliseconds to seconds) and happens in a background task, never when a probe's sample is
//! judged.
//!
//! Before fitting, the history is put on a regular grid of `step` ending at its last point
//! ([`regularize`]): samples sharing a slot are averaged, empty slots are filled by linear
//! interpolation. A gap of any length is interpolated — also one longer than a season, which
//! then looks like a straight line to the model — because refusing to fit would leave the series
//! without a model for a whole `history` after every outage (and samples kept out of learning,
//! anomalies or `learn: false` windows, leave exactly such holes).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::prelude::*;
use chrono::{DateTime, TimeDelta, Utc};

use super::score::z_of_level;
use super::{BaselineConfig, BaselineMethod};

/// A fitted model's predictions for the steps after its history.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    pub method: BaselineMethod,
    /// The time of the first predicted step (one `step` after the last history point).
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub point: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// The prediction-interval level of `lower`/`upper`.
    pub level: f64,
    /// Grid points the model was fitted on.
    pub history_points: usize,
}

/// What a refit produced.
#[derive(Clone, Debug, PartialEq)]
pub enum FitOutcome {
    Fitted(Forecast),
    /// Not enough history yet: `have` of the `need`ed span (EWMA judges meanwhile).
    Learning {
        have: Duration,
        need: Duration,
    },
}

/// The smallest standard deviation a forecast step has, relative to its predicted value (at
/// least 1 in absolute terms): a perfectly fitted flat series has a zero-width interval, and
/// without a floor every later wobble would lie infinitely far outside it.
pub const RELATIVE_SIGMA_FLOOR: f64 = 1e-9;

/// A prediction interval is never narrower than this share of the history's observed
/// sample-to-sample noise (robust spread of the first differences between measured, not
/// interpolated, neighbours, over √2): a model that fitted its history too well — an exactly
/// repeating series, or one whose gaps were bridged by noiseless straight lines — still tolerates
/// the noise the series is known to have. For white noise this estimate equals the noise's
/// standard deviation, which a well-fitted model's interval already reaches, so the floor
/// rarely binds otherwise.
pub const NOISE_SIGMA_FLOOR_SHARE: f64 = 1.0;

/// The smallest standard deviation allowed around a predicted value.
pub fn sigma_floor(point: f64) -> f64 {
    RELATIVE_SIGMA_FLOOR * point.abs().max(1.0)
}

impl Forecast {
    /// The centre and standard deviation the forecast gives for time `t`: the nearest step's
    /// prediction, and its interval's half-width over the normal quantile of `level` (never
    /// below [`sigma_floor`]). None when `t` lies more than half a step before the first step
    /// or after the last (the model is out of date).
    pub fn at(&self, t: DateTime<Utc>) -> Option<(f64, f64)> {
        let i = self.index_of(t)?;
        let half = (self.upper[i] - self.lower[i]) / 2.0;
        let sigma = half / z_of_level(self.level);
        let point = self.point[i];
        Some((point, sigma.max(sigma_floor(point))))
    }

    /// The step `t` falls on, if the forecast covers it.
    pub fn index_of(&self, t: DateTime<Utc>) -> Option<usize> {
        let step = self.step.as_secs_f64();
        let len = self.point.len().min(self.lower.len()).min(self.upper.len());
        if step <= 0.0 || len == 0 {
            return None;
        }
        let index = (t - self.start).as_seconds_f64() / step;
        // Any time after the last history point belongs to the first step (a sample that
        // arrives a moment after another run's sample was fitted is still "next").
        if index <= -1.0 || index > len as f64 - 0.5 {
            return None;
        }
        Some((index.round().max(0.0) as usize).min(len - 1))
    }

    /// The time of step `i`.
    pub fn time_of(&self, i: usize) -> DateTime<Utc> {
        self.start + delta(self.step) * i as i32
    }
}

/// Steps a forecast covers: two refit periods, so a refit that runs late leaves no gap.
pub fn horizon(cfg: &BaselineConfig, step: Duration) -> usize {
    let step = step.as_secs_f64().max(1e-3);
    ((2.0 * cfg.refit.as_secs_f64() / step).ceil() as usize).max(1) + 1
}

/// [`horizon`] for a refit at `now` of a history ending at `last`: the steps between them
/// (samples that were not kept, a late refit) are covered too, so the forecast reaches the
/// next refit whatever the gap.
pub fn horizon_at(
    cfg: &BaselineConfig,
    step: Duration,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> usize {
    let gap = (now - last).as_seconds_f64().max(0.0) / step.as_secs_f64().max(1e-3);
    horizon(cfg, step) + gap.ceil() as usize
}

/// A series on a regular grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// The time of the last value (the newest history point).
    pub end: DateTime<Utc>,
    pub step: Duration,
    /// Oldest first, one value per step, no gaps.
    pub values: Vec<f64>,
    /// Whether each value was measured (false: interpolated).
    pub observed: Vec<bool>,
}

impl Grid {
    /// The time the grid covers: one step per value.
    pub fn span(&self) -> Duration {
        self.step * self.values.len() as u32
    }
}

/// Puts `history` (any order, duplicate times, gaps) on a grid of `step` ending at its newest
/// point, keeping at most `max_slots` slots: values whose times round to the same slot are
/// averaged, empty slots are interpolated linearly between their neighbours, non-finite values
/// are dropped. None when no finite value is left or `step` is zero.
pub fn regularize(
    history: &[(DateTime<Utc>, f64)],
    step: Duration,
    max_slots: usize,
) -> Option<Grid> {
    let step_secs = step.as_secs_f64();
    let finite = || history.iter().filter(|(_, x)| x.is_finite());
    let end = finite().map(|(t, _)| *t).max()?;
    if step_secs <= 0.0 || max_slots == 0 {
        return None;
    }
    // Slot j holds the values nearest to `end - j·step` (j = 0 is the newest).
    let mut sums = Vec::<f64>::new();
    let mut counts = Vec::<u32>::new();
    for (t, x) in finite() {
        let j = ((end - *t).as_seconds_f64() / step_secs).round() as usize;
        if j >= max_slots {
            continue;
        }
        if j >= sums.len() {
            sums.resize(j + 1, 0.0);
            counts.resize(j + 1, 0);
        }
        sums[j] += x;
        counts[j] += 1;
    }
    let slots: Vec<Option<f64>> = sums
        .iter()
        .zip(&counts)
        .rev()
        .map(|(s, &c)| (c > 0).then(|| s / f64::from(c)))
        .collect();
    let (values, observed) = interpolate(&slots);
    Some(Grid {
        end,
        step,
        values,
        observed,
    })
}

/// Fills the empty slots of `slots` linearly between their known neighbours (empty slots before
/// the first known one are dropped; the last slot is always known). Returns the values and
/// whether each was measured.
fn interpolate(slots: &[Option<f64>]) -> (Vec<f64>, Vec<bool>) {
    let mut values = Vec::with_capacity(slots.len());
    let mut observed = Vec::with_capacity(slots.len());
    let mut last_known: Option<(usize, f64)> = None;
    for (i, slot) in slots.iter().enumerate() {
        let Some(x) = *slot else { continue };
        if let Some((k, prev)) = last_known {
            let gap = (i - k) as f64;
            values.extend((k + 1..i).map(|m| prev + (x - prev) * (m - k) as f64 / gap));
            observed.extend((k + 1..i).map(|_| false));
        }
        values.push(x);
        observed.push(true);
        last_known = Some((i, x));
    }
    (values, observed)
}

/// Fits `cfg.method` (seasonal or ets) on `history` (time, value; any order, gaps and duplicate
/// times allowed), resampled on a grid of `step`, and forecasts `horizon` steps. Err for a
/// model that cannot be fitted (reported; EWMA keeps judging).
pub fn fit(
    cfg: &BaselineConfig,
    history: &[(DateTime<Utc>, f64)],
    step: Duration,
    horizon: usize,
) -> Result<FitOutcome, String> {
    let method = cfg.method;
    if !method.is_fitted() {
        return Err(format!("{} is not a fitted method", method.as_str()));
    }
    if step.is_zero() {
        return Err(format!(
            "{}: the sample step must be longer than zero",
            method.as_str()
        ));
    }
    let need = cfg.min_history();
    let max_slots = slots_in(cfg.history().max(need), step);
    let Some(grid) = regularize(history, step, max_slots) else {
        return Ok(FitOutcome::Learning {
            have: Duration::ZERO,
            need,
        });
    };
    if grid.span() < need {
        return Ok(FitOutcome::Learning {
            have: grid.span(),
            need,
        });
    }
    let periods = match method {
        BaselineMethod::Seasonal => match season_lengths(cfg, &grid)? {
            Seasons::Fit(p) => p,
            Seasons::Learning(need) => {
                return Ok(FitOutcome::Learning {
                    have: grid.span(),
                    need,
                });
            }
        },
        _ => Vec::new(),
    };
    let predicted = if is_constant(&grid.values) {
        constant_forecast(grid.values[0], horizon)
    } else {
        predict(method, &periods, &grid.values, horizon, cfg.level)?
    };
    let (point, mut lower, mut upper) = predicted;
    apply_noise_floor(&grid, &point, &mut lower, &mut upper, cfg.level);
    Ok(FitOutcome::Fitted(Forecast {
        method,
        start: grid.end + delta(step),
        step,
        point,
        lower,
        upper,
        level: cfg.level,
        history_points: grid.values.len(),
    }))
}

/// Point, lower and upper predictions.
type Predicted = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Slots of `step` in `span` (at least one).
fn slots_in(span: Duration, step: Duration) -> usize {
    ((span.as_secs_f64() / step.as_secs_f64()).floor() as usize).max(1)
}

/// What the seasonal model can use of `cfg.periods` on this grid.
enum Seasons {
    /// Season lengths in samples, shortest first.
    Fit(Vec<usize>),
    /// No period fits twice into the history yet: this much history is needed.
    Learning(Duration),
}

/// The periods in samples (round(period / step)), keeping those MSTL can decompose: at least two
/// samples long and fitting twice into the grid. Longer periods are left out until the history
/// holds two of them (possible when `min_history` was set below two of the longest period).
fn season_lengths(cfg: &BaselineConfig, grid: &Grid) -> Result<Seasons, String> {
    let step = grid.step.as_secs_f64();
    let mut lengths: Vec<usize> = cfg
        .periods
        .iter()
        .map(|p| (p.as_secs_f64() / step).round() as usize)
        .filter(|&s| s >= 2)
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let Some(&shortest) = lengths.first() else {
        return Err(format!(
            "seasonal: no period spans two samples of {}",
            crate::config::duration::format(grid.step)
        ));
    };
    let n = grid.values.len();
    let fitting: Vec<usize> = lengths.into_iter().filter(|&s| s <= n / 2).collect();
    if fitting.is_empty() {
        return Ok(Seasons::Learning(grid.step * (2 * shortest) as u32));
    }
    Ok(Seasons::Fit(fitting))
}

/// Fits and predicts with augurs. augurs' ETS code has `todo!`/`unimplemented!` branches for
/// model classes a non-seasonal search never selects; a panic is still turned into an error so
/// a background refit can never take the daemon down.
///
/// The seasonal model is fitted on the values minus their mean: MSTL decomposes in `f32`
/// (stlrs), which keeps only about seven digits — a gauge at 1.6e9 with a noise of ±50 would
/// otherwise lose its noise to rounding.
fn predict(
    method: BaselineMethod,
    periods: &[usize],
    values: &[f64],
    horizon: usize,
    level: f64,
) -> Result<Predicted, String> {
    let name = method.as_str();
    let offset = match method {
        BaselineMethod::Seasonal => values.iter().sum::<f64>() / values.len().max(1) as f64,
        _ => 0.0,
    };
    let run = || -> Result<augurs::Forecast, String> {
        match method {
            BaselineMethod::Seasonal => {
                let centered: Vec<f64> = values.iter().map(|x| x - offset).collect();
                let model =
                    MSTLModel::new(periods.to_vec(), AutoETS::non_seasonal().into_trend_model());
                let fitted = model.fit(&centered).map_err(|e| e.to_string())?;
                fitted.predict(horizon, level).map_err(|e| e.to_string())
            }
            _ => {
                let fitted = AutoETS::non_seasonal()
                    .fit(values)
                    .map_err(|e| e.to_string())?;
                fitted.predict(horizon, level).map_err(|e| e.to_string())
            }
        }
    };
    let forecast = catch_unwind(AssertUnwindSafe(run))
        .map_err(|_| format!("{name}: the model panicked while fitting"))?
        .map_err(|e| format!("{name}: {e}"))?;
    let Some(intervals) = forecast.intervals else {
        return Err(format!("{name}: the model gave no prediction interval"));
    };
    let shift = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x + offset).collect() };
    let (point, lower, upper) = (
        shift(forecast.point),
        shift(intervals.lower),
        shift(intervals.upper),
    );
    if point.len() != horizon || lower.len() != horizon || upper.len() != horizon {
        return Err(format!(
            "{name}: the model predicted {} steps instead of {horizon}",
            point.len()
        ));
    }
    if point
        .iter()
        .chain(&lower)
        .chain(&upper)
        .any(|x| !x.is_finite())
    {
        return Err(format!("{name}: the model predicted non-finite values"));
    }
    Ok((point, lower, upper))
}

/// Whether every value equals the first (within rounding): augurs cannot fit a series without
/// any variance (its likelihood is undefined), and the forecast is obvious anyway.
fn is_constant(values: &[f64]) -> bool {
    let Some(&first) = values.first() else {
        return true;
    };
    let tolerance = 1e-12 * first.abs().max(1.0);
    values.iter().all(|x| (x - first).abs() <= tolerance)
}

fn constant_forecast(value: f64, horizon: usize) -> Predicted {
    let v = vec![value; horizon];
    (v.clone(), v.clone(), v)
}

/// Widens steps whose interval is narrower than [`NOISE_SIGMA_FLOOR_SHARE`] of the history's
/// observed step-to-step noise, keeping the prediction as the centre.
fn apply_noise_floor(
    history: &Grid,
    point: &[f64],
    lower: &mut [f64],
    upper: &mut [f64],
    level: f64,
) {
    let z = z_of_level(level);
    let noise = difference_noise(history);
    for ((p, l), u) in point.iter().zip(lower.iter_mut()).zip(upper.iter_mut()) {
        let min_half = z * (NOISE_SIGMA_FLOOR_SHARE * noise).max(sigma_floor(*p));
        if (*u - *l) / 2.0 < min_half {
            *l = p - min_half;
            *u = p + min_half;
        }
    }
}

/// A robust estimate of the noise standard deviation: 1.4826 × the median absolute first
/// difference between measured neighbours, over √2 (a difference carries the noise of two
/// samples).
fn difference_noise(grid: &Grid) -> f64 {
    let mut diffs: Vec<f64> = (1..grid.values.len())
        .filter(|&i| grid.observed[i - 1] && grid.observed[i])
        .map(|i| (grid.values[i] - grid.values[i - 1]).abs())
        .collect();
    if diffs.is_empty() {
        return 0.0;
    }
    1.4826 * median(&mut diffs) / std::f64::consts::SQRT_2
}

/// The median of `values` (reordered), 0 for none.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const MIN5: Duration = Duration::from_secs(300);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 11, 1, 0, 0, 0).unwrap()
    }

    fn at(step: Duration, i: usize) -> DateTime<Utc> {
        t0() + delta(step) * i as i32
    }

    /// Deterministic noise in roughly [-1.5, 1.5], near-normal (sum of three uniforms).
    fn noise(i: usize) -> f64 {
        (0..3u64)
            .map(|k| {
                let mut z = (i as u64).wrapping_mul(3).wrapping_add(k);
                z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .sum()
    }

    fn seasonal_cfg() -> BaselineConfig {
        BaselineConfig {
            method: BaselineMethod::Seasonal,
            periods: vec![DAY],
            ..BaselineConfig::default()
        }
    }

    fn ets_cfg() -> BaselineConfig {
        BaselineConfig {
            method: BaselineMethod::Ets,
            ..BaselineConfig::default()
        }
    }

    fn daily(i: usize) -> f64 {
        let phase = i as f64 / 288.0 * std::f64::consts::TAU;
        100.0 + 40.0 * phase.sin() + 2.0 * noise(i)
    }

    fn fitted(outcome: Result<FitOutcome, String>) -> Forecast {
        match outcome {
            Ok(FitOutcome::Fitted(f)) => f,
            other => panic!("expected a fitted forecast, got {other:?}"),
        }
    }

    #[test]
    fn regularize_averages_duplicates_and_interpolates_gaps_in_any_order() {
        let history = vec![
            (at(MIN5, 0), 10.0),
            (at(MIN5, 1), 12.0),
            (at(MIN5, 1) + TimeDelta::seconds(20), 14.0),
            (at(MIN5, 4), 19.0),
            (at(MIN5, 5), f64::NAN),
            (at(MIN5, 5), 20.0),
        ];
        let grid = regularize(&history, MIN5, 100).unwrap();
        assert_eq!(grid.end, at(MIN5, 5));
        assert_eq!(grid.values, vec![10.0, 13.0, 15.0, 17.0, 19.0, 20.0]);
        assert_eq!(grid.observed, vec![true, true, false, false, true, true]);
        assert_eq!(grid.span(), MIN5 * 6);

        let mut shuffled = history.clone();
        shuffled.reverse();
        shuffled.swap(1, 4);
        assert_eq!(regularize(&shuffled, MIN5, 100).unwrap(), grid);

        // Capped to the newest 3 slots, the oldest is empty with nothing older to interpolate
        // from: the grid starts at the oldest known slot.
        let capped = regularize(&history, MIN5, 3).unwrap();
        assert_eq!(capped.values, vec![19.0, 20.0]);
        assert_eq!(regularize(&[(t0(), f64::NAN)], MIN5, 10), None);
        assert_eq!(regularize(&history, Duration::ZERO, 10), None);
    }

    #[test]
    fn too_little_history_is_learning() {
        let history: Vec<_> = (0..144).map(|i| (at(MIN5, i), 5.0 + noise(i))).collect();
        let outcome = fit(&ets_cfg(), &history, MIN5, 10).unwrap();
        assert_eq!(
            outcome,
            FitOutcome::Learning {
                have: 12 * HOUR,
                need: DAY
            }
        );
        let outcome = fit(&seasonal_cfg(), &[], MIN5, 10).unwrap();
        assert_eq!(
            outcome,
            FitOutcome::Learning {
                have: Duration::ZERO,
                need: 2 * DAY
            }
        );
    }

    #[test]
    fn seasonal_forecast_contains_the_continuation_of_a_daily_sine() {
        let cfg = seasonal_cfg();
        let n = 3 * 288;
        let history: Vec<_> = (0..n).map(|i| (at(MIN5, i), daily(i))).collect();
        let h = horizon(&cfg, MIN5);
        let f = fitted(fit(&cfg, &history, MIN5, h));
        assert_eq!((f.point.len(), f.history_points), (h, n));
        assert_eq!(f.start, at(MIN5, n));
        assert_eq!(f.method, BaselineMethod::Seasonal);
        let mut inside = 0;
        for k in 0..h {
            let t = at(MIN5, n + k);
            let (center, sigma) = f.at(t).unwrap();
            let truth = daily(n + k);
            let clean = daily(n + k) - 2.0 * noise(n + k);
            assert!(
                (center - clean).abs() < 6.0,
                "step {k}: {center} vs {clean}"
            );
            assert!(sigma > 0.5 && sigma < 10.0, "step {k}: sigma {sigma}");
            if f.lower[k] <= truth && truth <= f.upper[k] {
                inside += 1;
            }
        }
        assert!(inside * 10 >= h * 9, "{inside} of {h} inside the band");
    }

    #[test]
    fn seasonal_keeps_the_noise_of_a_large_gauge() {
        // MSTL runs in f32: without centring, 1.6e9 ± 2 would round to steps of 128.
        let cfg = seasonal_cfg();
        let n = 2 * 288;
        let big = |i: usize| 1.6e9 + daily(i);
        let history: Vec<_> = (0..n).map(|i| (at(MIN5, i), big(i))).collect();
        let f = fitted(fit(&cfg, &history, MIN5, 12));
        for k in 0..12 {
            let (center, sigma) = f.at(at(MIN5, n + k)).unwrap();
            assert!((center - big(n + k)).abs() < 8.0, "step {k}: {center}");
            assert!(sigma < 6.0, "step {k}: sigma {sigma}");
        }
    }

    #[test]
    fn seasonal_leaves_out_periods_that_do_not_fit_twice_yet() {
        let cfg = BaselineConfig {
            periods: vec![DAY, 7 * DAY],
            min_history: Some(2 * DAY),
            ..seasonal_cfg()
        };
        let history: Vec<_> = (0..3 * 288).map(|i| (at(MIN5, i), daily(i))).collect();
        let f = fitted(fit(&cfg, &history, MIN5, 5));
        assert_eq!(f.history_points, 3 * 288);

        let cfg = BaselineConfig {
            periods: vec![7 * DAY],
            min_history: Some(DAY),
            ..seasonal_cfg()
        };
        assert_eq!(
            fit(&cfg, &history, MIN5, 5).unwrap(),
            FitOutcome::Learning {
                have: 3 * DAY,
                need: 14 * DAY
            }
        );

        let cfg = BaselineConfig {
            periods: vec![MIN5],
            min_history: Some(HOUR),
            ..seasonal_cfg()
        };
        let err = fit(&cfg, &history, MIN5, 5).unwrap_err();
        assert!(
            err.starts_with("seasonal: no period spans two samples"),
            "{err}"
        );
    }

    #[test]
    fn ets_follows_a_linear_trend() {
        let cfg = ets_cfg();
        let line = |i: usize| 50.0 + 0.5 * i as f64 + 0.3 * noise(i);
        let n = 300;
        let history: Vec<_> = (0..n).map(|i| (at(MIN5, i), line(i))).collect();
        let f = fitted(fit(&cfg, &history, MIN5, 24));
        for k in 0..24 {
            let expected = 50.0 + 0.5 * (n + k) as f64;
            assert!(
                (f.point[k] - expected).abs() < 2.0,
                "step {k}: {} vs {expected}",
                f.point[k]
            );
            assert!(f.lower[k] <= line(n + k) && line(n + k) <= f.upper[k]);
        }
        assert!(f.point[23] > f.point[0] + 10.0, "the forecast keeps rising");
    }

    #[test]
    fn a_flat_history_gets_a_floored_interval() {
        let history: Vec<_> = (0..300).map(|i| (at(MIN5, i), 7.0)).collect();
        let f = fitted(fit(&ets_cfg(), &history, MIN5, 3));
        let (center, sigma) = f.at(f.start).unwrap();
        assert_eq!(center, 7.0);
        assert!(sigma > 0.0 && sigma < 1e-6, "{sigma}");
    }

    #[test]
    fn bridged_gaps_do_not_make_the_model_overconfident() {
        // White noise of σ 1 around 50, measured only every other hour: half the grid is
        // noiseless interpolated lines, yet the band keeps the measured noise.
        let history: Vec<_> = (0..2 * 288)
            .filter(|i| (i / 12) % 2 == 0)
            .map(|i| (at(MIN5, i), 50.0 + 2.0 * noise(i)))
            .collect();
        let f = fitted(fit(&ets_cfg(), &history, MIN5, 3));
        let (_, sigma) = f.at(f.start).unwrap();
        assert!(sigma > 0.85, "sigma {sigma}");
    }

    #[test]
    fn at_covers_each_step_and_everything_since_the_history() {
        let f = Forecast {
            method: BaselineMethod::Ets,
            start: t0(),
            step: MIN5,
            point: vec![1.0, 2.0, 3.0],
            lower: vec![0.0, 2.0 - z_of_level(0.99) * 2.0, 3.0],
            upper: vec![2.0, 2.0 + z_of_level(0.99) * 2.0, 3.0],
            level: 0.99,
            history_points: 10,
        };
        let s = |secs: i64| t0() + TimeDelta::seconds(secs);
        // Before the first step, back to the last history point (one step earlier).
        assert_eq!(f.at(s(-300)), None);
        assert_eq!(f.at(s(-299)).unwrap().0, 1.0);
        assert_eq!(f.at(s(-149)).unwrap().0, 1.0);
        let (c, sigma) = f.at(s(300 + 100)).unwrap();
        assert_eq!(c, 2.0);
        assert!((sigma - 2.0).abs() < 1e-9);
        assert_eq!(f.at(s(600 + 149)).unwrap(), (3.0, sigma_floor(3.0)));
        assert_eq!(f.at(s(600 + 151)), None);
        assert_eq!(f.time_of(2), s(600));
    }

    #[test]
    fn only_fitted_methods_fit() {
        let cfg = BaselineConfig::default();
        assert_eq!(
            fit(&cfg, &[], MIN5, 3).unwrap_err(),
            "ewma is not a fitted method"
        );
    }

    /// The benchmark refits 1,000 series of 2,016 points (7 days at 5 minutes); this measures
    /// one such fit (run with `--release --nocapture` for the figure).
    #[test]
    fn one_seasonal_fit_of_2016_points_is_timed() {
        let cfg = BaselineConfig {
            history: Some(7 * DAY),
            ..seasonal_cfg()
        };
        let history: Vec<_> = (0..2016).map(|i| (at(MIN5, i), daily(i))).collect();
        let started = std::time::Instant::now();
        let f = fitted(fit(&cfg, &history, MIN5, horizon(&cfg, MIN5)));
        let seasonal = started.elapsed();
        let started = std::time::Instant::now();
        let cfg = BaselineConfig {
            history: Some(7 * DAY),
            ..ets_cfg()
        };
        fitted(fit(&cfg, &history, MIN5, horizon(&cfg, MIN5)));
        let ets = started.elapsed();
        eprintln!("fit of 2016 points: seasonal {seasonal:?}, ets {ets:?}");
        assert_eq!(f.history_points, 2016);
    }
}
