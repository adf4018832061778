//! Folding results into [`CheckState`]s: what the scores need to know about each check, and which
//! services a set of results affects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use super::CheckState;
use crate::config::{RuleSet, ScoreModel};
use crate::result::{CheckResult, Status};

/// `previous` with `results` folded in, run by run in time order: per check and run, the worst
/// status over its series, the mean of its numeric values and the newest time. `failing_since` is
/// set at the first failing run, kept while the check keeps failing and cleared when it recovers.
/// Skipped results say nothing about health and are ignored; a run older than the state it would
/// replace is ignored too, so folding the same results twice (or out of order) changes nothing.
pub fn check_states_from(
    results: &[CheckResult],
    previous: &HashMap<String, CheckState>,
) -> HashMap<String, CheckState> {
    let mut states = previous.clone();
    for (check, runs) in runs_by_check(results) {
        for run in runs {
            let Some(fresh) = summarize(&run) else {
                continue;
            };
            let next = match states.get(check) {
                Some(prev) if prev.at > fresh.at => continue,
                Some(prev) => carry_failing_since(prev, fresh),
                None => fresh,
            };
            states.insert(check.to_string(), next);
        }
    }
    states
}

/// Per check, the non-skipped results of each run, runs in time order.
fn runs_by_check(results: &[CheckResult]) -> BTreeMap<&str, Vec<Vec<&CheckResult>>> {
    let mut by_run: BTreeMap<(&str, &str), Vec<&CheckResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.status != Status::Skipped) {
        by_run.entry((&r.check, &r.run_id)).or_default().push(r);
    }
    let mut by_check: BTreeMap<&str, Vec<Vec<&CheckResult>>> = BTreeMap::new();
    for ((check, _), run) in by_run {
        by_check.entry(check).or_default().push(run);
    }
    for runs in by_check.values_mut() {
        runs.sort_by_key(|run| run.iter().map(|r| r.started_at).max());
    }
    by_check
}

/// The state one run's results of one check describe, `failing_since` at that run.
fn summarize(results: &[&CheckResult]) -> Option<CheckState> {
    let status = results.iter().map(|r| r.status).max()?;
    let at: DateTime<Utc> = results.iter().map(|r| r.started_at).max()?;
    let value = crate::result::mean_value(results.iter().copied());
    Some(CheckState {
        status,
        failing_since: status.fails_run().then_some(at),
        value,
        at,
    })
}

/// A check still failing keeps the time it started failing.
fn carry_failing_since(prev: &CheckState, mut fresh: CheckState) -> CheckState {
    if fresh.status.fails_run() && prev.status.fails_run() {
        fresh.failing_since = prev
            .failing_since
            .or(Some(prev.at))
            .min(fresh.failing_since);
    }
    fresh
}

/// Services whose score `results` can change: the services of the checks that ran, and every
/// weighted service with a component fed by one of them.
pub fn touched_services(rules: &RuleSet, results: &[CheckResult]) -> BTreeSet<String> {
    let ran: BTreeSet<&str> = results.iter().map(|r| r.check.as_str()).collect();
    let mut touched: BTreeSet<String> = rules
        .checks
        .iter()
        .filter(|c| ran.contains(c.name()))
        .filter_map(|c| c.common.service.clone())
        .collect();
    for (name, service) in &rules.services {
        let feeds = service.model == ScoreModel::Weighted
            && service
                .components
                .iter()
                .any(|c| ran.contains(c.check.as_str()));
        if feeds {
            touched.insert(name.clone());
        }
    }
    touched
}
