//! The shadow report (issue 9 §4): for every check in `mode: shadow`, what it would have done had
//! it been enforced over a window — evaluations, would-be alerts by status, flaps, how many alerts
//! would have fired under its `alert:` policy, and the first and last would-be alerts. The
//! evidence a team reads before switching a rule to `enforce`. Served by `patrol shadow report`
//! and `GET /api/v1/shadow`.
//!
//! [`ShadowTally`] folds stored shadow results one at a time (each series in time order), so the
//! store can stream a long window; [`ShadowReport`] is the outcome, rendered as a table, JSON or
//! Markdown.
//!
//! Definitions (per series; a check sums its series):
//! - an *evaluation* is a judged result: ok, warn, crit or error. Skipped results are counted
//!   apart and otherwise ignored, as the alert lifecycle ignores them;
//! - *would alert*: warn, crit or error — a bad result in the lifecycle's sense;
//! - a *flap* is a change between ok and not ok from one evaluation to the next;
//! - *would fire*: alerts that would have started firing, honouring the check's
//!   `alert.failure_threshold` (bad results in a row before firing) and `success_threshold` (good
//!   results in a row before resolving), as [`crate::alert::lifecycle`] steps them. Without the
//!   rules both thresholds are 1, the policy's defaults.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::alert::policy::AlertPolicy;
use crate::alert::truncate;
use crate::config::{RuleSet, duration};
use crate::result::Status;
use crate::store::shadow::ShadowSample;
use crate::store::{Store, StoreError};

/// The window when none is asked for: the 48 h gray release the issue describes.
pub const DEFAULT_SINCE: &str = "48h";
/// Longest message quoted for a would-be alert in the table and Markdown, in characters.
const MESSAGE_CHARS: usize = 100;

/// The start of a window: a duration back from `now` (`48h`, `7d`) or an RFC 3339 time, not
/// later than `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let since = match DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.with_timezone(&Utc),
        Err(_) => {
            let ago = duration::parse(text).map_err(|_| {
                format!(
                    "since {text:?} is neither a duration back from now (48h, 7d) nor an \
                     RFC 3339 time (2026-05-01T00:00:00Z)"
                )
            })?;
            chrono::Duration::from_std(ago)
                .ok()
                .and_then(|ago| now.checked_sub_signed(ago))
                .ok_or_else(|| format!("since {text:?} is too far back"))?
        }
    };
    if since > now {
        return Err(format!("since {text:?} is in the future"));
    }
    Ok(since)
}

/// What the rules say about a check with shadow results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    /// Still `mode: shadow`.
    Shadow,
    /// Switched to `enforce` since (its shadow results are from before).
    Enforce,
    /// No check of that name in the rules any more.
    Unknown,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Shadow => "shadow",
            RuleMode::Enforce => "enforce",
            RuleMode::Unknown => "unknown",
        }
    }
}

/// The counts of a series or a check over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Judged results: ok + warn + crit + error.
    pub evaluations: u64,
    pub ok: u64,
    pub warn: u64,
    pub crit: u64,
    pub error: u64,
    /// Skipped results (not evaluations).
    pub skipped: u64,
    /// warn + crit + error: results that would have counted as bad.
    pub would_alert: u64,
    /// Alerts that would have started firing under the check's thresholds.
    pub would_fire: u64,
    /// Changes between ok and not ok.
    pub flaps: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.evaluations += o.evaluations;
        self.ok += o.ok;
        self.warn += o.warn;
        self.crit += o.crit;
        self.error += o.error;
        self.skipped += o.skipped;
        self.would_alert += o.would_alert;
        self.would_fire += o.would_fire;
        self.flaps += o.flaps;
    }
}

/// One result that would have alerted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WouldAlert {
    pub at: DateTime<Utc>,
    pub series: String,
    pub status: Status,
    pub message: String,
}

/// One series of a shadow check over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub series: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Status of the latest evaluation.
    pub current_status: Option<Status>,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// Whether its alert would be firing at the end of the window.
    pub would_be_firing: bool,
    pub first_would_alert: Option<WouldAlert>,
    pub last_would_alert: Option<WouldAlert>,
}

/// One shadow check over the window: its series summed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckSummary {
    pub check: String,
    /// What the rules say now; None when the report was made without rules.
    pub mode: Option<RuleMode>,
    /// The thresholds `would_fire` honours (the check's `alert:` policy, else 1 and 1).
    pub failure_threshold: u32,
    pub success_threshold: u32,
    #[serde(flatten)]
    pub counts: Counts,
    /// The worst of the series' latest statuses.
    pub current_status: Option<Status>,
    pub last_evaluated_at: Option<DateTime<Utc>>,
    /// Whether any series' alert would be firing at the end of the window.
    pub would_be_firing: bool,
    pub first_would_alert: Option<WouldAlert>,
    pub last_would_alert: Option<WouldAlert>,
    pub series: Vec<SeriesSummary>,
}

/// Every shadow check over `[since, until]`, by name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub checks: Vec<CheckSummary>,
}

/// When bad results would turn into a firing alert and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub failure: u32,
    pub success: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::of(&AlertPolicy::default())
    }
}

impl Thresholds {
    pub fn of(policy: &AlertPolicy) -> Thresholds {
        Thresholds {
            failure: policy.failure_threshold.get(),
            success: policy.success_threshold.get(),
        }
    }
}

/// A check the rules define.
#[derive(Clone, Copy, Debug)]
struct Known {
    mode: RuleMode,
    thresholds: Thresholds,
}

/// One series folded so far.
#[derive(Debug)]
struct SeriesTally {
    thresholds: Thresholds,
    counts: Counts,
    /// Whether the previous evaluation was bad (None before the first).
    was_bad: Option<bool>,
    bad_streak: u32,
    good_streak: u32,
    firing: bool,
    current: Option<Status>,
    last_at: Option<DateTime<Utc>>,
    first: Option<WouldAlert>,
    last: Option<WouldAlert>,
}

impl SeriesTally {
    fn new(thresholds: Thresholds) -> SeriesTally {
        SeriesTally {
            thresholds,
            counts: Counts::default(),
            was_bad: None,
            bad_streak: 0,
            good_streak: 0,
            firing: false,
            current: None,
            last_at: None,
            first: None,
            last: None,
        }
    }

    fn observe(&mut self, s: ShadowSample) {
        let c = &mut self.counts;
        match s.status {
            Status::Skipped => {
                c.skipped += 1;
                return;
            }
            Status::Ok => c.ok += 1,
            Status::Warn => c.warn += 1,
            Status::Crit => c.crit += 1,
            Status::Error => c.error += 1,
        }
        c.evaluations += 1;
        let bad = s.status != Status::Ok;
        if self.was_bad.is_some_and(|was| was != bad) {
            c.flaps += 1;
        }
        self.was_bad = Some(bad);
        if self.step(bad) {
            self.counts.would_fire += 1;
        }
        self.current = Some(s.status);
        self.last_at = Some(s.started_at);
        if bad {
            self.counts.would_alert += 1;
            let alert = WouldAlert {
                at: s.started_at,
                series: s.series,
                status: s.status,
                message: s.message,
            };
            if self.first.is_none() {
                self.first = Some(alert.clone());
            }
            self.last = Some(alert);
        }
    }

    /// Steps the would-be alert as the lifecycle does (firing after `failure` bad results in a
    /// row, resolved after `success` good ones); true when it starts firing.
    fn step(&mut self, bad: bool) -> bool {
        if bad {
            self.bad_streak = self.bad_streak.saturating_add(1);
            self.good_streak = 0;
            if !self.firing && self.bad_streak >= self.thresholds.failure {
                self.firing = true;
                return true;
            }
        } else {
            self.good_streak = self.good_streak.saturating_add(1);
            self.bad_streak = 0;
            if self.firing && self.good_streak >= self.thresholds.success {
                self.firing = false;
            }
        }
        false
    }

    fn finish(self, series: String) -> SeriesSummary {
        SeriesSummary {
            series,
            counts: self.counts,
            current_status: self.current,
            last_evaluated_at: self.last_at,
            would_be_firing: self.firing,
            first_would_alert: self.first,
            last_would_alert: self.last,
        }
    }
}

/// Folds shadow results into a [`ShadowReport`]. Feed each series' results oldest first (the
/// store's order); series may interleave.
#[derive(Debug)]
pub struct ShadowTally {
    /// The checks of the rules, when the report is made with them.
    known: Option<BTreeMap<String, Known>>,
    /// Check → series → tally.
    checks: BTreeMap<String, BTreeMap<String, SeriesTally>>,
}

impl ShadowTally {
    /// A tally that takes thresholds and modes from `rules` and lists their shadow checks even
    /// without results; without rules, only checks with results, thresholds 1 and 1.
    pub fn new(rules: Option<&RuleSet>) -> ShadowTally {
        let known = rules.map(|rules| {
            rules
                .checks
                .iter()
                .map(|c| {
                    let mode = if c.is_shadow() {
                        RuleMode::Shadow
                    } else {
                        RuleMode::Enforce
                    };
                    let thresholds = Thresholds::of(&AlertPolicy::of(c));
                    (c.name().to_string(), Known { mode, thresholds })
                })
                .collect()
        });
        ShadowTally {
            known,
            checks: BTreeMap::new(),
        }
    }

    fn thresholds(&self, check: &str) -> Thresholds {
        self.known
            .as_ref()
            .and_then(|k| k.get(check))
            .map_or_else(Thresholds::default, |k| k.thresholds)
    }

    pub fn observe(&mut self, sample: ShadowSample) {
        let thresholds = self.thresholds(&sample.check);
        let series = self.checks.entry(sample.check.clone()).or_default();
        // Looked up before inserting so the common case (a known series) allocates nothing.
        let tally = match series.get_mut(&sample.series) {
            Some(t) => t,
            None => series
                .entry(sample.series.clone())
                .or_insert_with(|| SeriesTally::new(thresholds)),
        };
        tally.observe(sample);
    }

    pub fn finish(mut self, since: DateTime<Utc>, until: DateTime<Utc>) -> ShadowReport {
        let quiet_shadows: Vec<String> = self
            .known
            .iter()
            .flatten()
            .filter(|(name, k)| k.mode == RuleMode::Shadow && !self.checks.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in quiet_shadows {
            self.checks.insert(name, BTreeMap::new());
        }
        let checks = std::mem::take(&mut self.checks)
            .into_iter()
            .map(|(name, series)| self.summarise(name, series))
            .collect();
        ShadowReport {
            since,
            until,
            checks,
        }
    }

    fn summarise(&self, check: String, series: BTreeMap<String, SeriesTally>) -> CheckSummary {
        let mode = self.known.as_ref().map(|k| match k.get(&check) {
            Some(known) => known.mode,
            None => RuleMode::Unknown,
        });
        let thresholds = self.thresholds(&check);
        let series: Vec<SeriesSummary> = series
            .into_iter()
            .map(|(key, tally)| tally.finish(key))
            .collect();
        let mut counts = Counts::default();
        for s in &series {
            counts.add(&s.counts);
        }
        let first_would_alert = series
            .iter()
            .filter_map(|s| s.first_would_alert.as_ref())
            .min_by_key(|a| a.at)
            .cloned();
        let last_would_alert = series
            .iter()
            .filter_map(|s| s.last_would_alert.as_ref())
            .max_by_key(|a| a.at)
            .cloned();
        CheckSummary {
            check,
            mode,
            failure_threshold: thresholds.failure,
            success_threshold: thresholds.success,
            counts,
            current_status: series.iter().filter_map(|s| s.current_status).max(),
            last_evaluated_at: series.iter().filter_map(|s| s.last_evaluated_at).max(),
            would_be_firing: series.iter().any(|s| s.would_be_firing),
            first_would_alert,
            last_would_alert,
            series,
        }
    }
}

impl ShadowReport {
    /// The report of the shadow results stored within `[since, until]`, with modes and
    /// thresholds from `rules` when given.
    pub async fn from_store(
        store: &Store,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        rules: Option<&RuleSet>,
    ) -> Result<ShadowReport, StoreError> {
        let mut tally = ShadowTally::new(rules);
        store
            .each_shadow_result(since, until, |s| tally.observe(s))
            .await?;
        Ok(tally.finish(since, until))
    }

    /// Whether it was made with the rules (so checks carry a mode).
    fn with_rules(&self) -> bool {
        self.checks.iter().any(|c| c.mode.is_some())
    }

    /// Pretty JSON: `{since, until, checks: [...]}`, the shape of `GET /api/v1/shadow`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a shadow report serialises")
    }

    /// A table for people: one row per check, then the first and last would-be alerts.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Shadow checks from {} to {}\n",
            time(self.since),
            time(self.until)
        );
        if self.checks.is_empty() {
            out.push_str("\nNo shadow results in this window.\n");
            return out;
        }
        out.push('\n');
        out.push_str(&self.counts_table());
        out.push('\n');
        let alerts = self.alerts_table();
        if let Some(alerts) = alerts {
            out.push_str("\nFirst and last would-be alerts:\n");
            out.push_str(&alerts);
            out.push('\n');
        }
        for note in self.notes() {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }

    fn counts_table(&self) -> String {
        let with_rules = self.with_rules();
        let mut header = vec!["CHECK"];
        if with_rules {
            header.push("MODE");
        }
        header.extend([
            "EVALUATIONS",
            "WOULD ALERT",
            "WARN",
            "CRIT",
            "ERROR",
            "WOULD FIRE",
            "FLAPS",
            "NOW",
            "LAST EVALUATED",
        ]);
        let mut t = plain_table(header);
        for c in &self.checks {
            let n = &c.counts;
            let mut row = vec![c.check.clone()];
            if with_rules {
                row.push(c.mode.map_or("-", RuleMode::as_str).to_string());
            }
            row.extend([
                n.evaluations.to_string(),
                n.would_alert.to_string(),
                n.warn.to_string(),
                n.crit.to_string(),
                n.error.to_string(),
                fires(c),
                n.flaps.to_string(),
                now_text(c),
                c.last_evaluated_at.map_or("-".into(), time),
            ]);
            t.add_row(row);
        }
        t.to_string()
    }

    fn alerts_table(&self) -> Option<String> {
        let mut t = plain_table(vec!["CHECK", "", "AT", "STATUS", "SERIES", "MESSAGE"]);
        let mut any = false;
        for c in &self.checks {
            for (which, alert) in [
                ("first", &c.first_would_alert),
                ("last", &c.last_would_alert),
            ] {
                let Some(a) = alert else { continue };
                any = true;
                t.add_row([
                    c.check.clone(),
                    which.to_string(),
                    time(a.at),
                    a.status.to_string(),
                    if a.series.is_empty() {
                        "-".into()
                    } else {
                        a.series.clone()
                    },
                    one_line(&a.message),
                ]);
            }
        }
        any.then(|| t.to_string())
    }

    /// What the table's less obvious columns and marks mean, only when they appear.
    fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            "WOULD FIRE: alerts that would have fired under the check's alert.failure_threshold \
             (shown as ×N when above 1)."
                .to_string(),
        ];
        if self
            .checks
            .iter()
            .any(|c| c.mode == Some(RuleMode::Enforce))
        {
            notes.push("enforce: the check is no longer in shadow mode.".into());
        }
        if self
            .checks
            .iter()
            .any(|c| c.mode == Some(RuleMode::Unknown))
        {
            notes.push("unknown: no check of that name in the rules.".into());
        }
        notes
    }

    /// A Markdown section: a table with one row per check, then the would-be alerts as a list.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "## Shadow checks\n\n{} → {}\n\n",
            time(self.since),
            time(self.until)
        );
        if self.checks.is_empty() {
            out.push_str("No shadow results in this window.\n");
            return out;
        }
        let with_rules = self.with_rules();
        let mode_head = if with_rules { " Mode |" } else { "" };
        let mode_rule = if with_rules { "---|" } else { "" };
        let _ = writeln!(
            out,
            "| Check |{mode_head} Evaluations | Would alert | Warn | Crit | Error | Would fire \
             | Flaps | Now |"
        );
        let _ = writeln!(
            out,
            "|---|{mode_rule}---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for c in &self.checks {
            let n = &c.counts;
            let mode = match (with_rules, c.mode) {
                (false, _) => String::new(),
                (true, m) => format!(" {} |", m.map_or("-", RuleMode::as_str)),
            };
            let _ = writeln!(
                out,
                "| {} |{mode} {} | {} | {} | {} | {} | {} | {} | {} |",
                code(&c.check),
                n.evaluations,
                n.would_alert,
                n.warn,
                n.crit,
                n.error,
                fires(c),
                n.flaps,
                now_text(c),
            );
        }
        let mut listed = false;
        for c in &self.checks {
            for (which, alert) in [
                ("First", &c.first_would_alert),
                ("Last", &c.last_would_alert),
            ] {
                let Some(a) = alert else { continue };
                if !listed {
                    out.push('\n');
                    listed = true;
                }
                let series = if a.series.is_empty() {
                    String::new()
                } else {
                    format!(" (series {})", code(&a.series))
                };
                let _ = writeln!(
                    out,
                    "- {} {which} would-be alert {}: **{}**{series} — {}",
                    code(&c.check),
                    time(a.at),
                    a.status,
                    one_line(&a.message).replace('`', "'"),
                );
            }
        }
        out
    }
}

fn plain_table<T: Into<comfy_table::Cell>>(header: Vec<T>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .force_no_tty()
        .set_header(header);
    t
}

/// The would-fire count, with the failure threshold when it is not the default.
fn fires(c: &CheckSummary) -> String {
    match c.failure_threshold {
        1 => c.counts.would_fire.to_string(),
        n => format!("{} (×{n})", c.counts.would_fire),
    }
}

/// The current status, marked when the would-be alert is firing.
fn now_text(c: &CheckSummary) -> String {
    match (c.current_status, c.would_be_firing) {
        (None, _) => "-".into(),
        (Some(s), false) => s.to_string(),
        (Some(s), true) => format!("{s} (firing)"),
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A message on one line, cut to [`MESSAGE_CHARS`].
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate::chars(&joined, MESSAGE_CHARS)
}

/// A name in code style inside a Markdown table cell.
fn code(name: &str) -> String {
    format!("`{}`", name.replace('`', "'").replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Crit, Error, Ok, Skipped, Warn};
    use chrono::{Duration, TimeZone};

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(minute)
    }

    fn sample(check: &str, series: &str, minute: i64, status: Status) -> ShadowSample {
        ShadowSample {
            check: check.into(),
            series: series.into(),
            status,
            message: format!("{status} at minute {minute}"),
            started_at: t(minute),
        }
    }

    fn tally(rules: Option<&RuleSet>, samples: Vec<ShadowSample>) -> ShadowReport {
        let mut tally = ShadowTally::new(rules);
        for s in samples {
            tally.observe(s);
        }
        tally.finish(t(0), t(100))
    }

    fn rules(yaml: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.yaml"), yaml).unwrap();
        crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
            .unwrap_or_else(|d| panic!("{d:#?}"))
    }

    fn sequence(check: &str, statuses: &[Status]) -> Vec<ShadowSample> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| sample(check, "", i as i64, *s))
            .collect()
    }

    #[test]
    fn a_sequence_is_counted_with_flaps_and_first_and_last_alerts() {
        let report = tally(None, sequence("c", &[Ok, Warn, Ok, Crit, Crit, Ok, Error]));
        let c = &report.checks[0];
        assert_eq!(
            c.counts,
            Counts {
                evaluations: 7,
                ok: 3,
                warn: 1,
                crit: 2,
                error: 1,
                skipped: 0,
                would_alert: 4,
                would_fire: 3,
                flaps: 5,
            }
        );
        let first = c.first_would_alert.as_ref().unwrap();
        assert_eq!((first.at, first.status), (t(1), Warn));
        assert_eq!(first.message, "warn at minute 1");
        let last = c.last_would_alert.as_ref().unwrap();
        assert_eq!((last.at, last.status), (t(6), Error));
        assert_eq!(c.current_status, Some(Error));
        assert!(c.would_be_firing);
        assert_eq!(c.mode, None, "no rules, no mode");
        assert_eq!((c.failure_threshold, c.success_threshold), (1, 1));
    }

    #[test]
    fn skipped_results_are_no_evaluations_and_do_not_break_a_streak() {
        let report = tally(None, sequence("c", &[Warn, Skipped, Warn, Skipped, Ok]));
        let n = report.checks[0].counts;
        assert_eq!((n.evaluations, n.skipped, n.would_alert), (3, 2, 2));
        assert_eq!(n.flaps, 1, "warn → warn is no change, warn → ok is one");
        assert_eq!(n.would_fire, 1);
        assert_eq!(report.checks[0].current_status, Some(Ok));
        assert_eq!(report.checks[0].last_evaluated_at, Some(t(4)));
    }

    #[test]
    fn would_fire_honours_the_failure_and_success_thresholds() {
        let rules = rules(
            "checks:\n  - {name: c, kind: tcp, address: '127.0.0.1:1', mode: shadow, \
             alert: {failure_threshold: 2, success_threshold: 2}}\n",
        );
        // Bad once (pending, never fires), bad twice (fires), one good (still firing), bad
        // (still the same episode), two good (resolved), two bad (fires again).
        let statuses = [Warn, Ok, Crit, Crit, Ok, Warn, Ok, Ok, Crit, Error];
        let report = tally(Some(&rules), sequence("c", &statuses));
        let c = &report.checks[0];
        assert_eq!((c.failure_threshold, c.success_threshold), (2, 2));
        assert_eq!(c.counts.would_fire, 2);
        assert_eq!(c.counts.would_alert, 6);
        assert!(c.would_be_firing);
        assert_eq!(c.mode, Some(RuleMode::Shadow));
        // The same results under the default policy fire at every bad run.
        let default = tally(None, sequence("c", &statuses));
        assert_eq!(default.checks[0].counts.would_fire, 4);
    }

    #[test]
    fn series_are_folded_apart_and_summed_per_check() {
        // Interleaved in time, as the store returns them.
        let samples = vec![
            sample("c", "a", 0, Ok),
            sample("c", "b", 0, Crit),
            sample("c", "a", 1, Warn),
            sample("c", "b", 1, Ok),
            sample("c", "a", 2, Warn),
            sample("c", "b", 2, Ok),
        ];
        let report = tally(None, samples);
        let c = &report.checks[0];
        let per_series: Vec<(&str, u64, u64, u64)> = c
            .series
            .iter()
            .map(|s| {
                let n = &s.counts;
                (s.series.as_str(), n.evaluations, n.would_alert, n.flaps)
            })
            .collect();
        assert_eq!(per_series, vec![("a", 3, 2, 1), ("b", 3, 1, 1)]);
        assert_eq!(
            (c.counts.evaluations, c.counts.flaps, c.counts.would_fire),
            (6, 2, 2),
            "a's ok → warn and b's crit → ok are one flap each; nothing flaps across series"
        );
        let first = c.first_would_alert.as_ref().unwrap();
        assert_eq!((first.series.as_str(), first.at), ("b", t(0)));
        let last = c.last_would_alert.as_ref().unwrap();
        assert_eq!((last.series.as_str(), last.at), ("a", t(2)));
        assert_eq!(c.current_status, Some(Warn), "the worst latest status");
        assert!(c.would_be_firing, "series a is firing");
    }

    #[test]
    fn rules_add_quiet_shadow_checks_and_mark_changed_or_gone_ones() {
        let rules = rules(
            "checks:\n  - {name: quiet, kind: tcp, address: '127.0.0.1:1', mode: shadow}\n  \
             - {name: promoted, kind: tcp, address: '127.0.0.1:1'}\n  \
             - {name: enforced-never-shadow, kind: tcp, address: '127.0.0.1:1'}\n",
        );
        let samples = vec![
            sample("promoted", "", 0, Crit),
            sample("removed", "", 1, Ok),
        ];
        let report = tally(Some(&rules), samples);
        let modes: Vec<(&str, Option<RuleMode>, u64)> = report
            .checks
            .iter()
            .map(|c| (c.check.as_str(), c.mode, c.counts.evaluations))
            .collect();
        assert_eq!(
            modes,
            vec![
                ("promoted", Some(RuleMode::Enforce), 1),
                ("quiet", Some(RuleMode::Shadow), 0),
                ("removed", Some(RuleMode::Unknown), 1),
            ]
        );
        let quiet = &report.checks[1];
        assert_eq!(quiet.current_status, None);
        assert!(quiet.series.is_empty() && quiet.first_would_alert.is_none());
    }

    #[test]
    fn since_reads_durations_and_times_and_refuses_the_future() {
        let now = t(600);
        assert_eq!(parse_since("48h", now).unwrap(), now - Duration::hours(48));
        assert_eq!(parse_since(" 90m ", now).unwrap(), t(510));
        assert_eq!(parse_since("2026-05-01T10:00:00+02:00", now).unwrap(), t(0));
        let bad = parse_since("yesterday", now).unwrap_err();
        assert!(bad.contains("neither a duration"), "{bad}");
        let future = parse_since("2026-05-02T00:00:00Z", now).unwrap_err();
        assert!(future.contains("in the future"), "{future}");
        assert!(parse_since("100000000000d", now).is_err());
    }

    #[test]
    fn json_has_the_contract_fields_with_counts_flattened() {
        let report = tally(None, sequence("c", &[Ok, Crit]));
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["since"], "2026-05-01T08:00:00Z");
        let c = &v["checks"][0];
        assert_eq!(c["check"], "c");
        assert_eq!(c["evaluations"], 2);
        assert_eq!(c["crit"], 1);
        assert_eq!(c["flaps"], 1);
        assert_eq!(c["mode"], serde_json::Value::Null);
        assert_eq!(c["first_would_alert"]["status"], "crit");
        assert_eq!(c["series"][0]["would_alert"], 1);
    }

    #[test]
    fn the_table_has_a_row_per_check_and_the_first_and_last_alerts() {
        let rules = rules(
            "checks:\n  - {name: quiet, kind: tcp, address: '127.0.0.1:1', mode: shadow}\n  \
             - {name: noisy, kind: tcp, address: '127.0.0.1:1', mode: shadow}\n",
        );
        let mut samples = sequence("noisy", &[Ok, Warn, Ok, Crit]);
        samples[3].message = "connection\nrefused".into();
        let text = tally(Some(&rules), samples).to_text();
        let row = |name: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            row("noisy")[..10],
            ["noisy", "shadow", "4", "2", "1", "1", "0", "2", "3", "crit"],
            "{text}"
        );
        assert_eq!(
            row("quiet"),
            [
                "quiet", "shadow", "0", "0", "0", "0", "0", "0", "0", "-", "-"
            ]
        );
        let first = [
            "noisy",
            "first",
            "2026-05-01T08:01:00Z",
            "warn",
            "-",
            "warn",
        ];
        assert!(
            text.lines().any(|l| l.split_whitespace().take(6).eq(first)),
            "{text}"
        );
        assert!(text.contains("connection refused"), "one line: {text}");
    }

    #[test]
    fn markdown_has_a_table_and_the_alerts_listed() {
        let md = tally(None, sequence("a|b", &[Crit, Ok])).to_markdown();
        assert!(
            md.contains("| `a\\|b` | 2 | 1 | 0 | 1 | 0 | 1 | 1 | ok |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- `a\\|b` First would-be alert 2026-05-01T08:00:00Z: **crit** — crit at minute 0"
            ),
            "{md}"
        );
        assert!(!md.contains("Mode"), "no rules, no mode column");
    }

    #[test]
    fn an_empty_window_says_so() {
        let report = tally(None, Vec::new());
        assert!(
            report
                .to_text()
                .contains("No shadow results in this window.")
        );
        assert!(
            report
                .to_markdown()
                .contains("No shadow results in this window.")
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&report.to_json()).unwrap()["checks"],
            serde_json::json!([])
        );
    }
}
