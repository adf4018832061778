//! The evaluation set of `patrol bench detect`, generated deterministically: a fixed list of
//! series specifications (shape + injected anomalies + messiness) rendered with a seeded
//! SplitMix64 generator, so `patrol bench detect --generate eval/detect` rewrites the committed
//! files byte for byte. Every series starts on Monday 2024-01-01 00:00 UTC at 5-minute steps.
//!
//! Labels: each injected anomaly is one window `{from, to, kind}` (inclusive sample times). For
//! anomalies that change the underlying signal (shifts, drifts, seasonality breaks) the window
//! spans the samples where the change exceeds two noise standard deviations — where a detector
//! could tell at all; spikes, variance bursts and stuck values span exactly the samples they
//! touch. No anomaly lies in the first [`PROBATION_DAYS`] days (every method is still learning).

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// 2024-01-01T00:00:00Z, a Monday.
pub const START: i64 = 1_704_067_200;
pub const STEP_SECS: i64 = 300;
pub const DAY_SECS: i64 = 86_400;
const STEPS_PER_DAY: usize = (DAY_SECS / STEP_SECS) as usize;
/// Days every method gets to learn before anomalies start (and before alerts are scored).
pub const PROBATION_DAYS: i64 = 2;
/// The seed of the committed set.
pub const SEED: u64 = 0x5eed_0009;

/// One labelled anomaly window (inclusive RFC 3339 sample times).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelWindow {
    pub from: String,
    pub to: String,
    pub kind: String,
}

/// One generated series: its CSV text and its labels.
#[derive(Clone, Debug)]
pub struct Generated {
    pub name: String,
    pub csv: String,
    pub labels: Vec<LabelWindow>,
    /// The rows with a value, in file order (for the refit timing).
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// SplitMix64: tiny, seedable, the same stream on every platform and crate version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller; one of the pair is dropped to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }

    /// Poisson with mean `lambda` (Knuth's product method; fine for the small rates here).
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda > 60.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-lambda).exp();
        let mut k = 0.0;
        let mut p = self.uniform();
        while p > limit {
            k += 1.0;
            p *= self.uniform();
        }
        k
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Noise {
    /// Additive normal noise with this standard deviation.
    Gauss(f64),
    /// Multiplicative log-normal noise with this σ of the log (latencies).
    LogNormal(f64),
    /// Counts: Poisson around the signal (error counts).
    Poisson,
}

/// The normal behaviour of a series.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// The night-time level on day 0.
    level: f64,
    /// Height of the daily peak above the night level, as a fraction of it (0: no daily cycle).
    daily: f64,
    /// How much lower the daily peak is on Saturdays and Sundays (fraction).
    weekend: f64,
    /// Growth per day, as a fraction of `level`.
    trend: f64,
    noise: Noise,
    decimals: usize,
}

impl Shape {
    fn flat(level: f64, sd: f64) -> Shape {
        Shape {
            level,
            daily: 0.0,
            weekend: 0.0,
            trend: 0.0,
            noise: Noise::Gauss(sd),
            decimals: 2,
        }
    }

    fn daily(level: f64, daily: f64, sd: f64) -> Shape {
        Shape {
            daily,
            ..Shape::flat(level, sd)
        }
    }

    /// The noise's standard deviation in value units (anomaly sizes are multiples of it).
    fn scale(&self) -> f64 {
        match self.noise {
            Noise::Gauss(sd) => sd,
            Noise::LogNormal(s) => self.level * s,
            Noise::Poisson => self.level.sqrt(),
        }
    }

    /// The noise-free signal at sample `i`, with the peak moved by `peak_shift` hours and
    /// scaled by `peak_mult`.
    fn signal(&self, i: usize, peak_shift: f64, peak_mult: f64) -> f64 {
        let day = i / STEPS_PER_DAY;
        let hour = (i % STEPS_PER_DAY) as f64 * STEP_SECS as f64 / 3600.0 - peak_shift;
        let weekday = day % 7; // 0 = Monday
        let week = if weekday >= 5 {
            1.0 - self.weekend
        } else {
            1.0
        };
        let base = self.level * (1.0 + self.trend * i as f64 / STEPS_PER_DAY as f64);
        base * (1.0 + self.daily * peak_mult * week * day_curve(hour))
    }
}

/// Business-hours curve: 0 at night, rising from 07:00 to a peak at 15:00, back to 0 by 23:00.
fn day_curve(hour: f64) -> f64 {
    let h = hour.rem_euclid(24.0);
    if (7.0..23.0).contains(&h) {
        (PI * (h - 7.0) / 16.0).sin().powi(2)
    } else {
        0.0
    }
}

/// An anomaly placed on evaluation day `day` (counted after the probation days, wrapping when
/// the set is shorter) at `hour`.
#[derive(Clone, Copy, Debug)]
enum Inject {
    /// `points` samples off by `size` noise standard deviations (negative: a dip).
    Spike {
        day: usize,
        hour: f64,
        points: usize,
        size: f64,
    },
    /// The level moves by `by` × the night level for `hours`, then returns.
    Shift {
        day: usize,
        hour: f64,
        hours: f64,
        by: f64,
    },
    /// The noise grows `factor` times for `hours`.
    Variance {
        day: usize,
        hour: f64,
        hours: f64,
        factor: f64,
    },
    /// The daily peak is missing for a whole day (seasonality break).
    NoPeak { day: usize },
    /// The daily peak comes `hours` late for a day (seasonality break).
    LatePeak { day: usize, hours: f64 },
    /// The daily peak is `factor` times as high for a day (an unplanned surge).
    Surge { day: usize, factor: f64 },
    /// The level ramps by `by` × the night level over `ramp` hours, holds for `hold` hours, then
    /// returns.
    Drift {
        day: usize,
        hour: f64,
        ramp: f64,
        hold: f64,
        by: f64,
    },
    /// The value freezes at its last reading for `hours` (a stuck exporter).
    Stuck { day: usize, hour: f64, hours: f64 },
}

impl Inject {
    fn kind(&self) -> &'static str {
        match self {
            Inject::Spike { size, .. } if *size < 0.0 => "dip",
            Inject::Spike { .. } => "spike",
            Inject::Shift { .. } => "level_shift",
            Inject::Variance { .. } => "variance",
            Inject::NoPeak { .. } | Inject::LatePeak { .. } => "seasonality_break",
            Inject::Surge { .. } => "surge",
            Inject::Drift { .. } => "drift",
            Inject::Stuck { .. } => "stuck",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stamp {
    Rfc3339,
    Unix,
}

/// One series of the set.
#[derive(Clone, Debug)]
struct Spec {
    name: &'static str,
    shape: Shape,
    injects: Vec<Inject>,
    /// Share of samples missing (a quarter of them as rows with an empty value).
    missing: f64,
    /// A gap of this many hours on evaluation day 1 from 05:00 (0: none).
    gap_hours: f64,
    /// Share of samples written twice with the same timestamp.
    duplicates: f64,
    /// Share of rows swapped with the next one (late arrivals).
    swaps: f64,
    stamp: Stamp,
    header: bool,
}

impl Spec {
    fn new(name: &'static str, shape: Shape, injects: Vec<Inject>) -> Spec {
        Spec {
            name,
            shape,
            injects,
            missing: 0.0,
            gap_hours: 0.0,
            duplicates: 0.0,
            swaps: 0.0,
            stamp: Stamp::Rfc3339,
            header: true,
        }
    }

    fn messy(mut self, missing: f64, duplicates: f64, swaps: f64) -> Spec {
        (self.missing, self.duplicates, self.swaps) = (missing, duplicates, swaps);
        self
    }
}

fn spike(day: usize, hour: f64, points: usize, size: f64) -> Inject {
    Inject::Spike {
        day,
        hour,
        points,
        size,
    }
}

fn shift(day: usize, hour: f64, hours: f64, by: f64) -> Inject {
    Inject::Shift {
        day,
        hour,
        hours,
        by,
    }
}

/// The set: 28 series, 40 labelled windows.
fn specs() -> Vec<Spec> {
    use Inject::*;
    let weekly = |level, daily, weekend, sd| Shape {
        weekend,
        ..Shape::daily(level, daily, sd)
    };
    let trend = |level, trend, sd| Shape {
        trend,
        ..Shape::flat(level, sd)
    };
    vec![
        Spec::new(
            "flat_spikes",
            Shape::flat(40.0, 2.0),
            vec![
                spike(0, 10.0, 1, 8.0),
                spike(2, 3.25, 2, 10.0),
                spike(4, 17.67, 1, 7.0),
            ],
        ),
        Spec::new(
            "flat_dips",
            Shape::flat(60.0, 1.5),
            vec![spike(1, 12.0, 1, -9.0), spike(3, 2.0, 3, -8.0)],
        ),
        Spec::new(
            "daily_night_spikes",
            Shape::daily(200.0, 1.5, 8.0),
            vec![spike(1, 3.0, 1, 10.0), spike(3, 2.5, 2, 8.0)],
        ),
        Spec::new(
            "daily_peak_spikes",
            Shape::daily(200.0, 1.5, 8.0),
            vec![spike(2, 14.0, 1, 10.0), spike(4, 11.0, 1, 12.0)],
        ),
        Spec::new(
            "weekly_spikes",
            weekly(300.0, 1.2, 0.4, 10.0),
            vec![spike(0, 4.0, 1, 9.0), spike(4, 15.0, 1, 12.0)],
        ),
        Spec::new(
            "daily_shift_up",
            Shape::daily(150.0, 1.0, 6.0),
            vec![shift(2, 13.0, 3.0, 0.25)],
        ),
        Spec::new(
            "daily_shift_down",
            Shape::daily(400.0, 1.5, 12.0),
            vec![shift(1, 10.0, 2.0, -0.35)],
        ),
        Spec::new(
            "trend_shift",
            trend(100.0, 0.05, 3.0),
            vec![shift(2, 20.0, 4.0, 0.12)],
        ),
        Spec::new(
            "trend_spikes",
            trend(80.0, 0.08, 2.0),
            vec![spike(1, 6.0, 1, 8.0), spike(3, 22.0, 1, -8.0)],
        ),
        Spec::new(
            "variance_burst",
            Shape::flat(50.0, 2.0),
            vec![Variance {
                day: 2,
                hour: 9.0,
                hours: 3.0,
                factor: 5.0,
            }],
        ),
        Spec::new(
            "daily_variance",
            Shape::daily(250.0, 1.2, 8.0),
            vec![Variance {
                day: 3,
                hour: 1.0,
                hours: 4.0,
                factor: 4.0,
            }],
        ),
        Spec::new(
            "missing_peak",
            Shape::daily(300.0, 2.0, 10.0),
            vec![NoPeak { day: 2 }],
        ),
        Spec::new(
            "late_peak",
            Shape::daily(300.0, 2.0, 10.0),
            vec![LatePeak { day: 3, hours: 4.0 }],
        ),
        Spec::new(
            "double_peak",
            Shape::daily(200.0, 1.0, 8.0),
            vec![Surge {
                day: 1,
                factor: 2.0,
            }],
        ),
        Spec::new(
            "drift_up",
            Shape::flat(100.0, 2.0),
            vec![Drift {
                day: 1,
                hour: 0.0,
                ramp: 12.0,
                hold: 12.0,
                by: 0.15,
            }],
        ),
        Spec::new(
            "daily_drift_down",
            Shape::daily(200.0, 1.0, 6.0),
            vec![Drift {
                day: 2,
                hour: 6.0,
                ramp: 10.0,
                hold: 8.0,
                by: -0.2,
            }],
        ),
        Spec::new(
            "error_counts",
            Shape {
                noise: Noise::Poisson,
                decimals: 0,
                ..Shape::daily(4.0, 0.5, 0.0)
            },
            vec![spike(1, 11.0, 3, 10.0), spike(3, 4.0, 1, 8.0)],
        ),
        Spec::new(
            "latency_ms",
            Shape {
                noise: Noise::LogNormal(0.08),
                decimals: 1,
                ..Shape::daily(120.0, 0.3, 0.0)
            },
            vec![spike(0, 16.0, 2, 10.0), shift(3, 8.0, 2.0, 0.3)],
        ),
        Spec {
            gap_hours: 3.0,
            ..Spec::new(
                "gaps_spikes",
                Shape::daily(180.0, 1.0, 6.0),
                vec![spike(2, 4.0, 1, 9.0), spike(4, 13.0, 1, 10.0)],
            )
            .messy(0.04, 0.0, 0.0)
        },
        Spec::new(
            "duplicates_spikes",
            Shape::flat(70.0, 2.5),
            vec![spike(1, 8.0, 1, 8.0), spike(3, 19.0, 1, -9.0)],
        )
        .messy(0.0, 0.03, 0.0),
        Spec {
            stamp: Stamp::Unix,
            header: false,
            ..Spec::new(
                "unix_no_header_shift",
                Shape::daily(120.0, 1.0, 4.0),
                vec![shift(1, 22.0, 2.0, 0.3)],
            )
        },
        Spec::new("clean_weekly", weekly(300.0, 1.5, 0.3, 10.0), vec![]),
        Spec::new("clean_flat_messy", Shape::flat(30.0, 1.0), vec![]).messy(0.05, 0.02, 0.01),
        Spec::new("clean_trend", trend(50.0, 0.1, 1.5), vec![]),
        Spec::new(
            "mixed_daily",
            Shape::daily(220.0, 1.3, 8.0),
            vec![
                spike(0, 2.0, 1, 9.0),
                shift(2, 15.0, 2.0, -0.3),
                Variance {
                    day: 4,
                    hour: 4.0,
                    hours: 3.0,
                    factor: 4.0,
                },
            ],
        ),
        Spec::new(
            "mixed_trend_weekly",
            Shape {
                trend: 0.03,
                ..weekly(150.0, 1.0, 0.3, 5.0)
            },
            vec![
                spike(1, 5.0, 2, -8.0),
                Drift {
                    day: 3,
                    hour: 0.0,
                    ramp: 8.0,
                    hold: 10.0,
                    by: 0.2,
                },
            ],
        ),
        Spec::new(
            "stuck_exporter",
            Shape::daily(100.0, 0.8, 3.0),
            vec![Stuck {
                day: 2,
                hour: 10.0,
                hours: 3.0,
            }],
        ),
        Spec::new(
            "out_of_order_spikes",
            Shape::flat(90.0, 3.0),
            vec![spike(1, 14.0, 1, 9.0), spike(3, 9.0, 1, 8.0)],
        )
        .messy(0.0, 0.0, 0.02),
    ]
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Days per series (at least PROBATION_DAYS + 1).
    pub days: u32,
    /// Only the first `count` series of the set.
    pub count: Option<usize>,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            days: 7,
            count: None,
            seed: SEED,
        }
    }
}

/// How many series the full set has.
pub fn set_size() -> usize {
    specs().len()
}

/// The set's series.
pub fn generate(opts: &Options) -> Vec<Generated> {
    let specs = specs();
    let count = opts.count.unwrap_or(specs.len()).min(specs.len());
    specs
        .iter()
        .take(count)
        .enumerate()
        .map(|(i, spec)| render(spec, opts.days, series_seed(opts.seed, i)))
        .collect()
}

/// The `index`-th of an endless supply of series shaped like the set's (for timing refits of
/// many series): spec `index % 28` with its own seed.
pub fn variant(index: usize, days: u32) -> Generated {
    let specs = specs();
    let spec = &specs[index % specs.len()];
    render(spec, days, series_seed(SEED ^ 0xabcd, index))
}

fn series_seed(seed: u64, index: usize) -> u64 {
    let mut r = Rng::new(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    r.next_u64()
}

/// Writes `series/<name>.csv`, `labels.json` into `dir`; returns (series, bytes written).
pub fn write_set(dir: &Path, opts: &Options) -> std::io::Result<(usize, u64)> {
    let series = generate(opts);
    let csv_dir = dir.join("series");
    std::fs::create_dir_all(&csv_dir)?;
    let mut bytes = 0u64;
    let mut labels = BTreeMap::new();
    for g in &series {
        std::fs::write(csv_dir.join(format!("{}.csv", g.name)), &g.csv)?;
        bytes += g.csv.len() as u64;
        labels.insert(g.name.clone(), g.labels.clone());
    }
    let json = labels_json(&labels);
    bytes += json.len() as u64;
    std::fs::write(dir.join("labels.json"), json)?;
    Ok((series.len(), bytes))
}

/// labels.json: one line per window, so diffs stay readable.
pub fn labels_json(labels: &BTreeMap<String, Vec<LabelWindow>>) -> String {
    let mut out = String::from("{\n");
    let n = labels.len();
    for (i, (name, windows)) in labels.iter().enumerate() {
        out.push_str(&format!("  {}: [", serde_json::json!(name)));
        for (j, w) in windows.iter().enumerate() {
            let sep = if j + 1 < windows.len() { "," } else { "" };
            let one = serde_json::to_string(w).unwrap_or_default();
            out.push_str(&format!("\n    {one}{sep}"));
        }
        if !windows.is_empty() {
            out.push_str("\n  ");
        }
        out.push_str(if i + 1 < n { "],\n" } else { "]\n" });
    }
    out.push_str("}\n");
    out
}

/// Sample index of evaluation day `day` at `hour` in a series of `days` days.
fn index_at(days: u32, day: usize, hour: f64) -> usize {
    let eval_days = (days as usize)
        .saturating_sub(PROBATION_DAYS as usize)
        .max(1);
    let abs_day = PROBATION_DAYS as usize + day % eval_days;
    abs_day * STEPS_PER_DAY + (hour * 3600.0 / STEP_SECS as f64).round() as usize
}

fn steps(hours: f64) -> usize {
    (hours * 3600.0 / STEP_SECS as f64).round() as usize
}

/// Per-sample effects of the injected anomalies.
struct Effects {
    /// Added to the signal.
    delta: Vec<f64>,
    /// Multiplies the noise.
    noise_factor: Vec<f64>,
    /// Added after the noise (spikes), in value units.
    after: Vec<f64>,
    /// Samples that repeat the previous reading.
    stuck: Vec<bool>,
    /// (first, last sample, kind) per injected anomaly.
    windows: Vec<(usize, usize, &'static str)>,
}

fn effects(spec: &Spec, n: usize, days: u32) -> Effects {
    let shape = &spec.shape;
    let mut fx = Effects {
        delta: vec![0.0; n],
        noise_factor: vec![1.0; n],
        after: vec![0.0; n],
        stuck: vec![false; n],
        windows: Vec::new(),
    };
    let threshold = 2.0 * shape.scale();
    for inject in &spec.injects {
        let mut own = vec![0.0; n];
        let mut span = None;
        match *inject {
            Inject::Spike {
                day,
                hour,
                points,
                size,
            } => {
                let i0 = index_at(days, day, hour);
                for a in fx.after.iter_mut().skip(i0).take(points) {
                    *a += size * shape.scale();
                }
                span = Some((i0, (i0 + points - 1).min(n - 1)));
            }
            Inject::Shift {
                day,
                hour,
                hours,
                by,
            } => {
                let i0 = index_at(days, day, hour);
                for d in own.iter_mut().skip(i0).take(steps(hours)) {
                    *d = by * shape.level;
                }
            }
            Inject::Variance {
                day,
                hour,
                hours,
                factor,
            } => {
                let i0 = index_at(days, day, hour);
                let len = steps(hours);
                for f in fx.noise_factor.iter_mut().skip(i0).take(len) {
                    *f = factor;
                }
                span = Some((i0, (i0 + len - 1).min(n - 1)));
            }
            Inject::NoPeak { day } => day_change(&mut own, shape, days, day, 0.0, 0.0),
            Inject::LatePeak { day, hours } => day_change(&mut own, shape, days, day, hours, 1.0),
            Inject::Surge { day, factor } => day_change(&mut own, shape, days, day, 0.0, factor),
            Inject::Drift {
                day,
                hour,
                ramp,
                hold,
                by,
            } => {
                let i0 = index_at(days, day, hour);
                let (ramp, hold) = (steps(ramp).max(1), steps(hold));
                for (j, d) in own.iter_mut().skip(i0).take(ramp + hold).enumerate() {
                    *d = by * shape.level * ((j + 1) as f64 / ramp as f64).min(1.0);
                }
            }
            Inject::Stuck { day, hour, hours } => {
                let i0 = index_at(days, day, hour);
                let len = steps(hours);
                for s in fx.stuck.iter_mut().skip(i0).take(len) {
                    *s = true;
                }
                span = Some((i0, (i0 + len - 1).min(n - 1)));
            }
        }
        let span = span.or_else(|| {
            let first = own.iter().position(|d| d.abs() >= threshold)?;
            let last = own.iter().rposition(|d| d.abs() >= threshold)?;
            Some((first, last))
        });
        for (d, o) in fx.delta.iter_mut().zip(&own) {
            *d += o;
        }
        if let Some((a, b)) = span.filter(|(a, _)| *a < n) {
            fx.windows.push((a, b, inject.kind()));
        }
    }
    fx
}

/// The difference a changed daily peak (moved `shift` hours, `mult` times as high) makes on
/// evaluation day `day`.
fn day_change(own: &mut [f64], shape: &Shape, days: u32, day: usize, shift: f64, mult: f64) {
    let i0 = index_at(days, day, 0.0);
    for (j, d) in own.iter_mut().enumerate().skip(i0).take(STEPS_PER_DAY) {
        *d = shape.signal(j, shift, mult) - shape.signal(j, 0.0, 1.0);
    }
}

/// Renders one spec into its CSV and labels.
fn render(spec: &Spec, days: u32, seed: u64) -> Generated {
    let days = days.max(PROBATION_DAYS as u32 + 1);
    let n = days as usize * STEPS_PER_DAY;
    let mut rng = Rng::new(seed);
    let fx = effects(spec, n, days);
    let in_window = |i: usize| fx.windows.iter().any(|(a, b, _)| (*a..=*b).contains(&i));
    let values = noisy_values(spec, &fx, &mut rng);
    let gap = gap_range(spec, days);

    let mut rows: Vec<(i64, Option<f64>)> = Vec::with_capacity(n + n / 20);
    for (i, &v) in values.iter().enumerate() {
        let t = START + i as i64 * STEP_SECS;
        if gap.contains(&i) && !in_window(i) {
            continue;
        }
        if !in_window(i) && rng.chance(spec.missing) {
            if rng.chance(0.25) {
                rows.push((t, None));
            }
            continue;
        }
        rows.push((t, Some(v)));
        if rng.chance(spec.duplicates) {
            rows.push((t, Some(v + 0.3 * spec.shape.scale() * rng.normal())));
        }
    }
    for i in 0..rows.len().saturating_sub(1) {
        let late = |r: &(i64, Option<f64>)| in_window(((r.0 - START) / STEP_SECS) as usize);
        if rng.chance(spec.swaps) && !late(&rows[i]) && !late(&rows[i + 1]) {
            rows.swap(i, i + 1);
        }
    }
    let labels = fx
        .windows
        .iter()
        .map(|&(a, b, kind)| LabelWindow {
            from: stamp_rfc3339(START + a as i64 * STEP_SECS),
            to: stamp_rfc3339(START + b as i64 * STEP_SECS),
            kind: kind.to_string(),
        })
        .collect();
    Generated {
        name: spec.name.to_string(),
        csv: csv_text(spec, &rows),
        labels,
        points: rows
            .iter()
            .filter_map(|&(t, v)| Some((DateTime::from_timestamp(t, 0)?, v?)))
            .collect(),
    }
}

/// Signal + anomalies + noise, rounded as the series writes its values.
fn noisy_values(spec: &Spec, fx: &Effects, rng: &mut Rng) -> Vec<f64> {
    let shape = &spec.shape;
    let round = 10f64.powi(shape.decimals as i32);
    let mut values: Vec<f64> = Vec::with_capacity(fx.delta.len());
    for i in 0..fx.delta.len() {
        let signal = (shape.signal(i, 0.0, 1.0) + fx.delta[i]).max(0.0);
        let f = fx.noise_factor[i];
        let mut v = match shape.noise {
            Noise::Gauss(sd) => signal + sd * f * rng.normal(),
            Noise::LogNormal(s) => signal * (s * f * rng.normal() - (s * f).powi(2) / 2.0).exp(),
            Noise::Poisson => rng.poisson(signal),
        } + fx.after[i];
        if fx.stuck[i] && i > 0 {
            v = values[i - 1];
        }
        values.push((v.max(0.0) * round).round() / round);
    }
    values
}

fn gap_range(spec: &Spec, days: u32) -> std::ops::Range<usize> {
    if spec.gap_hours <= 0.0 {
        return 0..0;
    }
    let i0 = index_at(days, 1, 5.0);
    i0..i0 + steps(spec.gap_hours)
}

fn stamp_rfc3339(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn csv_text(spec: &Spec, rows: &[(i64, Option<f64>)]) -> String {
    let mut out = String::with_capacity(rows.len() * 32);
    if spec.header {
        out.push_str("timestamp,value\n");
    }
    let decimals = spec.shape.decimals;
    for &(t, v) in rows {
        match spec.stamp {
            Stamp::Rfc3339 => out.push_str(&stamp_rfc3339(t)),
            Stamp::Unix => out.push_str(&t.to_string()),
        }
        out.push(',');
        if let Some(v) = v {
            out.push_str(&format!("{v:.decimals$}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_seeded() {
        let a = generate(&Options::default());
        let b = generate(&Options::default());
        assert_eq!(a.len(), set_size());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.csv, &x.labels), (&y.csv, &y.labels));
        }
        let other = generate(&Options {
            seed: 1,
            ..Options::default()
        });
        assert_ne!(a[0].csv, other[0].csv);
        assert_eq!(a[0].labels, other[0].labels, "labels follow the spec");
    }

    #[test]
    fn series_have_the_promised_shape() {
        let set = generate(&Options::default());
        let windows: usize = set.iter().map(|g| g.labels.len()).sum();
        assert_eq!(windows, 40);
        let probation_end = stamp_rfc3339(START + PROBATION_DAYS * DAY_SECS);
        for g in &set {
            for w in &g.labels {
                assert!(
                    w.from >= probation_end && w.from <= w.to,
                    "{} {w:?}",
                    g.name
                );
            }
        }
        let by = |name: &str| set.iter().find(|g| g.name == name).unwrap();
        // 2,016 samples a week; the clean flat one loses 5 % and gains 2 % duplicates.
        assert_eq!(by("flat_spikes").csv.lines().count(), 2016 + 1);
        let messy = &by("clean_flat_messy").csv;
        let rows = messy.lines().count() - 1;
        assert!((1900..2016).contains(&rows), "{rows}");
        assert!(
            messy.lines().any(|l| l.ends_with(',')),
            "rows with an empty value"
        );
        assert!(by("unix_no_header_shift").csv.starts_with("1704067200,"));
        // A spike is far out: 10 noise sds on a night level of 200 ± 8.
        let night = &by("daily_night_spikes");
        let spike = night.labels[0].from.clone();
        let line = night.csv.lines().find(|l| l.starts_with(&spike)).unwrap();
        let v: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!(v > 250.0, "{line}");
    }

    #[test]
    fn shifts_and_breaks_are_labelled_where_they_show() {
        let set = generate(&Options::default());
        let by = |name: &str| set.iter().find(|g| g.name == name).unwrap().labels.clone();
        // Shift at 10:00 of day 3 for 2h: samples 10:00 … 11:55.
        assert_eq!(
            by("daily_shift_down"),
            [LabelWindow {
                from: "2024-01-04T10:00:00Z".into(),
                to: "2024-01-04T11:55:00Z".into(),
                kind: "level_shift".into()
            }]
        );
        // The missing peak shows from the morning rise to the evening fall, not at night.
        let peak = &by("missing_peak")[0];
        assert!(peak.from.as_str() > "2024-01-05T07:00:00Z", "{peak:?}");
        assert!(peak.to.as_str() < "2024-01-05T23:00:00Z", "{peak:?}");
    }

    #[test]
    fn short_sets_wrap_anomalies_into_the_days_they_have() {
        let set = generate(&Options {
            days: 3,
            count: Some(2),
            seed: SEED,
        });
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].csv.lines().count(), 864 + 1);
        for w in &set[0].labels {
            assert!(w.from.starts_with("2024-01-03"), "{w:?}");
        }
    }

    #[test]
    fn the_committed_set_is_what_the_generator_writes() {
        // `patrol bench detect --generate eval/detect` must reproduce eval/detect exactly, so
        // the set stays rerunnable and nobody edits it by hand.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/detect");
        let set = generate(&Options::default());
        let mut labels = BTreeMap::new();
        for g in &set {
            let path = dir.join("series").join(format!("{}.csv", g.name));
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == g.csv,
                "{} differs from the generator",
                path.display()
            );
            labels.insert(g.name.clone(), g.labels.clone());
        }
        let committed = std::fs::read_to_string(dir.join("labels.json")).unwrap();
        assert_eq!(committed, labels_json(&labels));
        let files = std::fs::read_dir(dir.join("series")).unwrap().count();
        assert_eq!(files, set.len(), "no stray series in eval/detect/series");
    }

    #[test]
    fn the_rng_is_uniform_and_normal_enough() {
        let mut r = Rng::new(7);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
        let p: f64 = (0..n).map(|_| r.poisson(4.0)).sum::<f64>() / n as f64;
        assert!((p - 4.0).abs() < 0.05, "{p}");
    }
}
