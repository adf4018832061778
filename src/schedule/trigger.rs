//! When a job fires: a cron expression in a time zone, or a fixed interval; and the stable
//! per-job jitter that spreads thousands of jobs sharing a schedule.
//!
//! Cron times are wall-clock times, and DST makes some of them not exist (spring forward) or
//! exist twice (fall back). croner handles a job with ONE fixed minute and hour (`0 2 * * *`) the
//! way we want, but a job listing several (`0 2,14 * * *`, `15,45 2 * * *`) is treated as an
//! interval job by croner: its 02:xx run is skipped on spring-forward days and runs twice on
//! fall-back days. So the search here asks croner only for wall-clock matches (on
//! `NaiveDateTime`, where DST does not exist) and maps each match to instants itself:
//!
//! - explicit minute and hour fields (no `*`, no `/step`) name wall-clock times: each runs once
//!   per matching day, at the first instant after the gap when it does not exist, at its first
//!   occurrence when it exists twice;
//! - a `*` or a step in the minute or hour field is an interval: times in a gap are skipped (the
//!   real spacing stays), times in a repeated hour run on both passes.

use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use sha2::{Digest, Sha256};

/// Larger than any change of a zone's UTC offset at one transition (real ones are ≤ 2 h): a
/// wall-clock time more than this after another is also later in real time.
const SHIFT: TimeDelta = TimeDelta::hours(3);

/// Within this span around the answer, two transitions never happen in a real zone, so equal
/// offsets at both ends mean no transition at all and croner's naive answer is exact.
const QUIET_SPAN: TimeDelta = TimeDelta::hours(12);

/// Upper bound on the wall-clock matches one search looks at (a `* * * * *` job near a
/// transition needs about 400).
const MAX_MATCHES: usize = 5_000;

/// The longest gap searched for its end (the longest real one, Samoa 2011, skipped a day).
const MAX_GAP_MINUTES: i64 = 26 * 60;

#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "the shape is the daemon's API (Trigger::Cron { cron, tz }); ~300 bytes a job is fine"
)]
pub enum Trigger {
    /// A 5-field cron expression evaluated in `tz`.
    Cron { cron: Cron, tz: Tz },
    /// Every so often; the scheduler plans each fire from the previous planned one (no drift).
    Every(Duration),
}

impl Trigger {
    /// A cron trigger from an expression and an IANA zone name.
    pub fn cron(expr: &str, tz: &str) -> Result<Trigger, String> {
        Ok(Trigger::Cron {
            cron: super::parse_cron(expr)?,
            tz: super::parse_timezone(tz)?,
        })
    }

    /// The first fire strictly after `t`; None when the expression never matches again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Every(every) => t.checked_add_signed(TimeDelta::from_std(*every).ok()?),
            Trigger::Cron { cron, tz } => CronSearch::new(cron, *tz).next_after(t),
        }
    }

    /// The last fire at or before `t` (the run a restart may have missed). An interval has no
    /// calendar: None.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Every(_) => None,
            Trigger::Cron { cron, tz } => CronSearch::new(cron, *tz).last_at_or_before(t),
        }
    }
}

/// A stable offset in `[0, max)` for `key`: the same key gets the same offset in every process
/// and version (the first 8 bytes of its SHA-256 scaled to `max`), and keys spread uniformly.
pub fn jitter_offset(key: &str, max: Duration) -> Duration {
    let digest = Sha256::digest(key.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let fraction = u64::from_be_bytes(head) as u128;
    let nanos = (fraction * max.as_nanos()) >> 64;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// One search over a cron expression's wall-clock matches in one zone.
struct CronSearch<'a> {
    cron: &'a Cron,
    tz: Tz,
    wall_clock: bool,
}

impl<'a> CronSearch<'a> {
    fn new(cron: &'a Cron, tz: Tz) -> CronSearch<'a> {
        let explicit = |c: &croner::CronComponent| c.step == 1 && !c.from_wildcard;
        let p = &cron.pattern;
        CronSearch {
            cron,
            tz,
            wall_clock: explicit(&p.minutes) && explicit(&p.hours),
        }
    }

    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.local(t);
        let first = self.cron.find_next_occurrence(&local, false).ok()?;
        if let Some(at) = self.quiet_instant(first)
            && at > t
            && at - t <= QUIET_SPAN
            && self.same_offset(t - SHIFT, at + SHIFT)
        {
            return Some(at);
        }
        // Near a transition: look at every match from SHIFT before `t`'s wall clock (a repeated
        // hour may still lie ahead) until matches are so late on the wall clock that they must be
        // later in real time than the best one found.
        let mut best: Option<DateTime<Utc>> = None;
        let mut cursor = local - SHIFT;
        for _ in 0..MAX_MATCHES {
            let Ok(wall) = self.cron.find_next_occurrence(&cursor, false) else {
                break;
            };
            if best.is_some_and(|b| wall > self.local(b) + SHIFT) {
                break;
            }
            for at in self.instants(wall).into_iter().flatten() {
                if at > t && best.is_none_or(|b| at < b) {
                    best = Some(at);
                }
            }
            cursor = wall;
        }
        best
    }

    fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.local(t);
        let first = self.cron.find_previous_occurrence(&local, true).ok()?;
        if let Some(at) = self.quiet_instant(first)
            && at <= t
            && t - at <= QUIET_SPAN
            && self.same_offset(at - SHIFT, t + SHIFT)
        {
            return Some(at);
        }
        let mut best: Option<DateTime<Utc>> = None;
        let mut cursor = local + SHIFT;
        for _ in 0..MAX_MATCHES {
            let Ok(wall) = self.cron.find_previous_occurrence(&cursor, false) else {
                break;
            };
            if best.is_some_and(|b| wall < self.local(b) - SHIFT) {
                break;
            }
            for at in self.instants(wall).into_iter().flatten() {
                if at <= t && best.is_none_or(|b| at > b) {
                    best = Some(at);
                }
            }
            cursor = wall;
        }
        best
    }

    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }

    /// The instant of a wall-clock time that exists exactly once.
    fn quiet_instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
            _ => None,
        }
    }

    fn same_offset(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
        let offset = |t: DateTime<Utc>| self.tz.offset_from_utc_datetime(&t.naive_utc()).fix();
        offset(a) == offset(b)
    }

    /// The instants at which a wall-clock match fires (see the module doc).
    fn instants(&self, wall: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(at) => [Some(at.with_timezone(&Utc)), None],
            LocalResult::Ambiguous(a, b) => {
                let (first, second) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                let (first, second) = (first.min(second), first.max(second));
                [Some(first), (!self.wall_clock).then_some(second)]
            }
            LocalResult::None if self.wall_clock => [self.gap_end(wall), None],
            LocalResult::None => [None, None],
        }
    }

    /// The first instant after the gap `wall` falls into.
    fn gap_end(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        (1..=MAX_GAP_MINUTES).find_map(|m| {
            match self.tz.from_local_datetime(&(wall + TimeDelta::minutes(m))) {
                LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
                LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
                LocalResult::None => None,
            }
        })
    }
}

#[cfg(test)]
#[path = "trigger_tests.rs"]
mod tests;
