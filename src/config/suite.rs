//! `suites:` — named sets of checks run together as one run (one run id), e.g. the nightly
//! inspection: `nightly: {schedule: "0 2 * * *", select: {tags: {tier: core}}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::Check;

/// Which checks a suite runs: those matching every criterion given (all checks when empty).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Selection {
    /// Labels the check must carry (all of them).
    pub tags: BTreeMap<String, String>,
    /// Services the check must belong to (any of them).
    pub services: Vec<String>,
    /// Check names (any of them).
    pub checks: Vec<String>,
}

impl Selection {
    pub fn matches(&self, check: &Check) -> bool {
        let c = &check.common;
        self.tags.iter().all(|(k, v)| c.labels.get(k) == Some(v))
            && (self.services.is_empty()
                || c.service
                    .as_ref()
                    .is_some_and(|s| self.services.contains(s)))
            && (self.checks.is_empty() || self.checks.iter().any(|n| n == &c.name))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// 5-field cron expression.
    pub schedule: String,
    /// IANA time zone of the schedule (default: the daemon's `--timezone`).
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub select: Selection,
    /// A run missed while the daemon was down within this window runs once at start (default 1h).
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<super::duration::DurationSchema>")]
    pub catch_up: Option<Duration>,
    #[serde(default)]
    pub description: Option<String>,
    /// Receivers the run's Markdown summary is sent to when the suite ends (daemon runs).
    #[serde(default)]
    pub notify: Vec<String>,
}
