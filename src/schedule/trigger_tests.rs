//! Cron fires across DST in Europe/Berlin and America/New_York (2026: Berlin springs forward on
//! 29 March at 01:00 UTC and falls back on 25 October at 01:00 UTC; New York on 8 March at 07:00
//! UTC and 1 November at 06:00 UTC), checked against hand-written instants and against a
//! minute-by-minute scan; jitter bounds, stability and spread.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::schedule::{parse_cron, parse_timezone};

fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap()
}

fn cron(expr: &str, tz: &str) -> Trigger {
    Trigger::cron(expr, tz).unwrap()
}

/// Every fire in `(from, to]`.
fn fires(trigger: &Trigger, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(next) = trigger.next_after(t) {
        assert!(next > t, "next_after({t}) = {next} is not after it");
        if next > to {
            break;
        }
        out.push(next);
        t = next;
        assert!(out.len() < 10_000, "runaway iteration");
    }
    out
}

/// A window `(from, to]` of fires.
type Window = (DateTime<Utc>, DateTime<Utc>);

/// Asserts that the fires in `window` are exactly `expected`.
#[track_caller]
fn assert_fires(trigger: &Trigger, (from, to): Window, expected: &[DateTime<Utc>]) {
    assert_eq!(
        fires(trigger, from, to),
        expected,
        "fires in ({from}, {to}]"
    );
}

/// Fires per local calendar day.
fn per_local_day(fires: &[DateTime<Utc>], tz: Tz) -> BTreeMap<NaiveDate, usize> {
    let mut days = BTreeMap::new();
    for f in fires {
        *days.entry(f.with_timezone(&tz).date_naive()).or_default() += 1;
    }
    days
}

fn assert_once_a_day(trigger: &Trigger, tz: Tz, from: DateTime<Utc>, days: u32) {
    let all = fires(trigger, from, from + TimeDelta::days(i64::from(days)));
    let counts = per_local_day(&all, tz);
    assert_eq!(counts.len() as u32, days, "one day skipped: {all:?}");
    assert!(counts.values().all(|n| *n == 1), "a day ran twice: {all:?}");
}

#[test]
fn berlin_0200_runs_at_0300_on_spring_forward_day_and_once_on_fall_back_day() {
    let t = cron("0 2 * * *", "Europe/Berlin");
    assert_fires(
        &t,
        (utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 12, 0)),
        &[
            utc(2026, 3, 28, 1, 0), // 02:00 CET
            utc(2026, 3, 29, 1, 0), // 02:00 does not exist: 03:00 CEST, the first instant after
            utc(2026, 3, 30, 0, 0), // 02:00 CEST
            utc(2026, 3, 31, 0, 0),
        ],
    );
    assert_fires(
        &t,
        (utc(2026, 10, 23, 12, 0), utc(2026, 10, 27, 12, 0)),
        &[
            utc(2026, 10, 24, 0, 0),
            utc(2026, 10, 25, 0, 0), // 02:00 CEST, the first of the two 02:00s; not again at CET
            utc(2026, 10, 26, 1, 0), // 02:00 CET
            utc(2026, 10, 27, 1, 0),
        ],
    );
    let berlin = parse_timezone("Europe/Berlin").unwrap();
    assert_once_a_day(&t, berlin, utc(2026, 3, 20, 12, 0), 14);
    assert_once_a_day(&t, berlin, utc(2026, 10, 18, 12, 0), 14);
}

#[test]
fn new_york_0200_and_0130_run_once_every_day_across_both_changes() {
    let ny = parse_timezone("America/New_York").unwrap();
    let two = cron("0 2 * * *", "America/New_York");
    let half_past_one = cron("30 1 * * *", "America/New_York");
    let spring = (utc(2026, 3, 7, 12, 0), utc(2026, 3, 9, 12, 0));
    let fall = (utc(2026, 10, 31, 12, 0), utc(2026, 11, 2, 12, 0));
    for (t, window, expected) in [
        // 03:00 EDT, then 02:00 EDT.
        (&two, spring, [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 0)]),
        // 02:00 EST.
        (&two, fall, [utc(2026, 11, 1, 7, 0), utc(2026, 11, 2, 7, 0)]),
        // 01:30 exists twice in New York on 1 November: the EDT one only.
        (
            &half_past_one,
            fall,
            [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
    ] {
        assert_fires(t, window, &expected);
    }
    for (t, from) in [
        (&two, utc(2026, 3, 1, 12, 0)),
        (&two, utc(2026, 10, 25, 12, 0)),
        (&half_past_one, utc(2026, 3, 1, 12, 0)),
        (&half_past_one, utc(2026, 10, 25, 12, 0)),
    ] {
        assert_once_a_day(t, ny, from, 14);
    }
}

#[test]
fn berlin_0230_runs_once_in_the_repeated_hour() {
    let t = cron("30 2 * * *", "Europe/Berlin");
    let fall = (utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0));
    let cest_then_cet = [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)];
    assert_fires(&t, fall, &cest_then_cet);
}

#[test]
fn several_explicit_times_are_wall_clock_times_too() {
    // croner alone skips 02:00 on the spring day and runs it twice on the fall day for this one.
    let t = cron("0 2,14 * * *", "Europe/Berlin");
    let spring = (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0));
    let fall = (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 22, 0));
    let after_the_gap_and_1400 = [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 12, 0)];
    assert_fires(&t, spring, &after_the_gap_and_1400);
    let cest_0200_and_cet_1400 = [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 13, 0)];
    assert_fires(&t, fall, &cest_0200_and_cet_1400);
    // Both times of a day fall into the gap: they run (once) right after it, not never.
    let t = cron("15,45 2 * * *", "Europe/Berlin");
    assert_fires(&t, spring, &[utc(2026, 3, 29, 1, 0)]);
}

#[test]
fn intervals_keep_their_real_spacing_through_gap_and_repeated_hour() {
    let t = cron("*/30 * * * *", "Europe/Berlin");
    for (from, to) in [
        (utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 4, 0)),
        (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 4, 0)),
    ] {
        let all = fires(&t, from, to);
        assert_eq!(all.len(), 12, "{all:?}");
        for pair in all.windows(2) {
            assert_eq!(pair[1] - pair[0], TimeDelta::minutes(30), "{all:?}");
        }
    }
    // Both passes of the repeated hour run (02:00 and 02:30, CEST then CET).
    assert_fires(
        &t,
        (utc(2026, 10, 24, 23, 59), utc(2026, 10, 25, 1, 59)),
        &[
            utc(2026, 10, 25, 0, 0),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 0),
            utc(2026, 10, 25, 1, 30),
        ],
    );
}

#[test]
fn last_at_or_before_finds_the_run_a_restart_missed() {
    let t = cron("0 2 * * *", "Europe/Berlin");
    let spring_run = utc(2026, 3, 29, 1, 0);
    assert_eq!(
        t.last_at_or_before(utc(2026, 3, 29, 2, 0)),
        Some(spring_run)
    );
    assert_eq!(
        t.last_at_or_before(spring_run),
        Some(spring_run),
        "inclusive"
    );
    assert_eq!(
        t.last_at_or_before(spring_run - TimeDelta::seconds(1)),
        Some(utc(2026, 3, 28, 1, 0))
    );
    let t = cron("30 2 * * *", "Europe/Berlin");
    // 02:45 CET on the fall day: the 02:30 run was the CEST one, an hour and a quarter ago.
    assert_eq!(
        t.last_at_or_before(utc(2026, 10, 25, 1, 45)),
        Some(utc(2026, 10, 25, 0, 30))
    );
    let t = cron("30 1 * * *", "America/New_York");
    assert_eq!(
        t.last_at_or_before(utc(2026, 11, 1, 6, 45)),
        Some(utc(2026, 11, 1, 5, 30))
    );
    assert_eq!(
        Trigger::Every(Duration::from_secs(60)).last_at_or_before(spring_run),
        None
    );
}

/// Every fire in a window, found by looking at each wall-clock minute on its own.
fn scanned(search: &CronSearch<'_>, from: DateTime<Utc>, days: i64) -> Vec<DateTime<Utc>> {
    let start = search.local(from);
    let mut out: Vec<DateTime<Utc>> = (0..days * 24 * 60)
        .map(|m| start + TimeDelta::minutes(m))
        .filter(|wall| search.cron.is_time_matching(wall).unwrap())
        .flat_map(|wall| search.instants(wall).into_iter().flatten())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn searches_agree_with_a_minute_by_minute_scan_around_every_change() {
    let exprs = [
        "0 2 * * *",
        "30 2 * * *",
        "30 1 * * *",
        "0 2,14 * * *",
        "15,45 2 * * *",
        "*/30 * * * *",
        "0 * * * *",
        "*/7 1-3 * * *",
        "0 3 * * 0",
    ];
    let windows = [
        ("Europe/Berlin", utc(2026, 3, 27, 0, 0)),
        ("Europe/Berlin", utc(2026, 10, 23, 0, 0)),
        ("America/New_York", utc(2026, 3, 6, 0, 0)),
        ("America/New_York", utc(2026, 10, 30, 0, 0)),
    ];
    for (zone, from) in windows {
        let tz = parse_timezone(zone).unwrap();
        for expr in exprs {
            let parsed = parse_cron(expr).unwrap();
            let search = CronSearch::new(&parsed, tz);
            // The scan sees every fire whose wall-clock time lies in its 6 days, so every fire
            // in `covered` (the scan's span less a transition's shift at either end).
            let covered = |x: &DateTime<Utc>| {
                *x >= from + TimeDelta::hours(3) && *x <= from + TimeDelta::days(6) - SHIFT
            };
            let truth: Vec<_> = scanned(&search, from, 6)
                .into_iter()
                .filter(covered)
                .collect();
            let trigger = Trigger::Cron {
                cron: parsed.clone(),
                tz,
            };
            let mut t = from + TimeDelta::hours(12);
            while t < from + TimeDelta::days(4) {
                let next = truth.iter().find(|f| **f > t).copied();
                let last = truth.iter().rev().find(|f| **f <= t).copied();
                let found_next = trigger.next_after(t).filter(covered);
                let found_last = trigger.last_at_or_before(t).filter(covered);
                assert_eq!(found_next, next, "{expr} {zone} next after {t}");
                assert_eq!(found_last, last, "{expr} {zone} last at {t}");
                t += TimeDelta::minutes(37);
            }
        }
    }
}

#[test]
fn every_fires_an_interval_after_the_given_time() {
    let t = Trigger::Every(Duration::from_secs(90));
    let at = utc(2026, 3, 29, 0, 59);
    assert_eq!(t.next_after(at), Some(at + TimeDelta::seconds(90)));
}

#[test]
fn cron_constructor_reports_bad_expressions_and_zones() {
    assert!(Trigger::cron("0 2 * * *", "Europe/Berlin").is_ok());
    assert!(
        Trigger::cron("0 2 * *", "UTC")
            .unwrap_err()
            .contains("4 fields")
    );
    assert!(
        Trigger::cron("0 2 * * *", "Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone")
    );
    // An expression that can never match has no next fire (rather than a loop or a panic).
    assert_eq!(
        cron("0 0 31 2 *", "UTC").next_after(utc(2026, 1, 1, 0, 0)),
        None
    );
}

#[test]
fn jitter_stays_below_its_bound_and_zero_bound_gives_zero() {
    let max = Duration::from_secs(60);
    for i in 0..5_000 {
        let j = jitter_offset(&format!("check:c{i}"), max);
        assert!(j < max, "{j:?}");
    }
    assert_eq!(jitter_offset("check:any", Duration::ZERO), Duration::ZERO);
    let tiny = Duration::from_nanos(1);
    assert_eq!(jitter_offset("check:any", tiny), Duration::ZERO);
}

#[test]
fn jitter_is_stable_across_processes_and_versions() {
    // Pinned values: the offset depends on nothing but the key and the bound (SHA-256), so
    // another process, host or release computes the same.
    let max = Duration::from_secs(60);
    let a = jitter_offset("check:api-latency", max);
    assert_eq!(a, jitter_offset("check:api-latency", max));
    assert_eq!(a, Duration::from_nanos(PINNED_API_LATENCY_NANOS));
    assert_ne!(a, jitter_offset("check:api-latency2", max));
    assert_eq!(
        jitter_offset("check:api-latency", Duration::from_secs(120)).as_nanos() / 2,
        a.as_nanos(),
        "the same key sits at the same fraction of any bound"
    );
}

/// `jitter_offset("check:api-latency", 60 s)`; see the test above.
const PINNED_API_LATENCY_NANOS: u64 = 36_477_004_880;

#[test]
fn jitter_spreads_keys_uniformly() {
    let max = Duration::from_secs(60);
    let mut buckets = [0u32; 10];
    let keys = 20_000;
    for i in 0..keys {
        let j = jitter_offset(&format!("check:svc-{i}"), max);
        buckets[(j.as_secs_f64() / 6.0) as usize] += 1;
    }
    let expected = f64::from(keys) / 10.0;
    for (i, n) in buckets.iter().enumerate() {
        let off = (f64::from(*n) - expected).abs() / expected;
        assert!(off < 0.08, "bucket {i}: {n} of {keys} ({buckets:?})");
    }
}
