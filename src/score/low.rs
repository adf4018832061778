//! `low_score: {below: 70, times: 3}`: a service scoring below `below` on `times` consecutive
//! evaluations becomes one `score_low` event — once per episode, not on every evaluation after.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ServiceScore;
use crate::config::RuleSet;

/// A service that stayed low for `times` evaluations in a row (the payload of a `score_low` event).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LowScoreEvent {
    pub service: String,
    /// The score of the evaluation that completed the streak.
    pub score: f64,
    pub below: f64,
    pub times: u32,
    pub at: DateTime<Utc>,
    /// The terms of that evaluation, so a consumer sees which checks pulled the score down.
    pub details: serde_json::Value,
}

/// One service's current run of low evaluations.
#[derive(Clone, Copy, Debug, Default)]
struct Streak {
    low: u32,
    /// The event of this episode was emitted; none again until the score recovers.
    fired: bool,
}

/// Consecutive-low streaks per service, fed one evaluation at a time.
#[derive(Debug, Default)]
pub struct LowScoreWatch {
    streaks: HashMap<String, Streak>,
}

impl LowScoreWatch {
    pub fn new() -> LowScoreWatch {
        LowScoreWatch::default()
    }

    /// Counts one evaluation of every service in `scores` that has a `low_score` rule, and returns
    /// the events of streaks that reached `times` just now. A score without data neither extends
    /// nor breaks a streak; a score at or above `below` ends it. Streaks of services whose rule
    /// went away (reload) are forgotten.
    pub fn observe(&mut self, rules: &RuleSet, scores: &[ServiceScore]) -> Vec<LowScoreEvent> {
        self.streaks.retain(|name, _| {
            rules
                .services
                .get(name)
                .is_some_and(|s| s.low_score.is_some())
        });
        let mut events = Vec::new();
        for s in scores.iter().filter(|s| s.has_data()) {
            let Some(rule) = rules
                .services
                .get(&s.service)
                .and_then(|c| c.low_score.as_ref())
            else {
                continue;
            };
            let streak = self.streaks.entry(s.service.clone()).or_default();
            if s.score >= rule.below {
                *streak = Streak::default();
                continue;
            }
            streak.low = streak.low.saturating_add(1);
            if streak.low >= rule.times && !streak.fired {
                streak.fired = true;
                events.push(LowScoreEvent {
                    service: s.service.clone(),
                    score: s.score,
                    below: rule.below,
                    times: rule.times,
                    at: s.at,
                    details: s.details.clone(),
                });
            }
        }
        events
    }

    /// How many low evaluations in a row `service` has now (0 when it is not low).
    pub fn streak(&self, service: &str) -> u32 {
        self.streaks.get(service).map_or(0, |s| s.low)
    }
}
