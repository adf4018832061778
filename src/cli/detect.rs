//! `patrol detect`: offline anomaly scores for CSV series. Every `*.csv` under `--input` (a
//! `timestamp,value` series) becomes a `timestamp,anomaly_score` CSV at the same relative path
//! under `--output`, one row per input row in the input's order. Each row is judged by
//! [`OnlineSeries::push`] — the code path of live checks — from that row and the ones before it
//! only, so the scores are what the daemon would have said at the time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{EXIT_INVALID, EXIT_OK};
use crate::baseline::online::OnlineSeries;
use crate::baseline::{BaselineConfig, BaselineMethod, Direction, Verdict};
use crate::config::duration;

/// Sample spacing assumed when a file has fewer than two distinct timestamps and no
/// `--interval` was given (nothing is fitted from so little anyway).
const FALLBACK_STEP: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// Directory of CSV files `timestamp,value` (searched recursively), or one CSV file.
    /// Timestamps are RFC 3339 or unix seconds; a header row is optional.
    #[arg(long)]
    pub input: PathBuf,
    /// Directory the scored CSVs are written to, with the same relative paths.
    #[arg(long)]
    pub output: PathBuf,
    /// Baseline method (the same as a check's `baseline.method`).
    #[arg(long, value_enum, default_value_t = MethodArg::Ewma)]
    pub method: MethodArg,
    /// Sample spacing (default: the median spacing of each file).
    #[arg(long, value_parser = duration::parse)]
    pub interval: Option<Duration>,
    /// Weight of the newest sample in the EWMA, 0 < alpha ≤ 1 (default 0.1).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// EWMA band half-width in standard deviations (default 3).
    #[arg(long)]
    pub k: Option<f64>,
    /// Samples learned before the EWMA band is enforced (default 20).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Seasonal periods, comma-separated (seasonal only; default 1d).
    #[arg(long, value_parser = parse_periods)]
    pub periods: Option<Periods>,
    /// How often the model is refitted, on the data's clock (default 1h).
    #[arg(long, value_parser = duration::parse)]
    pub refit: Option<Duration>,
    /// Prediction-interval level of a fitted model's band (default 0.99).
    #[arg(long)]
    pub level: Option<f64>,
    /// History needed before the fitted model judges (default: two of the longest period; ets: 1d).
    #[arg(long, value_parser = duration::parse)]
    pub min_history: Option<Duration>,
    /// History a refit reads (default: four of the longest period; ets: 7d).
    #[arg(long, value_parser = duration::parse)]
    pub history: Option<Duration>,
    /// Which side of the band counts as unusual.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// Learn values judged anomalous too (default: an outage never becomes normal).
    #[arg(long)]
    pub learn_anomalies: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    Ewma,
    Seasonal,
    Ets,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    Both,
    Up,
    Down,
}

/// `--periods 1d,7d`.
#[derive(Clone, Debug, PartialEq)]
pub struct Periods(pub Vec<Duration>);

fn parse_periods(text: &str) -> Result<Periods, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(duration::parse)
        .collect::<Result<Vec<_>, _>>()
        .map(Periods)
}

impl MethodArg {
    fn method(self) -> BaselineMethod {
        match self {
            MethodArg::Ewma => BaselineMethod::Ewma,
            MethodArg::Seasonal => BaselineMethod::Seasonal,
            MethodArg::Ets => BaselineMethod::Ets,
        }
    }
}

impl DirectionArg {
    fn direction(self) -> Direction {
        match self {
            DirectionArg::Both => Direction::Both,
            DirectionArg::Up => Direction::Up,
            DirectionArg::Down => Direction::Down,
        }
    }
}

/// The baseline the flags describe, or every problem with it (`--flag: message`).
pub fn baseline_config(args: &DetectArgs) -> Result<BaselineConfig, Vec<String>> {
    let defaults = BaselineConfig::default();
    let method = args.method.method();
    let periods = match (&args.periods, method) {
        (Some(p), _) => p.0.clone(),
        // A seasonal baseline needs a period; a day is what most service metrics repeat.
        (None, BaselineMethod::Seasonal) => vec![Duration::from_secs(86_400)],
        (None, _) => Vec::new(),
    };
    let cfg = BaselineConfig {
        method,
        alpha: args.alpha.unwrap_or(defaults.alpha),
        k: args.k.unwrap_or(defaults.k),
        warmup: args.warmup.unwrap_or(defaults.warmup),
        direction: args.direction.direction(),
        learn_anomalies: args.learn_anomalies,
        periods,
        refit: args.refit.unwrap_or(defaults.refit),
        level: args.level.unwrap_or(defaults.level),
        min_history: args.min_history,
        history: args.history,
        interval: args.interval,
        ..defaults
    };
    let problems: Vec<String> = cfg
        .problems()
        .into_iter()
        .map(|(field, msg)| format!("--{}: {msg}", field.replace('_', "-")))
        .collect();
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

/// One data row of an input CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// 1-based line in the file.
    pub line: usize,
    /// The timestamp as written (echoed into the output).
    pub stamp: String,
    pub t: DateTime<Utc>,
    /// None for an empty or unparseable value (the row gets an empty score).
    pub value: Option<f64>,
}

/// A parsed input file: its rows and the lines whose value could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub rows: Vec<Row>,
    /// Lines with a non-empty value that is not a finite number (scored as missing).
    pub unreadable: Vec<usize>,
}

/// Reads a `timestamp,value` CSV. The first line is a header when neither its timestamp nor its
/// value parses (a header may name the columns `timestamp` and `value` in any position). Blank
/// lines are skipped. Errors name `file:line`.
pub fn parse_series(text: &str, file: &str) -> Result<Series, String> {
    let mut series = Series::default();
    let (mut ts_col, mut value_col) = (0, 1);
    let mut first = true;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.split(',').map(unquote).collect();
        if std::mem::take(&mut first) && is_header(&fields) {
            (ts_col, value_col) = header_columns(&fields);
            continue;
        }
        let (Some(stamp), Some(value)) = (fields.get(ts_col), fields.get(value_col)) else {
            return Err(format!(
                "{file}:{line}: expected the columns timestamp,value, found {} field(s)",
                fields.len()
            ));
        };
        let t = parse_timestamp(stamp).map_err(|e| format!("{file}:{line}: {e}"))?;
        let value = match parse_value(value) {
            Cell::Number(v) => Some(v),
            Cell::Empty => None,
            Cell::Unreadable => {
                series.unreadable.push(line);
                None
            }
        };
        series.rows.push(Row {
            line,
            stamp: stamp.to_string(),
            t,
            value,
        });
    }
    Ok(series)
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(f)
}

fn is_header(fields: &[&str]) -> bool {
    let value_is_number = fields.get(1).is_some_and(|v| v.parse::<f64>().is_ok());
    parse_timestamp(fields[0]).is_err() && !value_is_number
}

/// Column positions named in a header (`timestamp`/`time`/`ts`, `value`), else the first two.
fn header_columns(fields: &[&str]) -> (usize, usize) {
    let find = |names: &[&str]| {
        fields
            .iter()
            .position(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
    };
    let ts = find(&["timestamp", "time", "ts"]).unwrap_or(0);
    let value = find(&["value"]).unwrap_or(if ts == 1 { 0 } else { 1 });
    (ts, value)
}

/// An RFC 3339 time or unix seconds (fractions allowed).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
    {
        // Year 10000 and later: almost surely milliseconds, not seconds.
        if secs.abs() >= 253_402_300_800.0 {
            return Err(format!(
                "timestamp {text} is too large for unix seconds (milliseconds? divide by 1000)"
            ));
        }
        let whole = secs.floor();
        let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
        if let Some(t) = DateTime::from_timestamp(whole as i64, nanos) {
            return Ok(t);
        }
    }
    Err(format!(
        "invalid timestamp {text:?} (write RFC 3339, e.g. 2024-01-01T00:05:00Z, or unix seconds)"
    ))
}

/// What a value cell holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    Number(f64),
    Empty,
    /// Text that is not a finite number (`abc`, `NaN`, `inf`).
    Unreadable,
}

fn parse_value(text: &str) -> Cell {
    if text.is_empty() {
        return Cell::Empty;
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Cell::Number(v),
        _ => Cell::Unreadable,
    }
}

/// The median spacing between consecutive distinct timestamps (in time order), or None for
/// fewer than two distinct timestamps.
pub fn infer_step(rows: &[Row]) -> Option<Duration> {
    let mut times: Vec<DateTime<Utc>> = rows.iter().map(|r| r.t).collect();
    times.sort();
    times.dedup();
    let mut gaps: Vec<Duration> = times
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let mid = gaps.len() / 2;
    Some(*gaps.select_nth_unstable(mid).1)
}

/// Replays `rows` in file order through one [`OnlineSeries`]: a verdict per row with a value,
/// None for a row without one (it does not feed the model).
pub fn replay(cfg: &BaselineConfig, step: Duration, rows: &[Row]) -> Vec<Option<Verdict>> {
    let cfg = BaselineConfig {
        interval: Some(step),
        ..cfg.clone()
    };
    let mut series = OnlineSeries::new(cfg, step, Vec::new());
    rows.iter()
        .map(|r| r.value.map(|x| series.push(r.t, x)))
        .collect()
}

/// The graded score of a verdict (0 before anything was learned).
pub fn score_of(verdict: &Verdict) -> f64 {
    verdict.band.as_ref().map_or(0.0, |b| b.anomaly_score)
}

/// The output CSV for `rows` and their verdicts.
fn render(rows: &[Row], verdicts: &[Option<Verdict>]) -> String {
    let mut out = String::with_capacity(rows.len() * 32 + 32);
    out.push_str("timestamp,anomaly_score\n");
    for (row, verdict) in rows.iter().zip(verdicts) {
        out.push_str(&row.stamp);
        out.push(',');
        if let Some(v) = verdict {
            out.push_str(&format!("{:.6}", score_of(v)));
        }
        out.push('\n');
    }
    out
}

/// What scoring one file did.
struct FileOutcome {
    rows: usize,
    step: Duration,
    unreadable: Vec<usize>,
}

/// Scores one file into `output`; Err is the message to print.
fn score_file(
    cfg: &BaselineConfig,
    interval: Option<Duration>,
    input: &Path,
    shown: &str,
    output: &Path,
) -> Result<FileOutcome, String> {
    let bytes = std::fs::read(input).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format!("{shown}:{line}: not UTF-8 text")
    })?;
    let series = parse_series(&text, shown)?;
    let step = interval
        .or_else(|| infer_step(&series.rows))
        .unwrap_or(FALLBACK_STEP);
    let verdicts = replay(cfg, step, &series.rows);
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{shown}: cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(output, render(&series.rows, &verdicts))
        .map_err(|e| format!("{shown}: cannot write {}: {e}", output.display()))?;
    Ok(FileOutcome {
        rows: series.rows.len(),
        step,
        unreadable: series.unreadable,
    })
}

/// Every `*.csv` under `root` (recursively, sorted), relative to `root`, leaving out `skip`
/// (the output directory when it lies inside the input). Symlinked directories are not
/// followed (no cycles).
pub fn csv_files(root: &Path, skip: Option<&Path>) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let dir = root.join(&rel);
        if skip.is_some_and(|s| dir.canonicalize().is_ok_and(|d| d == s)) {
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let rel = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(rel);
            } else if is_csv(&rel) && std::fs::metadata(root.join(&rel)).is_ok_and(|m| m.is_file())
            {
                found.push(rel);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The files to score as (input path, path shown in messages, output path).
fn plan(args: &DetectArgs) -> Result<Vec<(PathBuf, String, PathBuf)>, String> {
    let input = &args.input;
    let meta = std::fs::metadata(input).map_err(|e| format!("--input {}: {e}", input.display()))?;
    if meta.is_file() {
        let name = input
            .file_name()
            .ok_or_else(|| format!("--input {}: not a file name", input.display()))?;
        return Ok(vec![(
            input.clone(),
            input.display().to_string(),
            args.output.join(name),
        )]);
    }
    std::fs::create_dir_all(&args.output)
        .map_err(|e| format!("--output {}: {e}", args.output.display()))?;
    let skip = args.output.canonicalize().ok();
    let files = csv_files(input, skip.as_deref())
        .map_err(|e| format!("--input {}: {e}", input.display()))?;
    if files.is_empty() {
        return Err(format!("--input {}: no *.csv files found", input.display()));
    }
    Ok(files
        .into_iter()
        .map(|rel| {
            (
                input.join(&rel),
                input.join(&rel).display().to_string(),
                args.output.join(&rel),
            )
        })
        .collect())
}

pub async fn detect(args: DetectArgs) -> u8 {
    match tokio::task::spawn_blocking(move || detect_blocking(&args)).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patrol detect: {e}");
            super::EXIT_FAILED
        }
    }
}

fn detect_blocking(args: &DetectArgs) -> u8 {
    let cfg = match baseline_config(args) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("patrol detect: {p}");
            }
            return EXIT_INVALID;
        }
    };
    let files = match plan(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("patrol detect: {e}");
            return EXIT_INVALID;
        }
    };
    let outcomes = score_all(&cfg, args.interval, &files);
    let mut failed = 0;
    let mut rows = 0;
    for ((_, shown, _), outcome) in files.iter().zip(&outcomes) {
        match outcome {
            Ok(o) => {
                rows += o.rows;
                if let Some(first) = o.unreadable.first() {
                    eprintln!(
                        "{shown}:{first}: value is not a number; {} such row(s) scored empty",
                        o.unreadable.len()
                    );
                }
                if args.interval.is_none() {
                    tracing::debug!("{shown}: interval {}", duration::format(o.step));
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    let written = files.len() - failed;
    println!(
        "scored {written} file(s), {rows} row(s) with {} into {}{}",
        cfg.method.as_str(),
        args.output.display(),
        if failed > 0 {
            format!("; {failed} file(s) invalid")
        } else {
            String::new()
        }
    );
    if failed > 0 { EXIT_INVALID } else { EXIT_OK }
}

/// Scores the files on every core (a seasonal replay refits hundreds of times per file).
fn score_all(
    cfg: &BaselineConfig,
    interval: Option<Duration>,
    files: &[(PathBuf, String, PathBuf)],
) -> Vec<Result<FileOutcome, String>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<FileOutcome, String>>>> =
        files.iter().map(|_| Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((input, shown, output)) = files.get(i) else {
                        break;
                    };
                    let outcome = score_file(cfg, interval, input, shown, output);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err("not scored".to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Row> {
        parse_series(text, "t.csv").unwrap().rows
    }

    #[test]
    fn a_header_is_detected_and_may_name_the_columns() {
        let s = rows("timestamp,value\n2024-01-01T00:00:00Z,1.5\n");
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].line, s[0].value), (2, Some(1.5)));
        let swapped = rows("value,timestamp\n2.5,1704067200\n");
        assert_eq!(swapped[0].value, Some(2.5));
        assert_eq!(swapped[0].t.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        let none = rows("\u{feff}1704067200,3\n1704067500,4\n");
        assert_eq!(none.len(), 2);
        assert_eq!(none[1].stamp, "1704067500");
    }

    #[test]
    fn a_bad_first_row_is_an_error_not_a_header() {
        let e = parse_series("2024-13-01T00:00:00Z,5\n", "f.csv").unwrap_err();
        assert!(e.starts_with("f.csv:1: invalid timestamp"), "{e}");
        let e = parse_series("timestamp,value\n\n1704067200\n", "f.csv").unwrap_err();
        assert!(e.starts_with("f.csv:3: expected the columns"), "{e}");
        let e = parse_series("ts,value\n1704067200000,1\n", "f.csv").unwrap_err();
        assert!(e.contains("milliseconds"), "{e}");
    }

    #[test]
    fn empty_and_unreadable_values_are_missing() {
        let s = parse_series(
            "timestamp,value\n1704067200,\n1704067500,abc\n1704067800,NaN\n1704068100,\"7\"\n",
            "t.csv",
        )
        .unwrap();
        let values: Vec<_> = s.rows.iter().map(|r| r.value).collect();
        assert_eq!(values, [None, None, None, Some(7.0)]);
        assert_eq!(s.unreadable, [3, 4]);
    }

    #[test]
    fn the_step_is_the_median_spacing_of_distinct_times() {
        let s = rows("0,1\n300,1\n300,2\n900,1\n600,1\n1200,1\n5000,1\n");
        assert_eq!(infer_step(&s), Some(Duration::from_secs(300)));
        assert_eq!(infer_step(&rows("0,1\n0,2\n")), None);
    }

    #[test]
    fn periods_and_problems_come_from_the_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DetectArgs,
        }
        let parse = |extra: &[&str]| {
            let mut argv = vec!["x", "--input", "i", "--output", "o"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).unwrap().args
        };
        let cfg = baseline_config(&parse(&["--method", "seasonal"])).unwrap();
        assert_eq!(cfg.periods, [Duration::from_secs(86_400)]);
        let cfg = baseline_config(&parse(&[
            "--method",
            "seasonal",
            "--periods",
            "1d,7d",
            "--level",
            "0.95",
            "--direction",
            "up",
        ]))
        .unwrap();
        assert_eq!(cfg.periods.len(), 2);
        assert_eq!((cfg.level, cfg.direction), (0.95, Direction::Up));
        let e = baseline_config(&parse(&["--alpha", "2", "--periods", "1d"])).unwrap_err();
        assert!(e.iter().any(|p| p.starts_with("--alpha:")), "{e:?}");
        assert!(e.iter().any(|p| p.starts_with("--periods:")), "{e:?}");
    }

    #[test]
    fn scores_are_online_and_rows_without_values_get_none() {
        let mut text = String::new();
        for i in 0..60 {
            let v = if i == 40 {
                500.0
            } else {
                100.0 + (i % 7) as f64
            };
            text.push_str(&format!("{},{}\n", 1_704_067_200 + i * 300, v));
        }
        text.push_str("1704085200,\n");
        let all = rows(&text);
        let cfg = BaselineConfig::default();
        let full = replay(&cfg, Duration::from_secs(300), &all);
        let prefix = replay(&cfg, Duration::from_secs(300), &all[..30]);
        assert_eq!(full[..30], prefix[..]);
        assert!(full[60].is_none());
        let spike = score_of(full[40].as_ref().unwrap());
        assert!(spike > 0.9, "{spike}");
        let csv = render(&all, &full);
        assert!(csv.starts_with("timestamp,anomaly_score\n1704067200,0.000000\n"));
        assert!(csv.ends_with("\n1704085200,\n"));
    }
}
