//! `kind: pprof` — a Go service's runtime, read from its `net/http/pprof` endpoints: the number of
//! goroutines (`{path}/goroutine?debug=1`) or the heap in use (`HeapInuse` of
//! `{path}/heap?debug=1`), and their growth over a window, the classic sign of a leak
//! ("goroutines up 300 % in 5 minutes").
//!
//! ```yaml
//! targets:
//!   orders-debug: { kind: http, url: "http://orders:6060" }
//! checks:
//!   - name: orders-goroutine-leak
//!     kind: pprof
//!     target: orders-debug
//!     every: 1m
//!     value: goroutines        # goroutines | heap_inuse_bytes | goroutines_growth_pct | heap_growth_pct
//!     window: 5m               # growth is measured against the value about this long ago
//!     max_growth_pct: 300      # growing more than this within the window is crit
//!     crit: gt(10000)
//! ```
//!
//! The profile read is attached to every result (the engine keeps it with results that are not
//! ok), so the report of a leak shows the stacks that leaked. Growth needs earlier values: they
//! are kept in the check's probe memory (see [`growth`] for the exact rule).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Attachment, Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::config::{CheckCommon, Issues, duration};
use crate::result::Value;

mod fetch;
pub mod growth;
pub mod profile;

use growth::{Growth, History, Point};

/// `window` when none is written.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// Profile text attached to a result at most; Go services with many distinct stacks write MiBs.
const ATTACHMENT_LIMIT: usize = 256 * 1024;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PprofProbe {
    /// What to measure: `goroutines` (default), `heap_inuse_bytes`, or the growth of either
    /// over `window` in per cent: `goroutines_growth_pct`, `heap_growth_pct`.
    #[serde(default)]
    pub value: PprofValue,
    /// Where `net/http/pprof` is served under the target's URL (default `/debug/pprof`; `""`
    /// when the target's URL already points there).
    #[serde(default)]
    pub path: Option<String>,
    /// Growth is measured against the value about this long ago (default 5m).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<duration::DurationSchema>")]
    pub window: Option<Duration>,
    /// Growing by more than this many per cent within `window` is a failure (`crit`), named with
    /// its numbers: "goroutines up 312 % in 5m (1,000 → 4,120)".
    #[serde(default)]
    pub max_growth_pct: Option<f64>,
}

/// The measured value of a pprof check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PprofValue {
    #[default]
    Goroutines,
    HeapInuseBytes,
    GoroutinesGrowthPct,
    HeapGrowthPct,
}

/// Which profile a value is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Goroutines,
    HeapInuse,
}

impl PprofValue {
    pub fn metric(self) -> Metric {
        match self {
            PprofValue::Goroutines | PprofValue::GoroutinesGrowthPct => Metric::Goroutines,
            PprofValue::HeapInuseBytes | PprofValue::HeapGrowthPct => Metric::HeapInuse,
        }
    }

    pub fn is_growth(self) -> bool {
        matches!(
            self,
            PprofValue::GoroutinesGrowthPct | PprofValue::HeapGrowthPct
        )
    }

    pub fn unit(self) -> &'static str {
        match self {
            PprofValue::Goroutines => "",
            PprofValue::HeapInuseBytes => "bytes",
            PprofValue::GoroutinesGrowthPct | PprofValue::HeapGrowthPct => "%",
        }
    }
}

impl Metric {
    /// The profile's name under the pprof path.
    fn profile(self) -> &'static str {
        match self {
            Metric::Goroutines => "goroutine",
            Metric::HeapInuse => "heap",
        }
    }

    /// How results and attachments name the profile.
    fn attachment_name(self) -> &'static str {
        match self {
            Metric::Goroutines => "goroutine profile",
            Metric::HeapInuse => "heap profile",
        }
    }

    /// The value in a message: `4,120` goroutines, `10.8 MiB` of heap.
    fn format(self, value: f64) -> String {
        match self {
            Metric::Goroutines => group_thousands(value),
            Metric::HeapInuse => format_bytes(value),
        }
    }
}

/// A value read from a profile.
struct Reading {
    value: f64,
    /// The biggest group of goroutines sharing a stack (goroutine profiles).
    largest: Option<profile::Group>,
}

fn read(metric: Metric, text: &str) -> Result<Reading, String> {
    Ok(match metric {
        Metric::Goroutines => {
            let g = profile::goroutines(text)?;
            Reading {
                value: g.total as f64,
                largest: g.largest,
            }
        }
        Metric::HeapInuse => Reading {
            value: profile::heap_inuse(text)? as f64,
            largest: None,
        },
    })
}

impl PprofProbe {
    fn window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }

    /// Whether runs keep a history: a growth value or a growth limit needs earlier values.
    fn tracks_growth(&self) -> bool {
        self.value.is_growth() || self.max_growth_pct.is_some()
    }

    /// Adds this run's value to the remembered history; the growth over the window, if known.
    fn track(&self, ctx: &ProbeContext<'_>, value: f64) -> Option<Growth> {
        let mut history = History::from_memory(ctx.memory.previous());
        let now = Point {
            at_ms: chrono::Utc::now().timestamp_millis(),
            value,
        };
        let growth = history.record(now, self.window());
        ctx.memory.remember(history.to_memory());
        growth
    }

    /// The failure of a growth above `max_growth_pct`, if any.
    fn growth_failure(&self, metric: Metric, g: &Growth, reading: &Reading) -> Option<String> {
        let max = self.max_growth_pct?;
        if g.pct <= max {
            return None;
        }
        let what = match metric {
            Metric::Goroutines => "goroutines",
            Metric::HeapInuse => "heap in use",
        };
        let mut text = format!(
            "{what} up {} % in {} ({} → {}), more than max_growth_pct {}",
            format_pct(g.pct),
            duration::format(Duration::from_secs(g.over.as_secs_f64().round() as u64)),
            metric.format(g.from),
            metric.format(g.to),
            format_pct(max)
        );
        if let Some(group) = &reading.largest {
            text.push_str(&format!(
                "; largest group: {} goroutines",
                group_thousands(group.count as f64)
            ));
            if let Some(frame) = &group.top_frame {
                text.push_str(&format!(" in {frame}"));
            }
        }
        Some(text)
    }
}

impl Probe for PprofProbe {
    const TARGET_KINDS: &'static [&'static str] = &["http"];

    fn validate(&self, check: &CheckCommon, issues: &mut Issues) {
        if let Some(path) = &self.path
            && let Err(e) = fetch::check_path(path)
        {
            issues.at(&["path"], e);
        }
        if let Some(max) = self.max_growth_pct
            && !(max.is_finite() && max >= 0.0)
        {
            issues.at(
                &["max_growth_pct"],
                format!("max_growth_pct must be a non-negative number of per cent, got {max}"),
            );
        }
        let Some(window) = self.window else {
            return;
        };
        if !self.tracks_growth() {
            issues.at_key(
                &["window"],
                "`window` applies to growth: set `max_growth_pct` or a value ending in \
                 `_growth_pct`",
            );
        } else if window.is_zero() {
            issues.at(&["window"], "window must be longer than zero");
        } else if let Some(every) = check.every.filter(|every| *every > window) {
            issues.at(
                &["window"],
                format!(
                    "window {} is shorter than `every: {}`: no earlier run falls within it",
                    duration::format(window),
                    duration::format(every)
                ),
            );
        }
    }

    fn remembers(&self) -> bool {
        self.tracks_growth()
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let metric = self.value.metric();
        let endpoint = fetch::Endpoint::of(ctx, self.path.as_deref(), metric.profile())?;
        let text = endpoint.get(ctx.timeout).await?;
        let reading = read(metric, &text)
            .map_err(|e| ProbeError::new(format!("{}: {e}", endpoint.describe())))?;
        let mut m = Measurement {
            unit: self.value.unit().to_string(),
            attachment: Some(attachment(metric, &text)),
            ..Default::default()
        };
        let growth = self
            .tracks_growth()
            .then(|| self.track(ctx, reading.value))
            .flatten();
        if let Some(g) = &growth
            && let Some(failure) = self.growth_failure(metric, g, &reading)
        {
            m.failures.push(failure);
        }
        let value = match self.value.is_growth() {
            true => growth.map(|g| g.pct),
            false => Some(reading.value),
        };
        m.samples
            .extend(value.map(|v| Sample::single(Value::Num(v))));
        Ok(m)
    }
}

/// The profile as evidence for the report, cut at a line end after [`ATTACHMENT_LIMIT`] bytes.
fn attachment(metric: Metric, text: &str) -> Attachment {
    Attachment {
        name: metric.attachment_name().into(),
        content_type: "text/plain".into(),
        text: capped(text, ATTACHMENT_LIMIT),
    }
}

fn capped(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = text[..cut].rfind('\n').map_or(cut, |nl| nl + 1);
    format!(
        "{}\n[… truncated: the profile has {}, the first {} are kept]\n",
        &text[..kept],
        format_bytes(text.len() as f64),
        format_bytes(kept as f64)
    )
}

/// `4,120`: a whole number with thousands separators.
fn group_thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    match value < 0.0 && digits != "0" {
        true => format!("-{out}"),
        false => out,
    }
}

/// `312` per cent, or `4.5` below ten where the decimal matters.
fn format_pct(pct: f64) -> String {
    match pct.abs() < 10.0 && pct.fract() != 0.0 {
        true => format!("{pct:.1}"),
        false => group_thousands(pct),
    }
}

/// `512 B`, `4.3 MiB`, `1.2 GiB`.
fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024.0 {
        return format!("{bytes:.0} B");
    }
    let mut scaled = bytes / 1024.0;
    let mut unit = 0;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(value: PprofValue, max: Option<f64>) -> PprofProbe {
        PprofProbe {
            value,
            max_growth_pct: max,
            ..Default::default()
        }
    }

    fn growth(from: f64, to: f64, secs: u64) -> Growth {
        Growth {
            pct: (to - from) / from * 100.0,
            from,
            to,
            over: Duration::from_millis(secs * 1000 + 120),
        }
    }

    #[test]
    fn a_goroutine_leak_reads_like_the_seed() {
        let reading = Reading {
            value: 4120.0,
            largest: Some(profile::Group {
                count: 3903,
                top_frame: Some("main.(*S).forward (/app/s.go:112)".into()),
            }),
        };
        let p = probe(PprofValue::Goroutines, Some(300.0));
        let failure = p
            .growth_failure(Metric::Goroutines, &growth(1000.0, 4120.0, 300), &reading)
            .unwrap();
        assert_eq!(
            failure,
            "goroutines up 312 % in 5m (1,000 → 4,120), more than max_growth_pct 300; \
             largest group: 3,903 goroutines in main.(*S).forward (/app/s.go:112)"
        );
        let below = growth(1000.0, 3900.0, 300);
        assert_eq!(p.growth_failure(Metric::Goroutines, &below, &reading), None);
    }

    #[test]
    fn heap_growth_is_told_in_bytes() {
        let reading = Reading {
            value: 0.0,
            largest: None,
        };
        let p = probe(PprofValue::HeapInuseBytes, Some(50.0));
        let failure = p
            .growth_failure(
                Metric::HeapInuse,
                &growth(4_505_600.0, 11_264_000.0, 312),
                &reading,
            )
            .unwrap();
        assert_eq!(
            failure,
            "heap in use up 150 % in 5m 12s (4.3 MiB → 10.7 MiB), more than max_growth_pct 50"
        );
        assert_eq!(
            probe(PprofValue::HeapGrowthPct, None).growth_failure(
                Metric::HeapInuse,
                &growth(1.0, 100.0, 300),
                &reading
            ),
            None
        );
    }

    #[test]
    fn growth_values_and_limits_keep_a_history() {
        assert!(!probe(PprofValue::Goroutines, None).remembers());
        assert!(probe(PprofValue::Goroutines, Some(100.0)).remembers());
        assert!(probe(PprofValue::HeapGrowthPct, None).remembers());
        assert_eq!(PprofValue::HeapGrowthPct.metric(), Metric::HeapInuse);
        assert_eq!(PprofValue::GoroutinesGrowthPct.unit(), "%");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_thousands(1000.0), "1,000");
        assert_eq!(group_thousands(4_120_512.0), "4,120,512");
        assert_eq!(group_thousands(999.0), "999");
        assert_eq!(group_thousands(-1500.0), "-1,500");
        assert_eq!(format_pct(312.4), "312");
        assert_eq!(format_pct(4.46), "4.5");
        assert_eq!(format_pct(5.0), "5");
        assert_eq!(format_pct(1250.0), "1,250");
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(4_505_600.0), "4.3 MiB");
        assert_eq!(format_bytes(3.5 * 1024.0 * 1024.0 * 1024.0), "3.5 GiB");
    }

    #[test]
    fn large_profiles_are_cut_at_a_line_end_with_a_note() {
        let text =
            "goroutine profile: total 3\n".to_string() + &"#\t0x1\tf+0x1\tf.go:1\n".repeat(100);
        assert_eq!(capped(&text, text.len()), text);
        let cut = capped(&text, 60);
        let (kept, note) = cut.split_once("\n[… truncated").unwrap();
        assert_eq!(kept, "goroutine profile: total 3\n#\t0x1\tf+0x1\tf.go:1\n");
        assert!(
            note.contains("the profile has 1.9 KiB, the first 46 B are kept"),
            "{note}"
        );
        assert!(capped("é".repeat(10).as_str(), 3).starts_with("é\n[…"));
    }
}
