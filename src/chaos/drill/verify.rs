//! `verify:` judged once the drill is over: each line names what it judged, what was expected,
//! what was measured and whether it passed.

use serde::{Deserialize, Serialize};

use super::spec::{Metric, Verify};
use super::steady::SteadySnapshot;

/// One verdict of the drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyLine {
    /// The `verify:` key (`lost`, `reconnect_p99`) or `check NAME`.
    pub what: String,
    /// The condition as written (`lt(5s)`), or the status a check must hold (`ok`).
    pub expected: String,
    /// What was measured, for people (`1.2s`, `0`, `crit`), or why nothing was.
    pub actual: String,
    /// The measured number (milliseconds for durations), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub pass: bool,
}

/// Judges every metric of `verify`. `measured` gives a metric's value (milliseconds for
/// durations) or, when there is none, why (`did not recover before the drain ended`) — which
/// fails the line: a verdict nobody measured is never a pass.
pub fn judge_metrics(
    verify: &Verify,
    measured: impl Fn(Metric) -> Result<f64, String>,
) -> Vec<VerifyLine> {
    verify
        .metrics
        .iter()
        .map(|(metric, condition)| match measured(*metric) {
            Ok(value) => VerifyLine {
                what: metric.key().to_string(),
                expected: condition.source().to_string(),
                actual: metric.quantity().show(value),
                value: Some(value),
                pass: condition.holds(value),
            },
            Err(why) => VerifyLine {
                what: metric.key().to_string(),
                expected: condition.source().to_string(),
                actual: why,
                value: None,
                pass: false,
            },
        })
        .collect()
}

/// Judges `verify.checks` against the steady state measured after the drill.
pub fn judge_checks(verify: &Verify, after: Option<&SteadySnapshot>) -> Vec<VerifyLine> {
    verify
        .checks
        .iter()
        .map(|(name, tolerance)| {
            let status = after.and_then(|s| s.status_of(name));
            VerifyLine {
                what: format!("check {name}"),
                expected: tolerance.as_str().to_string(),
                actual: status.map_or("not probed".into(), |s| s.to_string()),
                value: None,
                pass: status.is_some_and(|s| tolerance.accepts(s)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::drill::metric::{MetricCondition, Quantity};
    use crate::chaos::drill::spec::Tolerance;
    use crate::chaos::drill::steady::CheckOutcome;
    use crate::result::Status;

    fn verify() -> Verify {
        Verify {
            metrics: vec![
                (
                    Metric::Lost,
                    MetricCondition::parse("eq(0)", Quantity::Count),
                ),
                (
                    Metric::Recovery,
                    MetricCondition::parse("lt(30s)", Quantity::Duration),
                ),
                (
                    Metric::ReconnectP99,
                    MetricCondition::parse("lt(5s)", Quantity::Duration),
                ),
            ],
            checks: [("api".to_string(), Tolerance::Warn)].into(),
        }
    }

    #[test]
    fn metrics_pass_fail_and_unmeasured_fail() {
        let lines = judge_metrics(&verify(), |m| match m {
            Metric::Lost => Ok(3.0),
            Metric::Recovery => Err("did not recover before the drain ended".into()),
            _ => Ok(1200.0),
        });
        assert_eq!(lines[0].what, "lost");
        assert_eq!((lines[0].actual.as_str(), lines[0].pass), ("3", false));
        assert!(!lines[1].pass);
        assert!(lines[1].actual.contains("did not recover"));
        assert_eq!((lines[2].actual.as_str(), lines[2].pass), ("1.2s", true));
    }

    #[test]
    fn checks_are_judged_by_tolerance() {
        let after = SteadySnapshot {
            at_ms: 0,
            holds: true,
            checks: vec![CheckOutcome {
                check: "api".into(),
                status: Status::Warn,
                tolerance: None,
                holds: None,
                message: String::new(),
            }],
        };
        let lines = judge_checks(&verify(), Some(&after));
        assert!(lines[0].pass, "{lines:?}");
        let lines = judge_checks(&verify(), None);
        assert!(!lines[0].pass);
        assert_eq!(lines[0].actual, "not probed");
    }
}
