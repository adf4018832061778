//! `abort_when:` and `verify:` of a drill file.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::load::{Reader, unknown_check};
use super::metric::MetricCondition;
use super::spec::{AbortRule, Metric, SteadyCheck, Tolerance, Verify, Workload};
use crate::config::{Node, RuleSet};

/// Whether `name` is a check the drill can probe: a rule check or an inline steady-state check.
fn known_check(name: &str, rules: &RuleSet, steady: &[SteadyCheck]) -> bool {
    rules.check(name).is_some() || steady.iter().any(|s| s.check.name() == name)
}

pub(super) fn read_abort_when(
    r: &mut Reader<'_>,
    root: &Node,
    rules: &RuleSet,
    workload: &Workload,
    steady: &[SteadyCheck],
) -> Vec<AbortRule> {
    let mut out = Vec::new();
    for item in r.list(root, "abort_when") {
        if let Some(rule) = abort_rule(r, item, rules, workload, steady) {
            out.push(rule);
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortRaw {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    failures: Option<u32>,
    #[serde(default)]
    score: Option<ScoreRaw>,
    #[serde(default)]
    lost: Option<LostRaw>,
    #[serde(default)]
    wall_time: Option<WallTimeRaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRaw {
    service: String,
    below: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LostRaw {
    above: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WallTimeRaw {
    #[serde(with = "crate::config::duration")]
    above: Duration,
}

const ABORT_KINDS: &[&str] = &["check", "score", "lost", "wall_time"];

fn abort_rule(
    r: &mut Reader<'_>,
    item: &Node,
    rules: &RuleSet,
    workload: &Workload,
    steady: &[SteadyCheck],
) -> Option<AbortRule> {
    let raw: AbortRaw = r.value(item)?;
    let given: Vec<&str> = ABORT_KINDS
        .iter()
        .copied()
        .filter(|k| item.get(k).is_some())
        .collect();
    if given.len() != 1 {
        r.at(
            item.loc,
            format!(
                "an abort_when entry has exactly one of {}; found {}",
                ABORT_KINDS.join(", "),
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given.join(", ")
                }
            ),
        );
        return None;
    }
    let loc_of = |key: &str| item.get(key).map_or(item.loc, |n| n.loc);
    if raw.failures.is_some() && raw.check.is_none() {
        r.at(
            loc_of("failures"),
            "`failures` counts the probes of a `check`",
        );
        return None;
    }
    match (raw.check, raw.score, raw.lost, raw.wall_time) {
        (Some(check), ..) => {
            if r.resolve && !known_check(&check, rules, steady) {
                r.at(loc_of("check"), unknown_check(&check, rules));
                return None;
            }
            let failures = raw.failures.unwrap_or(1);
            if failures == 0 {
                r.at(loc_of("failures"), "`failures` must be at least 1");
                return None;
            }
            Some(AbortRule::CheckFailures { check, failures })
        }
        (_, Some(score), ..) => {
            let node = item.get("score").unwrap_or(item);
            if !(0.0..=100.0).contains(&score.below) {
                let loc = node.get("below").map_or(node.loc, |n| n.loc);
                r.at(
                    loc,
                    format!(
                        "`below` is a health score from 0 to 100, got {}",
                        score.below
                    ),
                );
                return None;
            }
            let services = crate::score::service_names(rules);
            if r.resolve && !services.contains(&score.service) {
                let loc = node.get("service").map_or(node.loc, |n| n.loc);
                let known: Vec<&str> = services.iter().map(String::as_str).collect();
                r.at(
                    loc,
                    format!(
                        "unknown service `{}`; services of the rules: {}",
                        score.service,
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                return None;
            }
            Some(AbortRule::Score {
                service: score.service,
                below: score.below,
            })
        }
        (_, _, Some(lost), _) => {
            if workload.sse.is_none() {
                r.at(loc_of("lost"), "abort on `lost` needs an `sse` workload");
                return None;
            }
            Some(AbortRule::Lost { above: lost.above })
        }
        (_, _, _, Some(wall)) => {
            if wall.above.is_zero() {
                r.at(
                    loc_of("wall_time"),
                    "`wall_time.above` must be longer than zero",
                );
                return None;
            }
            Some(AbortRule::WallTime { above: wall.above })
        }
        _ => None,
    }
}

pub(super) fn read_verify(
    r: &mut Reader<'_>,
    root: &Node,
    rules: &RuleSet,
    workload: &Workload,
    steady: &[SteadyCheck],
    has_faults: bool,
) -> Verify {
    let mut verify = Verify::default();
    let Some(node) = root.get("verify").filter(|n| !n.is_null()) else {
        return verify;
    };
    if node.as_map().is_none() {
        r.at(
            node.loc,
            format!("`verify` must be a mapping, found {}", node.type_name()),
        );
        return verify;
    }
    let mut allowed: Vec<&str> = Metric::ALL.iter().map(|m| m.key()).collect();
    allowed.push("checks");
    r.unknown_keys(node, &allowed, "verify");
    // In the order written: the report lists its verdicts the way the drill asked for them.
    let entries = node.as_map().unwrap_or(&[]);
    for (key, value) in entries {
        let key = key.scalar_text().unwrap_or_default();
        let Some(metric) = Metric::ALL.into_iter().find(|m| m.key() == key) else {
            continue;
        };
        let Some(text) = value.scalar_text() else {
            r.at(
                value.loc,
                format!(
                    "`{}` takes a condition such as {}",
                    metric.key(),
                    example(metric)
                ),
            );
            continue;
        };
        let condition = MetricCondition::parse(&text, metric.quantity());
        if let Some(e) = condition.error() {
            r.at(value.loc, e.to_string());
            continue;
        }
        if let Some(missing) = unmet_requirement(metric, workload, steady, has_faults) {
            let key = node.entry(metric.key()).map_or(value.loc, |(k, _)| k.loc);
            r.at(key, format!("`verify.{}` {missing}", metric.key()));
            continue;
        }
        verify.metrics.push((metric, condition));
    }
    if let Some(checks) = node.get("checks") {
        verify.checks = verify_checks(r, checks, rules, steady);
    }
    verify
}

fn example(metric: Metric) -> &'static str {
    match metric.quantity() {
        super::metric::Quantity::Count => "eq(0)",
        super::metric::Quantity::Ratio => "ge(0.99)",
        super::metric::Quantity::Duration => "lt(5s)",
    }
}

/// What a metric needs that the drill lacks, as the rest of a message.
fn unmet_requirement(
    metric: Metric,
    workload: &Workload,
    steady: &[SteadyCheck],
    has_faults: bool,
) -> Option<&'static str> {
    match metric {
        Metric::Lost
        | Metric::Duplicates
        | Metric::OutOfOrder
        | Metric::ReconnectP99
        | Metric::MaxGap
            if workload.sse.is_none() =>
        {
            Some("needs an `sse` workload")
        }
        Metric::SuccessRate if workload.http.is_none() => Some("needs an `http` workload"),
        Metric::LatencyP99 if workload.http.is_none() && workload.sse.is_none() => {
            Some("needs an `http` or `sse` workload")
        }
        Metric::Recovery if !has_faults || steady.is_empty() => Some(
            "is measured after the last fault until the steady state holds: it needs `faults` and a `steady_state`",
        ),
        _ => None,
    }
}

fn verify_checks(
    r: &mut Reader<'_>,
    node: &Node,
    rules: &RuleSet,
    steady: &[SteadyCheck],
) -> BTreeMap<String, Tolerance> {
    let Some(entries) = r.value::<BTreeMap<String, Tolerance>>(node) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (name, tolerance) in entries {
        if r.resolve && !known_check(&name, rules, steady) {
            let loc = node.entry(&name).map_or(node.loc, |(k, _)| k.loc);
            r.at(loc, unknown_check(&name, rules));
            continue;
        }
        out.insert(name, tolerance);
    }
    out
}
