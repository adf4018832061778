//! `kind: prometheus` — a PromQL query against a Prometheus HTTP API: an instant query evaluated
//! now (`/api/v1/query`), or with `range:` a range query over a window (`/api/v1/query_range`)
//! whose points each series reduces to one value (`avg`, `max`, `min`, `last`). One sample per
//! series, keyed by the labels `series:` names (or by the whole label set).
//!
//! `api` makes the call (URL, credentials, TLS, errors in words); `answer` reads the JSON shapes
//! and builds keys and values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::condition::Condition;
use crate::config::duration::{self, DurationSchema};
use crate::config::{CheckCommon, Issues, PathSeg};
use crate::result::Value;

mod answer;
mod api;

pub use answer::Aggregate;

/// Prometheus refuses range queries of more points per series than this.
const MAX_POINTS: u128 = 11_000;

/// Points a range has when its `step` is not given (the resolution a graph of the window would
/// have on a small screen), and the shortest default step.
const DEFAULT_POINTS: u32 = 60;
const MIN_DEFAULT_STEP: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusProbe {
    /// PromQL expression, evaluated at the time of the run. Its result is a vector (one sample
    /// per series) or a scalar; a range vector (`x[5m]`) needs a function such as `rate(…)`.
    pub query: String,
    /// Label(s) whose values name each series: `instance` gives keys like `10.0.0.1:9100`;
    /// `[job, instance]` gives `job=node,instance=10.0.0.1:9100`. Without it a series is named
    /// by its whole label set (`up{instance="…",job="…"}`), a result without labels by "".
    #[serde(default, deserialize_with = "label_names")]
    #[schemars(with = "LabelNamesSchema")]
    pub series: Vec<String>,
    /// Evaluate over a window ending now instead of at one instant, and reduce each series'
    /// points to one value.
    #[serde(default)]
    pub range: Option<RangeSpec>,
    #[serde(default)]
    pub expect: PrometheusExpect,
}

/// A range query: the window ending now, its resolution and how the points are reduced.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// How far back from now (`10m`).
    #[serde(with = "duration")]
    #[schemars(with = "DurationSchema")]
    pub window: Duration,
    /// Time between two evaluations (default: a 60th of the window, at least 1s).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<DurationSchema>")]
    pub step: Option<Duration>,
    /// `avg`, `max`, `min` or `last` of each series' points (NaN points are skipped).
    pub aggregate: Aggregate,
}

impl RangeSpec {
    /// The step given, or a 60th of the window (at least 1s, whole milliseconds).
    pub fn step(&self) -> Duration {
        self.step.unwrap_or_else(|| {
            let ms = (self.window.as_millis() / u128::from(DEFAULT_POINTS)) as u64;
            Duration::from_millis(ms).max(MIN_DEFAULT_STEP)
        })
    }

    fn validate(&self, issues: &mut Issues) {
        let step = self.step();
        // A problem of the default step is one of the window.
        let step_field = if self.step.is_some() {
            "step"
        } else {
            "window"
        };
        if self.window.is_zero() {
            issues.at(&["range", "window"], "range.window must be longer than 0");
            return;
        }
        if step.is_zero() {
            issues.at(&["range", "step"], "range.step must be longer than 0");
            return;
        }
        if step >= self.window {
            issues.at(
                &["range", step_field],
                format!(
                    "range.window ({}) must be longer than range.step ({}{})",
                    duration::format(self.window),
                    duration::format(step),
                    if self.step.is_some() {
                        ""
                    } else {
                        " by default"
                    }
                ),
            );
            return;
        }
        let points = self.window.as_nanos() / step.as_nanos() + 1;
        if points > MAX_POINTS {
            let shortest =
                Duration::from_nanos((self.window.as_nanos() / (MAX_POINTS - 1)) as u64 + 1);
            issues.at(
                &["range", step_field],
                format!(
                    "range: {} at a step of {} is {points} points per series, more than the \
                     {MAX_POINTS} Prometheus answers; use a step of at least {}",
                    duration::format(self.window),
                    duration::format(step),
                    duration::format(round_up_readably(shortest))
                ),
            );
        }
    }
}

/// Expectations; one that fails makes every result `crit` with a message naming it.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusExpect {
    /// Condition on the number of series the query returns: `ge(3)` when three instances must
    /// all report, `eq(0)` for an alert-style query that must find nothing. Without it, a query
    /// that returns nothing is `ok` with "no value measured".
    pub series: Option<Condition>,
}

impl Probe for PrometheusProbe {
    // `http`: an inline `url:` (or an http target) is a Prometheus without credentials of its
    // own (headers and TLS settings of an http target apply).
    const TARGET_KINDS: &'static [&'static str] = &["prometheus", "http"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if self.query.trim().is_empty() {
            issues.at(&["query"], "query is empty");
        }
        validate_label_names(&self.series, issues);
        if let Some(range) = &self.range {
            range.validate(issues);
        }
        issues.condition(&["expect", "series"], self.expect.series.as_ref());
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let target = ctx
            .target()
            .ok_or_else(|| ProbeError::new("a prometheus check needs a target or a url"))?;
        let endpoint = api::Endpoint::of(target)?;
        let samples = match &self.range {
            None => {
                let params = [
                    ("query", self.query.clone()),
                    ("timeout", prometheus_duration(ctx.timeout)),
                ];
                let data = endpoint.call("/api/v1/query", &params, ctx.timeout).await?;
                answer::instant_samples(data, &self.series)
            }
            Some(range) => {
                let data = endpoint
                    .call(
                        "/api/v1/query_range",
                        &range_params(self, range, ctx),
                        ctx.timeout,
                    )
                    .await?;
                answer::range_samples(data, &self.series, range.aggregate)
            }
        }
        .map_err(ProbeError)?;
        let mut m = Measurement {
            samples,
            ..Default::default()
        };
        if let Some(cond) = &self.expect.series {
            let count = m.samples.len();
            if !cond.matches(&Value::Num(count as f64)) {
                m.failures
                    .push(format!("expect.series: {count} series, expected {cond}"));
            }
        }
        Ok(m)
    }
}

/// Parameters of a range query over the window ending now. `end` is a whole second, so the
/// times evaluated do not depend on the scheduler's sub-second jitter.
fn range_params(
    probe: &PrometheusProbe,
    range: &RangeSpec,
    ctx: &ProbeContext<'_>,
) -> [(&'static str, String); 5] {
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as f64;
    let start = end - range.window.as_secs_f64();
    [
        ("query", probe.query.clone()),
        ("start", seconds(start)),
        ("end", seconds(end)),
        ("step", seconds(range.step().as_secs_f64())),
        ("timeout", prometheus_duration(ctx.timeout)),
    ]
}

/// Seconds as the API takes them (`1700000000`, `1.5`): never in exponent notation.
fn seconds(s: f64) -> String {
    let ms = (s * 1000.0).round() / 1000.0;
    format!("{ms}")
}

/// A duration in Prometheus' syntax, in whole milliseconds (`5000ms`): Prometheus stops the
/// query there instead of working on after patrol has given up.
fn prometheus_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// `d` rounded up to whole seconds (whole milliseconds below a second), as a person would
/// write a step.
fn round_up_readably(d: Duration) -> Duration {
    if d >= Duration::from_secs(1) {
        Duration::from_secs(d.as_nanos().div_ceil(1_000_000_000) as u64)
    } else {
        Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
    }
}

/// Label names as PromQL writes them: `[a-zA-Z_][a-zA-Z0-9_]*`, each once.
fn validate_label_names(names: &[String], issues: &mut Issues) {
    for (i, name) in names.iter().enumerate() {
        let path = vec![PathSeg::key("series"), PathSeg::Index(i)];
        let problem = if !is_label_name(name) {
            Some(format!(
                "series: {name:?} is not a label name (letters, digits and _, not starting with a \
                 digit)"
            ))
        } else if names[..i].contains(name) {
            Some(format!("series: label {name} is named twice"))
        } else {
            None
        };
        if let Some(message) = problem {
            issues.items.push((path, message));
        }
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `series: instance` or `series: [job, instance]`.
fn label_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    crate::config::OneOrMany::strings(d, "series must be a label name or a list of label names")
}

/// JSON Schema of `series`: a label name or a list of them.
struct LabelNamesSchema;

impl JsonSchema for LabelNamesSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LabelNames".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A label name, or a list of label names",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(window: u64, step: Option<u64>) -> RangeSpec {
        RangeSpec {
            window: Duration::from_secs(window),
            step: step.map(Duration::from_secs),
            aggregate: Aggregate::Avg,
        }
    }

    fn range_problems(r: &RangeSpec) -> Vec<(String, String)> {
        let mut issues = Issues::default();
        r.validate(&mut issues);
        issues
            .items
            .into_iter()
            .map(|(p, m)| (crate::config::path_text(&p), m))
            .collect()
    }

    #[test]
    fn default_steps_give_sixty_points_and_at_least_a_second() {
        assert_eq!(range(600, None).step(), Duration::from_secs(10));
        assert_eq!(range(3600, None).step(), Duration::from_secs(60));
        assert_eq!(range(90, None).step(), Duration::from_millis(1500));
        assert_eq!(range(30, None).step(), Duration::from_secs(1));
        assert_eq!(range(600, Some(30)).step(), Duration::from_secs(30));
    }

    #[test]
    fn windows_must_be_longer_than_steps() {
        assert!(range_problems(&range(600, Some(30))).is_empty());
        assert_eq!(
            range_problems(&range(30, Some(30))),
            vec![(
                "range.step".into(),
                "range.window (30s) must be longer than range.step (30s)".into()
            )]
        );
        assert_eq!(
            range_problems(&range(1, None)),
            vec![(
                "range.window".into(),
                "range.window (1s) must be longer than range.step (1s by default)".into()
            )]
        );
        assert_eq!(
            range_problems(&range(0, None))[0].1,
            "range.window must be longer than 0"
        );
        assert_eq!(
            range_problems(&range(60, Some(0)))[0].1,
            "range.step must be longer than 0"
        );
    }

    #[test]
    fn ranges_prometheus_would_refuse_are_refused_at_load() {
        let p = range_problems(&range(86_400, Some(1)));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "range.step");
        assert_eq!(
            p[0].1,
            "range: 1day at a step of 1s is 86401 points per series, more than the 11000 \
             Prometheus answers; use a step of at least 8s"
        );
        // 11000 points exactly is fine.
        assert!(range_problems(&range(10_999, Some(1))).is_empty());
        assert_eq!(range_problems(&range(11_000, Some(1))).len(), 1);
    }

    #[test]
    fn label_names_are_checked_one_by_one() {
        let names: Vec<String> = ["instance", "9lives", "", "job", "instance"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut issues = Issues::default();
        validate_label_names(&names, &mut issues);
        let found: Vec<(String, String)> = issues
            .items
            .into_iter()
            .map(|(p, m)| (crate::config::path_text(&p), m))
            .collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].0, "series[1]");
        assert!(found[0].1.contains("\"9lives\" is not a label name"));
        assert_eq!(found[1].0, "series[2]");
        assert_eq!(
            found[2],
            (
                "series[4]".into(),
                "series: label instance is named twice".into()
            )
        );
        assert!(is_label_name("__name__") && is_label_name("le") && !is_label_name("a-b"));
    }

    #[test]
    fn times_and_durations_are_written_as_prometheus_reads_them() {
        assert_eq!(seconds(1_700_000_000.0), "1700000000");
        assert_eq!(seconds(1.5), "1.5");
        assert_eq!(seconds(0.0001), "0");
        assert_eq!(prometheus_duration(Duration::from_secs(5)), "5000ms");
        assert_eq!(prometheus_duration(Duration::ZERO), "1ms");
    }
}
