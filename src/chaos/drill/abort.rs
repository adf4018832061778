//! `abort_when:` watched while the faults run: consecutive failures of a probed check, a service's
//! health score, events lost so far, wall time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::AbortRule;
use super::steady::SteadySnapshot;
use crate::config::RuleSet;
use crate::result::{CheckResult, format_number};
use crate::score::{CheckState, check_states_from, evaluate_service};

/// A service's health score at one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScorePoint {
    /// Milliseconds since the drill started.
    pub at_ms: u64,
    pub service: String,
    pub score: f64,
}

/// Keeps what the abort rules need between probes.
pub struct AbortWatch {
    rules: Vec<AbortRule>,
    drill_rules: Arc<RuleSet>,
    /// Consecutive failing probes per check.
    streaks: HashMap<String, u32>,
    states: HashMap<String, CheckState>,
    pub scores: Vec<ScorePoint>,
}

impl AbortWatch {
    pub fn new(rules: &[AbortRule], drill_rules: Arc<RuleSet>) -> AbortWatch {
        AbortWatch {
            rules: rules.to_vec(),
            drill_rules,
            streaks: HashMap::new(),
            states: HashMap::new(),
            scores: Vec::new(),
        }
    }

    /// Folds one probe in; the reason to abort, if a rule is met.
    pub fn after_probe(
        &mut self,
        snapshot: &SteadySnapshot,
        results: &[CheckResult],
        now: DateTime<Utc>,
    ) -> Option<String> {
        for outcome in &snapshot.checks {
            let streak = self.streaks.entry(outcome.check.clone()).or_default();
            // A steady-state check fails when it leaves its tolerance; another when crit/error.
            let failing = outcome
                .holds
                .map_or(outcome.status.fails_run(), |holds| !holds);
            *streak = if failing { *streak + 1 } else { 0 };
        }
        self.states = check_states_from(results, &self.states);
        let mut reason = None;
        for rule in &self.rules {
            let hit = match rule {
                AbortRule::CheckFailures { check, failures } => {
                    let streak = self.streaks.get(check).copied().unwrap_or(0);
                    (streak >= *failures).then(|| {
                        let status = snapshot
                            .checks
                            .iter()
                            .find(|c| &c.check == check)
                            .map(|c| c.status.to_string())
                            .unwrap_or_default();
                        format!(
                            "check {check} failed {streak} probe(s) in a row (now {status}; abort_when: {failures})"
                        )
                    })
                }
                AbortRule::Score { service, below } => {
                    let score = evaluate_service(&self.drill_rules, service, &self.states, now);
                    self.scores.push(ScorePoint {
                        at_ms: snapshot.at_ms,
                        service: service.clone(),
                        score: score.score,
                    });
                    (score.has_data() && score.score < *below).then(|| {
                        format!(
                            "health score of {service} is {} (abort_when: below {})",
                            format_number(score.score),
                            format_number(*below)
                        )
                    })
                }
                AbortRule::Lost { .. } | AbortRule::WallTime { .. } => None,
            };
            reason = reason.or(hit);
        }
        reason
    }

    /// The rules that need no probe: wall time since the drill started and events lost so far.
    pub fn on_tick(&self, elapsed: Duration, lost_so_far: Option<u64>) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            AbortRule::WallTime { above } if elapsed > *above => Some(format!(
                "wall time {} is above {}",
                crate::config::duration::format(Duration::from_secs(elapsed.as_secs())),
                crate::config::duration::format(*above)
            )),
            AbortRule::Lost { above } => match lost_so_far {
                Some(lost) if lost > *above => Some(format!(
                    "{lost} event(s) lost so far (abort_when: above {above})"
                )),
                _ => None,
            },
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::drill::steady::CheckOutcome;
    use crate::result::Status;

    fn snapshot(status: Status) -> SteadySnapshot {
        SteadySnapshot {
            at_ms: 0,
            holds: !status.fails_run(),
            checks: vec![CheckOutcome {
                check: "api".into(),
                status,
                tolerance: None,
                holds: None,
                message: String::new(),
            }],
        }
    }

    fn rules() -> Arc<RuleSet> {
        Arc::new(crate::config::load(&[]).unwrap())
    }

    #[test]
    fn consecutive_failures_abort_and_a_success_resets_the_streak() {
        let rule = AbortRule::CheckFailures {
            check: "api".into(),
            failures: 2,
        };
        let mut w = AbortWatch::new(&[rule], rules());
        let now = Utc::now();
        assert_eq!(w.after_probe(&snapshot(Status::Crit), &[], now), None);
        assert_eq!(w.after_probe(&snapshot(Status::Ok), &[], now), None);
        assert_eq!(w.after_probe(&snapshot(Status::Error), &[], now), None);
        let reason = w.after_probe(&snapshot(Status::Crit), &[], now).unwrap();
        assert!(reason.contains("failed 2 probe(s) in a row"), "{reason}");
    }

    #[test]
    fn wall_time_and_loss() {
        let w = AbortWatch::new(
            &[
                AbortRule::WallTime {
                    above: Duration::from_secs(60),
                },
                AbortRule::Lost { above: 5 },
            ],
            rules(),
        );
        assert_eq!(w.on_tick(Duration::from_secs(59), Some(5)), None);
        assert!(
            w.on_tick(Duration::from_secs(61), None)
                .unwrap()
                .contains("wall time")
        );
        assert!(
            w.on_tick(Duration::from_secs(1), Some(6))
                .unwrap()
                .contains("6 event(s) lost")
        );
    }
}
