use chrono::TimeZone;

use super::*;
use crate::config::{from_node, parse_yaml, path_text};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn window(schedule: &str, duration_secs: u64, timezone: &str) -> MaintenanceWindow {
    MaintenanceWindow {
        name: "w".into(),
        schedule: schedule.into(),
        duration: Duration::from_secs(duration_secs),
        timezone: timezone.into(),
        matchers: Vec::new(),
    }
}

#[test]
fn a_window_is_open_from_its_start_for_its_duration() {
    let w = window("0 2 * * *", 3600, "UTC");
    assert!(!w.active(utc(2026, 5, 4, 1, 59)));
    assert!(w.active(utc(2026, 5, 4, 2, 0)), "start inclusive");
    assert!(w.active(utc(2026, 5, 4, 2, 59)));
    assert!(!w.active(utc(2026, 5, 4, 3, 0)), "end exclusive");
    assert_eq!(
        w.opened_at(utc(2026, 5, 4, 2, 30)),
        Some(utc(2026, 5, 4, 2, 0))
    );
}

#[test]
fn the_schedule_is_read_in_the_windows_zone() {
    // 01:00 Berlin is 00:00 UTC in winter and 23:00 UTC the day before in summer.
    let w = window("0 1 * * *", 2 * 3600, "Europe/Berlin");
    assert!(w.active(utc(2026, 3, 28, 1, 30)), "winter: 00:00-02:00 UTC");
    assert!(!w.active(utc(2026, 4, 1, 1, 30)), "summer: 23:00-01:00 UTC");
    assert!(w.active(utc(2026, 3, 31, 23, 30)));
}

#[test]
fn the_duration_is_real_time_across_spring_forward() {
    // 2026-03-29: Berlin clocks jump from 02:00 CET to 03:00 CEST. A two-hour window from
    // 01:00 CET (00:00 UTC) ends at 02:00 UTC, which the wall clock shows as 04:00.
    let w = window("0 1 * * *", 2 * 3600, "Europe/Berlin");
    assert!(w.active(utc(2026, 3, 29, 1, 59)));
    assert!(!w.active(utc(2026, 3, 29, 2, 0)));
}

#[test]
fn a_start_in_the_spring_gap_opens_when_the_gap_ends() {
    // 02:30 does not exist on 2026-03-29 in Berlin; the window opens at 03:00 CEST (01:00 UTC).
    let w = window("30 2 * * *", 3600, "Europe/Berlin");
    assert!(!w.active(utc(2026, 3, 29, 0, 45)));
    assert_eq!(
        w.opened_at(utc(2026, 3, 29, 1, 30)),
        Some(utc(2026, 3, 29, 1, 0))
    );
    assert!(!w.active(utc(2026, 3, 29, 2, 0)));
}

#[test]
fn a_start_in_the_repeated_autumn_hour_opens_once() {
    // 2026-10-25: 02:30 Berlin happens twice (00:30 UTC in CEST, 01:30 UTC in CET); the window
    // opens at the first and not again at the second.
    let w = window("30 2 * * *", 30 * 60, "Europe/Berlin");
    assert!(w.active(utc(2026, 10, 25, 0, 45)));
    assert!(!w.active(utc(2026, 10, 25, 1, 0)));
    assert!(
        !w.active(utc(2026, 10, 25, 1, 45)),
        "not again on the second pass"
    );
}

#[test]
fn a_window_longer_than_a_day_spans_the_weekend() {
    // Fridays 22:00 for 56 hours: until Monday 06:00.
    let w = window("0 22 * * 5", 56 * 3600, "UTC");
    assert!(w.active(utc(2026, 5, 9, 12, 0)), "Saturday");
    assert!(w.active(utc(2026, 5, 11, 5, 59)), "Monday early");
    assert!(!w.active(utc(2026, 5, 11, 6, 0)));
    assert!(!w.active(utc(2026, 5, 8, 21, 59)), "Friday before");
}

#[test]
fn matchers_choose_the_muted_alerts() {
    let mut w = window("0 2 * * *", 3600, "UTC");
    w.name = "db-patching".into();
    w.matchers = vec![r#"service=~"orders|users""#.parse().unwrap()];
    let windows = [window("0 9 * * *", 60, "UTC"), w];
    let during = utc(2026, 5, 4, 2, 10);
    let orders = labels(&[("service", "orders")]);
    assert_eq!(
        in_maintenance(&windows, &orders, during),
        Some("db-patching")
    );
    assert_eq!(
        in_maintenance(&windows, &labels(&[("service", "pay")]), during),
        None
    );
    assert_eq!(
        in_maintenance(&windows, &orders, utc(2026, 5, 4, 3, 10)),
        None
    );
}

#[test]
fn loads_from_yaml_with_defaults() {
    let node = parse_yaml(
        "name: nightly\nschedule: '0 2 * * *'\nduration: 1h30m\nmatchers: ['team=\"dba\"']\n",
    )
    .unwrap();
    let w: MaintenanceWindow = from_node(&node, None).unwrap();
    assert_eq!(w.timezone, "UTC");
    assert_eq!(w.duration, Duration::from_secs(5400));
    assert_eq!(w.matchers.len(), 1);
    let node = parse_yaml("name: x\nschedule: '0 2 * * *'\nduration: 1h\nzone: UTC\n").unwrap();
    assert!(from_node::<MaintenanceWindow>(&node, None).is_err());
}

#[test]
fn validate_reports_each_bad_field() {
    let bad = MaintenanceWindow {
        name: " ".into(),
        schedule: "0 2 * *".into(),
        duration: Duration::ZERO,
        timezone: "Mars/Olympus".into(),
        matchers: Vec::new(),
    };
    let mut issues = Issues::default();
    bad.validate(&mut issues);
    let found: Vec<(String, String)> = issues
        .items
        .iter()
        .map(|(p, m)| (path_text(p), m.clone()))
        .collect();
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["name", "schedule", "timezone", "duration"],
        "{found:?}"
    );
    assert!(found[1].1.contains("4 fields"), "{found:?}");
    assert!(found[2].1.contains("unknown time zone"), "{found:?}");
    assert!(
        !bad.active(utc(2026, 5, 4, 2, 0)),
        "an invalid window never opens"
    );

    let mut issues = Issues::default();
    window("0 2 * * *", 60, "Europe/Berlin").validate(&mut issues);
    assert!(issues.is_empty());
}
