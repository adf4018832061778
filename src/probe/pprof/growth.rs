//! Growth of a value over a window, from the values earlier runs of the check remembered.
//!
//! Each run adds its value with the time it was read to a short history kept in the check's probe
//! memory. The growth compares the new value with a *reference* point about `window` old:
//!
//! - a point qualifies when its age is at least `window - window/10` and at most `2 × window`
//!   (the tenth absorbs schedule jitter; a point from before a long outage says nothing about the
//!   last `window`);
//! - among qualifying points the one whose age is closest to `window` is the reference (the older
//!   one on a tie);
//! - none qualifies (the history is younger than the window, or only stale points are left): the
//!   growth is unknown.
//!
//! Growth is `(now - then) / max(then, 1) × 100` per cent, reported over the reference's actual
//! age. Points older than `2 × window` can never qualify again and are dropped; points "from the
//! future" (the clock went back) too. At most [`MAX_POINTS`] are kept: beyond that the point in the
//! densest stretch goes, so a check that runs every second keeps an evenly spread history.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Points kept at most (a few KiB of JSON per check).
pub const MAX_POINTS: usize = 240;

/// One remembered reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// UNIX milliseconds when the value was read.
    pub at_ms: i64,
    pub value: f64,
}

/// The probe memory of a growth check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    pub points: Vec<Point>,
}

/// How much the value changed against the reference point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    pub pct: f64,
    pub from: f64,
    pub to: f64,
    /// Age of the reference point.
    pub over: Duration,
}

impl History {
    /// The history a probe memory holds; one that cannot be read (another version's) counts as
    /// empty, so the check starts over instead of failing.
    pub fn from_memory(memory: Option<&serde_json::Value>) -> History {
        memory
            .and_then(|m| serde_json::from_value::<History>(m.clone()).ok())
            .unwrap_or_default()
    }

    pub fn to_memory(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Adds `now`'s value, works out the growth against the reference point and drops what can
    /// no longer serve as one.
    pub fn record(&mut self, now: Point, window: Duration) -> Option<Growth> {
        let window_ms = millis(window);
        self.points
            .retain(|p| p.at_ms < now.at_ms && now.at_ms - p.at_ms <= 2 * window_ms);
        let growth = reference(&self.points, now.at_ms, window_ms).map(|then| Growth {
            pct: (now.value - then.value) / then.value.max(1.0) * 100.0,
            from: then.value,
            to: now.value,
            over: Duration::from_millis((now.at_ms - then.at_ms) as u64),
        });
        self.points.push(now);
        thin(&mut self.points, MAX_POINTS);
        growth
    }

    /// How far back the history reaches from `now` (for "needs 5m of history, has 2m").
    pub fn reach(&self, now_ms: i64) -> Duration {
        self.points.first().map_or(Duration::ZERO, |p| {
            Duration::from_millis(now_ms.saturating_sub(p.at_ms).max(0) as u64)
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The point whose age is closest to the window among those that qualify (see the module doc).
fn reference(points: &[Point], now_ms: i64, window_ms: i64) -> Option<Point> {
    let earliest_age = window_ms - window_ms / 10;
    points
        .iter()
        .filter(|p| {
            let age = now_ms - p.at_ms;
            age >= earliest_age && age <= 2 * window_ms
        })
        // Oldest first, so `min_by_key` keeps the older of two equally close points.
        .min_by_key(|p| (now_ms - p.at_ms - window_ms).abs())
        .copied()
}

/// Drops points until at most `max` are left, each time the one closest to its predecessor
/// (never the oldest or the newest), keeping the history evenly spread.
fn thin(points: &mut Vec<Point>, max: usize) {
    while points.len() > max.max(2) {
        let densest = (1..points.len() - 1)
            .min_by_key(|&i| points[i].at_ms - points[i - 1].at_ms)
            .expect("more than two points");
        points.remove(densest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const WINDOW: Duration = Duration::from_secs(300);

    fn at(minutes: f64, value: f64) -> Point {
        Point {
            at_ms: (minutes * MIN as f64) as i64,
            value,
        }
    }

    /// Records `values` one minute apart (starting at minute 0); the growth of each run.
    fn every_minute(values: &[f64]) -> (History, Vec<Option<Growth>>) {
        let mut h = History::default();
        let growths = values
            .iter()
            .enumerate()
            .map(|(i, v)| h.record(at(i as f64, *v), WINDOW))
            .collect();
        (h, growths)
    }

    #[test]
    fn growth_is_unknown_until_a_point_is_window_old() {
        let (_, growths) = every_minute(&[1000.0, 1200.0, 1500.0, 2000.0, 3000.0, 4120.0]);
        assert!(growths[..5].iter().all(Option::is_none), "{growths:?}");
        let g = growths[5].unwrap();
        assert_eq!((g.from, g.to), (1000.0, 4120.0));
        assert_eq!(g.pct.round(), 312.0);
        assert_eq!(g.over, WINDOW);
    }

    #[test]
    fn jitter_within_a_tenth_of_the_window_still_counts() {
        let mut h = History::default();
        assert!(h.record(at(0.0, 100.0), WINDOW).is_none());
        // 4m35s later: 25s short of the window, within its tenth (30s).
        let g = h.record(at(4.0 + 35.0 / 60.0, 150.0), WINDOW).unwrap();
        assert_eq!(g.pct, 50.0);
        assert_eq!(g.over, Duration::from_secs(275));
        let mut h = History::default();
        h.record(at(0.0, 100.0), WINDOW);
        assert!(h.record(at(4.4, 150.0), WINDOW).is_none(), "31s short");
    }

    #[test]
    fn the_point_closest_to_the_window_is_the_reference() {
        let mut h = History {
            points: vec![at(0.0, 10.0), at(1.0, 20.0), at(1.4, 30.0), at(3.0, 40.0)],
        };
        // At minute 6.2: ages 6.2, 5.2, 4.8, 3.2 → 4.8 is 12s from 5m, 5.2 is 12s too: the older.
        let g = h.record(at(6.2, 60.0), WINDOW).unwrap();
        assert_eq!(g.from, 20.0);
        assert_eq!(g.over, Duration::from_secs(312));
    }

    #[test]
    fn points_older_than_twice_the_window_are_dropped_and_never_used() {
        let mut h = History::default();
        h.record(at(0.0, 100.0), WINDOW);
        // The check did not run for 11 minutes (daemon down): nothing says what the last 5m did.
        assert!(h.record(at(11.0, 900.0), WINDOW).is_none());
        assert_eq!(h.points, vec![at(11.0, 900.0)]);
        assert_eq!(h.reach(at(13.0, 0.0).at_ms), Duration::from_secs(120));
    }

    #[test]
    fn a_run_less_often_than_the_window_compares_with_the_previous_run() {
        let mut h = History::default();
        h.record(at(0.0, 100.0), WINDOW);
        let g = h.record(at(7.0, 400.0), WINDOW).unwrap();
        assert_eq!((g.pct, g.over), (300.0, Duration::from_secs(420)));
    }

    #[test]
    fn points_from_the_future_are_dropped() {
        let mut h = History {
            points: vec![at(10.0, 5.0)],
        };
        assert!(h.record(at(4.0, 7.0), WINDOW).is_none());
        assert_eq!(h.points, vec![at(4.0, 7.0)]);
    }

    #[test]
    fn growth_from_zero_is_measured_against_one() {
        let mut h = History {
            points: vec![at(0.0, 0.0)],
        };
        assert_eq!(h.record(at(5.0, 3.0), WINDOW).unwrap().pct, 300.0);
        let mut h = History {
            points: vec![at(0.0, 200.0)],
        };
        assert_eq!(h.record(at(5.0, 50.0), WINDOW).unwrap().pct, -75.0);
    }

    #[test]
    fn the_history_is_bounded_and_stays_evenly_spread() {
        let mut h = History::default();
        let second = 1.0 / 60.0;
        let mut last = None;
        for i in 0..2000 {
            last = h.record(at(i as f64 * second, i as f64), WINDOW);
            assert!(h.points.len() <= MAX_POINTS);
        }
        // The newest run is second 1999; the reference is about 300 s older.
        let g = last.unwrap();
        let off = (g.over.as_secs_f64() - 300.0).abs();
        assert!(off <= 600.0 / MAX_POINTS as f64 * 2.0, "{g:?}");
        let gaps: Vec<i64> = h
            .points
            .windows(2)
            .map(|w| w[1].at_ms - w[0].at_ms)
            .collect();
        let widest = *gaps.iter().max().unwrap();
        assert!(widest <= 4_000, "evenly thinned: widest gap {widest} ms");
    }

    #[test]
    fn the_memory_round_trips_and_a_foreign_one_is_ignored() {
        let (h, _) = every_minute(&[1.0, 2.0]);
        assert_eq!(History::from_memory(Some(&h.to_memory())), h);
        let foreign = serde_json::json!({"pods": {"a": 1}});
        assert_eq!(History::from_memory(Some(&foreign)), History::default());
        assert_eq!(History::from_memory(None), History::default());
    }
}
