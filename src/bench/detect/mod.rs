//! `patrol bench detect`: detection quality and speed of every baseline method on the
//! evaluation set in eval/detect, next to a named peer (a Zabbix-style seasonal average).
//!
//! Each series is replayed sample by sample through [`OnlineSeries`] — the code path of live
//! checks and `patrol detect`, refits included (every `refit` of the data's clock) — once per
//! method, and through the peer. The verdicts are scored against the labelled windows
//! ([`metrics`] defines every figure); then the speed: ns per EWMA update, the time to refit
//! `--refit-series` seasonal models of 2,016 points, and memory (peak RSS, model bytes per
//! series). `--generate DIR` writes the evaluation set instead (the committed one is
//! `--generate eval/detect`). Build with `--release`.

pub mod generate;
pub mod metrics;
pub mod peer;
mod speed;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::Memory;
use crate::baseline::online::{ModelState, OnlineSeries};
use crate::baseline::{BaselineConfig, BaselineMethod, EwmaState, Forecast};
use crate::cli::detect::{MethodArg, Row, infer_step, parse_series, score_of};
use crate::cli::{EXIT_INVALID, EXIT_OK};
use generate::{DAY_SECS, LabelWindow, PROBATION_DAYS};
use metrics::{Events, Point, Rules, Window};
use peer::{SeasonalAverage, SeasonalAverageConfig};

/// How long after a labelled window's end an alert still counts for it.
pub const GRACE: TimeDelta = TimeDelta::minutes(30);

#[derive(clap::Args, Debug)]
pub struct DetectBenchArgs {
    /// The evaluation set: `labels.json` and `series/<name>.csv`.
    #[arg(long, default_value = "eval/detect")]
    pub set: PathBuf,
    /// patrol methods to replay (the peer always runs).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ewma,seasonal,ets"
    )]
    pub methods: Vec<MethodArg>,
    /// How often seasonal and ets models are refitted during the replay, on the data's clock
    /// (1h: a check's default).
    #[arg(long, default_value = "1h", value_parser = crate::config::duration::parse)]
    pub refit: Duration,
    /// Seasonal models of 2,016 points fitted for the refit timing (0: skip).
    #[arg(long, default_value_t = 1000)]
    pub refit_series: usize,
    /// EWMA updates timed.
    #[arg(long, default_value_t = 10_000_000)]
    pub updates: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print detections and false alarms of every series.
    #[arg(long)]
    pub per_series: bool,
    /// Write the evaluation set into DIR instead of benchmarking (`--generate eval/detect`
    /// rewrites the committed set byte for byte).
    #[arg(long, value_name = "DIR")]
    pub generate: Option<PathBuf>,
    /// With --generate: only the first N series.
    #[arg(long, requires = "generate")]
    pub count: Option<usize>,
    /// With --generate: days per series (at least 3).
    #[arg(long, requires = "generate", default_value_t = 7)]
    pub days: u32,
    /// With --generate: the seed.
    #[arg(long, requires = "generate", default_value_t = generate::SEED)]
    pub seed: u64,
}

pub async fn run(args: DetectBenchArgs) -> u8 {
    match tokio::task::spawn_blocking(move || run_blocking(&args)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patrol bench detect: {e}");
            crate::cli::EXIT_FAILED
        }
    }
}

fn run_blocking(args: &DetectBenchArgs) -> u8 {
    if let Some(dir) = &args.generate {
        return write_set(dir, args);
    }
    if args.refit < Duration::from_secs(60) {
        eprintln!("patrol bench detect: --refit must be at least 1m");
        return EXIT_INVALID;
    }
    let set = match load_set(&args.set) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("patrol bench detect: {e}");
            return EXIT_INVALID;
        }
    };
    let report = bench(args, &set);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", table::render(&report, args.per_series));
    }
    EXIT_OK
}

fn write_set(dir: &Path, args: &DetectBenchArgs) -> u8 {
    if args.days <= PROBATION_DAYS as u32 {
        eprintln!(
            "patrol bench detect: --days must be more than the {PROBATION_DAYS} probation days"
        );
        return EXIT_INVALID;
    }
    let opts = generate::Options {
        days: args.days,
        count: args.count,
        seed: args.seed,
    };
    match generate::write_set(dir, &opts) {
        Ok((series, bytes)) => {
            println!(
                "wrote {series} series and labels.json into {} ({:.1} KiB)",
                dir.display(),
                bytes as f64 / 1024.0
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("patrol bench detect: cannot write {}: {e}", dir.display());
            crate::cli::EXIT_FAILED
        }
    }
}

/// One series of the set with its labels.
pub struct EvalSeries {
    pub name: String,
    pub rows: Vec<Row>,
    pub windows: Vec<Window>,
    pub step: Duration,
}

/// Reads `labels.json` and every series it names.
pub fn load_set(dir: &Path) -> Result<Vec<EvalSeries>, String> {
    let path = dir.join("labels.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (generate a set with --generate DIR)",
            path.display()
        )
    })?;
    let labels: BTreeMap<String, Vec<LabelWindow>> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if labels.is_empty() {
        return Err(format!("{}: no series", path.display()));
    }
    labels
        .into_iter()
        .map(|(name, windows)| {
            let csv = dir.join("series").join(format!("{name}.csv"));
            let shown = csv.display().to_string();
            let text = std::fs::read_to_string(&csv).map_err(|e| format!("{shown}: {e}"))?;
            let rows = parse_series(&text, &shown)?.rows;
            let windows = windows
                .iter()
                .map(|w| window(w).map_err(|e| format!("{}: {name}: {e}", path.display())))
                .collect::<Result<Vec<_>, _>>()?;
            let step = infer_step(&rows).ok_or_else(|| format!("{shown}: too few rows"))?;
            Ok(EvalSeries {
                name,
                rows,
                windows,
                step,
            })
        })
        .collect()
}

fn window(w: &LabelWindow) -> Result<Window, String> {
    let t = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("{s:?}: {e}"))
    };
    Ok(Window {
        from: t(&w.from)?,
        to: t(&w.to)?,
        kind: w.kind.clone(),
    })
}

/// A method of the comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    Patrol(BaselineMethod),
    Peer,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::Patrol(m) => m.as_str(),
            Method::Peer => "peer",
        }
    }
}

/// The configuration each patrol method runs with: the defaults a check gets, seasonal with a
/// daily period (seven days cannot teach a weekly one: it needs two weeks of history).
pub fn method_config(method: BaselineMethod) -> BaselineConfig {
    match method {
        BaselineMethod::Seasonal => BaselineConfig {
            method,
            periods: vec![Duration::from_secs(DAY_SECS as u64)],
            ..BaselineConfig::default()
        },
        _ => BaselineConfig {
            method,
            ..BaselineConfig::default()
        },
    }
}

/// One series replayed with one method.
struct SeriesRun {
    points: Vec<Point>,
    cpu: Duration,
    refits: usize,
    /// Bytes the method keeps per series between samples (EWMA state + forecast; the peer's
    /// kept samples).
    state_bytes: usize,
    /// The band method of the last verdict (shows a fallback that never ended).
    last_method: Option<String>,
}

fn replay(method: Method, series: &EvalSeries, refit: Duration) -> SeriesRun {
    let started = Instant::now();
    let mut points = Vec::with_capacity(series.rows.len());
    let with_values = series.rows.iter().filter_map(|r| Some((r.t, r.value?)));
    match method {
        Method::Patrol(m) => {
            let cfg = BaselineConfig {
                interval: Some(series.step),
                refit,
                ..method_config(m)
            };
            let mut online = OnlineSeries::new(cfg, series.step, Vec::new());
            let mut last_method = None;
            for (t, x) in with_values {
                let v = online.push(t, x);
                points.push(Point {
                    t,
                    score: score_of(&v),
                    alert: v.anomalous,
                });
                last_method = v.band.map(|b| b.method);
            }
            SeriesRun {
                points,
                cpu: started.elapsed(),
                refits: online.refits(),
                state_bytes: std::mem::size_of::<EwmaState>() + forecast_bytes(online.model()),
                last_method,
            }
        }
        Method::Peer => {
            let mut peer = SeasonalAverage::new(SeasonalAverageConfig::default());
            for (t, x) in with_values {
                let v = peer.push(t, x);
                points.push(Point {
                    t,
                    score: v.score,
                    alert: v.anomalous,
                });
            }
            SeriesRun {
                points,
                cpu: started.elapsed(),
                refits: 0,
                state_bytes: peer.state_bytes(),
                last_method: None,
            }
        }
    }
}

/// Bytes of a fitted model's forecast (0 without one).
fn forecast_bytes(model: &ModelState) -> usize {
    match model {
        ModelState::Fitted(f) => {
            std::mem::size_of::<Forecast>() + (f.point.len() + f.lower.len() + f.upper.len()) * 8
        }
        _ => 0,
    }
}

/// Quality and cost of one method over the whole set.
#[derive(Clone, Debug, Serialize)]
pub struct MethodReport {
    pub method: String,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: f64,
    pub mean_delay_secs: Option<f64>,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    pub events: Events,
    pub points: usize,
    /// Replay time per sample, refits included (summed over the worker threads).
    pub ns_per_point: f64,
    pub refits: usize,
    /// Most bytes one series held between samples.
    pub state_bytes_max: usize,
    /// Samples a refit reads (fitted methods: `history` at the series' step) as bytes of
    /// (time, value) pairs; the daemon reads them from the store.
    pub history_bytes: usize,
    /// Band methods of the series' last verdicts with how many series ended on each (shows
    /// when a fitted method never left its EWMA fallback).
    pub last_band_methods: BTreeMap<String, usize>,
    /// The best F1 a threshold on `anomaly_score` reaches on this set (the tuning figure).
    pub tuned: Option<Tuned>,
    /// Windows, detections and false alarms of each series.
    pub per_series: BTreeMap<String, SeriesFigures>,
}

/// Event figures of one series.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesFigures {
    pub windows: usize,
    pub detected: usize,
    pub false_alarms: usize,
    pub alerts: usize,
    /// The band method of the series' last verdict.
    pub last_method: Option<String>,
}

/// The score threshold with the best event F1, as the band width `z` it corresponds to (a
/// score of z²/(z²+9)): alerts re-derived from the replay's scores, so the learning of the
/// replay (anomalies kept out at the default width) is not re-run.
#[derive(Clone, Debug, Serialize)]
pub struct Tuned {
    pub z: f64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: f64,
    pub false_alarms: usize,
}

/// Band widths (in σ) tried for [`Tuned`].
const TUNING_Z: [f64; 14] = [
    2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0,
];

/// The best of [`TUNING_Z`] for these runs.
fn tune(set: &[EvalSeries], runs: &[SeriesRun]) -> Option<Tuned> {
    TUNING_Z
        .iter()
        .map(|&z| {
            let threshold = crate::baseline::score::from_z(z);
            let mut events = Events::default();
            for (series, run) in set.iter().zip(runs) {
                let points: Vec<Point> = run
                    .points
                    .iter()
                    .map(|p| Point {
                        alert: p.score > threshold,
                        ..*p
                    })
                    .collect();
                events.add(&metrics::events(
                    &points,
                    &series.windows,
                    &rules_for(series),
                ));
            }
            Tuned {
                z,
                precision: events.precision(),
                recall: events.recall(),
                f1: events.f1(),
                false_alarms: events.false_alarms,
            }
        })
        .max_by(|a, b| a.f1.total_cmp(&b.f1))
}

fn rules_for(series: &EvalSeries) -> Rules {
    Rules {
        grace: GRACE,
        probation_end: series.rows.iter().map(|r| r.t).min().unwrap_or_default()
            + TimeDelta::days(PROBATION_DAYS),
    }
}

/// Everything the bench measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub set: String,
    pub series: usize,
    pub rows: usize,
    pub windows: usize,
    pub grace_secs: i64,
    /// Refit interval of the seasonal and ets replays.
    pub refit_secs: u64,
    pub probation_days: i64,
    pub cpus: usize,
    /// 1-minute load average before and after (other work on the host skews every timing).
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    pub methods: Vec<MethodReport>,
    pub ewma: speed::EwmaTiming,
    pub refit: Option<speed::RefitTiming>,
    /// Peak RSS while replaying the set (KiB), and whether the peak was reset before.
    pub replay_peak_rss_kib: Option<u64>,
    pub peak_reset: bool,
}

fn bench(args: &DetectBenchArgs, set: &[EvalSeries]) -> Report {
    let mut methods: Vec<Method> = Vec::new();
    for m in &args.methods {
        let m = Method::Patrol(match m {
            MethodArg::Ewma => BaselineMethod::Ewma,
            MethodArg::Seasonal => BaselineMethod::Seasonal,
            MethodArg::Ets => BaselineMethod::Ets,
        });
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    methods.push(Method::Peer);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = super::usage::load_average();
    let peak_reset = super::usage::reset_peak_rss();
    eprintln!(
        "bench detect: replaying {} series with {}…",
        set.len(),
        methods
            .iter()
            .map(|m| m.label())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let runs = replay_all(&methods, set, args.refit, cpus);
    let replay_peak_rss_kib = Memory::now().map(|m| m.peak_kib);
    let reports = methods
        .iter()
        .zip(runs)
        .map(|(m, runs)| method_report(*m, set, &runs))
        .collect();
    eprintln!("bench detect: timing {} EWMA updates…", args.updates);
    let ewma = speed::time_ewma(args.updates);
    let refit = (args.refit_series > 0).then(|| {
        eprintln!(
            "bench detect: fitting {} seasonal models of 2,016 points…",
            args.refit_series
        );
        speed::time_refits(args.refit_series, cpus)
    });
    Report {
        set: args.set.display().to_string(),
        series: set.len(),
        rows: set.iter().map(|s| s.rows.len()).sum(),
        windows: set.iter().map(|s| s.windows.len()).sum(),
        grace_secs: GRACE.num_seconds(),
        refit_secs: args.refit.as_secs(),
        probation_days: PROBATION_DAYS,
        cpus,
        load_before,
        load_after: super::usage::load_average(),
        methods: reports,
        ewma,
        refit,
        replay_peak_rss_kib,
        peak_reset,
    }
}

/// Replays every (method, series) pair on `threads` workers; runs per method, in set order.
fn replay_all(
    methods: &[Method],
    set: &[EvalSeries],
    refit: Duration,
    threads: usize,
) -> Vec<Vec<SeriesRun>> {
    let jobs: Vec<(usize, usize)> = (0..methods.len())
        .flat_map(|m| (0..set.len()).map(move |s| (m, s)))
        .collect();
    let slots: Vec<Mutex<Option<SeriesRun>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(m, s)) = jobs.get(i) else { break };
                    let run = replay(methods[m], &set[s], refit);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(run);
                }
            });
        }
    });
    let mut runs: Vec<Vec<SeriesRun>> = methods.iter().map(|_| Vec::new()).collect();
    for ((m, _), slot) in jobs.iter().zip(slots) {
        if let Some(run) = slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            runs[*m].push(run);
        }
    }
    runs
}

fn method_report(method: Method, set: &[EvalSeries], runs: &[SeriesRun]) -> MethodReport {
    let mut events = Events::default();
    let mut ranked = Vec::new();
    let mut last_band_methods = BTreeMap::new();
    let mut per_series = BTreeMap::new();
    for (series, run) in set.iter().zip(runs) {
        let rules = rules_for(series);
        let one = metrics::events(&run.points, &series.windows, &rules);
        per_series.insert(
            series.name.clone(),
            SeriesFigures {
                windows: one.windows,
                detected: one.detected,
                false_alarms: one.false_alarms,
                alerts: one.alerts,
                last_method: run.last_method.clone(),
            },
        );
        events.add(&one);
        ranked.extend(metrics::ranked(&run.points, &series.windows, &rules));
        if let Some(m) = &run.last_method {
            *last_band_methods.entry(m.clone()).or_insert(0) += 1;
        }
    }
    let points: usize = runs.iter().map(|r| r.points.len()).sum();
    let cpu: Duration = runs.iter().map(|r| r.cpu).sum();
    let history_bytes = match method {
        Method::Patrol(m) if m.is_fitted() => {
            let cfg = method_config(m);
            let step = set.first().map_or(300.0, |s| s.step.as_secs_f64());
            (cfg.history().as_secs_f64() / step) as usize * std::mem::size_of::<(i64, f64)>()
        }
        _ => 0,
    };
    MethodReport {
        method: method.label().to_string(),
        precision: events.precision(),
        recall: events.recall(),
        f1: events.f1(),
        mean_delay_secs: events.mean_delay_secs(),
        roc_auc: metrics::roc_auc(&ranked),
        average_precision: metrics::average_precision(&ranked),
        points,
        ns_per_point: cpu.as_nanos() as f64 / points.max(1) as f64,
        refits: runs.iter().map(|r| r.refits).sum(),
        state_bytes_max: runs.iter().map(|r| r.state_bytes).max().unwrap_or(0),
        history_bytes,
        last_band_methods,
        tuned: tune(set, runs),
        per_series,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_generated_set_loads_and_every_method_replays_it_online() {
        let dir = tempfile::tempdir().unwrap();
        let opts = generate::Options {
            days: 3,
            count: Some(3),
            seed: generate::SEED,
        };
        generate::write_set(dir.path(), &opts).unwrap();
        let set = load_set(dir.path()).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.iter().all(|s| s.step == Duration::from_secs(300)));
        let ewma = Method::Patrol(BaselineMethod::Ewma);
        let runs = replay_all(&[ewma, Method::Peer], &set, HOUR, 2);
        assert_eq!(runs[0].len(), 3);
        let report = method_report(ewma, &set, &runs[0]);
        assert_eq!(
            report.events.windows,
            set.iter().map(|s| s.windows.len()).sum::<usize>()
        );
        assert!(report.recall.is_some() && report.roc_auc.is_some());
        assert_eq!(
            report.points,
            runs[0].iter().map(|r| r.points.len()).sum::<usize>()
        );
        // The online property: replaying a prefix gives the same verdicts.
        let mut short = EvalSeries {
            name: set[0].name.clone(),
            rows: set[0].rows[..400].to_vec(),
            windows: vec![],
            step: set[0].step,
        };
        let prefix = replay(ewma, &short, HOUR);
        assert_eq!(prefix.points[..], runs[0][0].points[..prefix.points.len()]);
        short.rows.truncate(0);
        assert!(replay(Method::Peer, &short, HOUR).points.is_empty());
    }

    #[test]
    fn a_missing_set_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_set(dir.path()).err().unwrap();
        assert!(e.contains("labels.json") && e.contains("--generate"), "{e}");
        std::fs::write(dir.path().join("labels.json"), r#"{"a": []}"#).unwrap();
        let e = load_set(dir.path()).err().unwrap();
        assert!(e.contains("a.csv"), "{e}");
    }
}
