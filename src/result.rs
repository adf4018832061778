//! What a run produces: one [`CheckResult`] per (check, series), and the [`RunRecord`] that groups them.
//! These are the shapes written to the store and printed as JSON Lines, so field names are a contract.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Outcome of one check for one series, ordered by gravity (`Ok` < `Warn` < `Crit` < `Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skipped,
    Ok,
    Warn,
    Crit,
    /// The value could not be measured at all (refused, timeout, auth, bad query).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skipped => "skipped",
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Crit => "crit",
            Status::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "skipped" => Status::Skipped,
            "ok" => Status::Ok,
            "warn" => Status::Warn,
            "crit" => Status::Crit,
            "error" => Status::Error,
            _ => return None,
        })
    }

    /// Whether an enforced check with this status fails a run.
    pub fn fails_run(self) -> bool {
        matches!(self, Status::Crit | Status::Error)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A measured value: most probes measure numbers, some (Redis `master_link_status`, JSON fields) text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Num(f64),
    Text(String),
}

impl Value {
    /// The numeric reading of this value, also for text that spells a number (`"42"`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Text(s) => s.trim().parse().ok(),
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Value::Num(n) => format_number(*n),
            Value::Text(s) => s.clone(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_text())
    }
}

/// Formats a number the way people write it: integers without a fraction, others with up to 3 decimals.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The baseline band a sample was judged against.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// The band's centre: the EWMA mean, the model's prediction, the peers' median.
    pub mean: f64,
    /// The spread the band is measured in (for fitted models: the interval's half-width over
    /// the normal quantile of its level).
    pub stddev: f64,
    pub lower: f64,
    pub upper: f64,
    /// Samples the baseline had learned from when this sample was judged.
    pub samples: u64,
    /// Which method drew the band: `ewma`, `seasonal`, `ets`, `peer`, or the EWMA fallback
    /// with the reason (`ewma (seasonal learning: 6h of 2d)`).
    #[serde(default)]
    pub method: String,
    /// How unusual the sample is, 0 (typical) to 1 (far outside), comparable across methods:
    /// z²/(z²+9) of its distance z from the centre in standard deviations (0.5 at 3σ).
    #[serde(default)]
    pub anomaly_score: f64,
}

/// Evidence a probe kept with a result that is not ok (a goroutine profile), shown in reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// What it is (`goroutine profile`).
    pub name: String,
    /// `text/plain` for profiles and command output.
    pub content_type: String,
    pub text: String,
}

/// One result line: a check's verdict for one series in one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub kind: String,
    pub target: String,
    /// Key of the series within the check ("" when the check measures a single value).
    pub series: String,
    pub status: Status,
    pub value: Option<Value>,
    pub unit: String,
    pub duration_ms: f64,
    pub message: String,
    pub baseline: Option<Band>,
    /// A shadow check records what it would have said and never fails a run.
    pub shadow: bool,
    pub service: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub revision: String,
    pub started_at: DateTime<Utc>,
    pub run_id: String,
    /// Evidence the probe kept because the result is not ok (a goroutine profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
}

impl CheckResult {
    /// A verdict of `check` for `series` with every other field neutral: kind, target, unit,
    /// message, revision and run id empty, a duration of 0, no baseline band, not shadow, no
    /// service, no labels, started now. Callers that care about a field set it with struct
    /// update syntax (`CheckResult { unit: "ms".into(), ..CheckResult::new(…) }`), so a fixture
    /// spells out only what it relies on.
    pub fn new(check: &str, series: &str, status: Status, value: Option<Value>) -> CheckResult {
        CheckResult {
            check: check.into(),
            kind: String::new(),
            target: String::new(),
            series: series.into(),
            status,
            value,
            unit: String::new(),
            duration_ms: 0.0,
            message: String::new(),
            baseline: None,
            shadow: false,
            service: None,
            labels: BTreeMap::new(),
            revision: String::new(),
            started_at: Utc::now(),
            run_id: String::new(),
            attachment: None,
        }
    }

    /// Whether this result makes `patrol run` exit 1.
    pub fn fails_run(&self) -> bool {
        !self.shadow && self.status.fails_run()
    }
}

/// Mean of the finite numeric values among `results` (one check's series in one run), the value
/// a health score and a check's state use.
pub fn mean_value<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Option<f64> {
    let numbers: Vec<f64> = results
        .into_iter()
        .filter_map(|r| r.value.as_ref().and_then(Value::as_f64))
        .filter(|x| x.is_finite())
        .collect();
    (!numbers.is_empty()).then(|| numbers.iter().sum::<f64>() / numbers.len() as f64)
}

/// One execution of a set of checks (a `patrol run`, a suite run, a scheduled tick).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub revision: String,
    /// What started the run: `cli`, `demo`, a suite name, …
    pub trigger: String,
    pub counts: StatusCounts,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub ok: u64,
    pub warn: u64,
    pub crit: u64,
    pub error: u64,
    pub skipped: u64,
}

impl StatusCounts {
    pub fn tally<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Self {
        let mut c = StatusCounts::default();
        for r in results {
            match r.status {
                Status::Ok => c.ok += 1,
                Status::Warn => c.warn += 1,
                Status::Crit => c.crit += 1,
                Status::Error => c.error += 1,
                Status::Skipped => c.skipped += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.ok + self.warn + self.crit + self.error + self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_order_is_gravity() {
        assert!(Status::Error > Status::Crit);
        assert!(Status::Crit > Status::Warn);
        assert!(Status::Warn > Status::Ok);
        assert_eq!(Status::parse("crit"), Some(Status::Crit));
    }

    #[test]
    fn numbers_print_like_people_write_them() {
        assert_eq!(format_number(200.0), "200");
        assert_eq!(format_number(12.3456), "12.346");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(Value::Text("7".into()).as_f64(), Some(7.0));
    }
}
