//! How a method's verdicts compare with the labelled windows.
//!
//! Event level (what a pager sees):
//! - an *alert* is a sample judged anomalous; an *episode* is a maximal run of consecutive
//!   alerts (in file order, over the rows that have a value);
//! - a labelled window `[from, to]` is *detected* when an alert falls in `[from, to + grace]`;
//! - a *false alarm* is an episode none of whose alerts falls in any window + grace;
//! - recall = detected windows / windows; precision = detected windows / (detected windows +
//!   false alarms) — each window counts once however many episodes it caused; F1 = their
//!   harmonic mean;
//! - delay = first alert in `[from, to + grace]` − `from`, averaged over detected windows.
//!
//! Alerts before the probation end are ignored (every method is still learning; no labels lie
//! there).
//!
//! Ranking quality of `anomaly_score`, sample level, pooled over all series: samples inside a
//! window are positives, samples outside every window + grace are negatives (grace samples and
//! probation are left out); ROC AUC (probability a positive outranks a negative, ties count
//! half) and average precision (area under the precision–recall curve, step-wise).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// A labelled anomaly.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub kind: String,
}

/// One judged sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub score: f64,
    pub alert: bool,
}

/// The scoring rules.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// How long after a window's end an alert still counts for it.
    pub grace: TimeDelta,
    /// Alerts and samples before this are not scored.
    pub probation_end: DateTime<Utc>,
}

impl Rules {
    fn covered(&self, t: DateTime<Utc>, windows: &[Window]) -> bool {
        windows
            .iter()
            .any(|w| t >= w.from && t <= w.to + self.grace)
    }
}

/// Event-level counts, summable over series.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Events {
    pub windows: usize,
    pub detected: usize,
    pub false_alarms: usize,
    /// Alerting samples after probation.
    pub alerts: usize,
    /// Seconds from window start to its first alert, per detected window.
    pub delays_secs: Vec<f64>,
    /// kind → (windows, detected).
    pub by_kind: BTreeMap<String, (usize, usize)>,
}

impl Events {
    pub fn add(&mut self, other: &Events) {
        self.windows += other.windows;
        self.detected += other.detected;
        self.false_alarms += other.false_alarms;
        self.alerts += other.alerts;
        self.delays_secs.extend_from_slice(&other.delays_secs);
        for (kind, (w, d)) in &other.by_kind {
            let e = self.by_kind.entry(kind.clone()).or_default();
            e.0 += w;
            e.1 += d;
        }
    }

    /// None when nothing was alerted at all.
    pub fn precision(&self) -> Option<f64> {
        let claimed = self.detected + self.false_alarms;
        (claimed > 0).then(|| self.detected as f64 / claimed as f64)
    }

    /// None when there is nothing to find.
    pub fn recall(&self) -> Option<f64> {
        (self.windows > 0).then(|| self.detected as f64 / self.windows as f64)
    }

    /// 0 when either side is missing or zero.
    pub fn f1(&self) -> f64 {
        match (self.precision(), self.recall()) {
            (Some(p), Some(r)) if p + r > 0.0 => 2.0 * p * r / (p + r),
            _ => 0.0,
        }
    }

    pub fn mean_delay_secs(&self) -> Option<f64> {
        (!self.delays_secs.is_empty())
            .then(|| self.delays_secs.iter().sum::<f64>() / self.delays_secs.len() as f64)
    }
}

/// Event-level counts of one series' verdicts (`points` in file order).
pub fn events(points: &[Point], windows: &[Window], rules: &Rules) -> Events {
    let scored: Vec<&Point> = points
        .iter()
        .filter(|p| p.t >= rules.probation_end)
        .collect();
    let mut ev = Events {
        windows: windows.len(),
        alerts: scored.iter().filter(|p| p.alert).count(),
        ..Events::default()
    };
    for w in windows {
        let first = scored
            .iter()
            .filter(|p| p.alert && p.t >= w.from && p.t <= w.to + rules.grace)
            .map(|p| p.t)
            .min();
        let entry = ev.by_kind.entry(w.kind.clone()).or_default();
        entry.0 += 1;
        if let Some(first) = first {
            entry.1 += 1;
            ev.detected += 1;
            ev.delays_secs
                .push((first - w.from).num_milliseconds() as f64 / 1000.0);
        }
    }
    ev.false_alarms = episodes(&scored)
        .iter()
        .filter(|ep| !ep.iter().any(|p| rules.covered(p.t, windows)))
        .count();
    ev
}

/// Maximal runs of consecutive alerting points.
fn episodes<'a>(points: &[&'a Point]) -> Vec<Vec<&'a Point>> {
    let mut out: Vec<Vec<&Point>> = Vec::new();
    let mut current: Vec<&Point> = Vec::new();
    for p in points {
        if p.alert {
            current.push(p);
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// (score, anomalous) for every sample that counts for ranking: inside a window (positive) or
/// outside every window + grace (negative), after probation.
pub fn ranked(points: &[Point], windows: &[Window], rules: &Rules) -> Vec<(f64, bool)> {
    points
        .iter()
        .filter(|p| p.t >= rules.probation_end)
        .filter_map(|p| {
            let inside = windows.iter().any(|w| p.t >= w.from && p.t <= w.to);
            if inside {
                Some((p.score, true))
            } else if rules.covered(p.t, windows) {
                None
            } else {
                Some((p.score, false))
            }
        })
        .collect()
}

/// ROC AUC by ranks (Mann–Whitney U, ties get their average rank). None without both classes.
pub fn roc_auc(samples: &[(f64, bool)]) -> Option<f64> {
    let positives = samples.iter().filter(|s| s.1).count();
    let negatives = samples.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = samples.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 … j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Average precision: Σ over distinct score thresholds (high to low) of precision × the recall
/// gained there. None without positives.
pub fn average_precision(samples: &[(f64, bool)]) -> Option<f64> {
    let positives = samples.iter().filter(|s| s.1).count();
    if positives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = samples.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        let mut gained = 0;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            gained += usize::from(sorted[j].1);
            j += 1;
        }
        tp += gained;
        seen += j - i;
        ap += (tp as f64 / seen as f64) * (gained as f64 / positives as f64);
        i = j;
    }
    Some(ap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_704_067_200 + min * 60, 0).unwrap()
    }

    fn window(from: i64, to: i64, kind: &str) -> Window {
        Window {
            from: at(from),
            to: at(to),
            kind: kind.into(),
        }
    }

    fn rules() -> Rules {
        Rules {
            grace: TimeDelta::minutes(10),
            probation_end: at(0),
        }
    }

    /// Points every 5 minutes from 0 to `until`, alerting at the given minutes.
    fn points(until: i64, alerts: &[i64]) -> Vec<Point> {
        (0..=until / 5)
            .map(|i| Point {
                t: at(i * 5),
                score: 0.0,
                alert: alerts.contains(&(i * 5)),
            })
            .collect()
    }

    #[test]
    fn detections_false_alarms_and_delay_by_hand() {
        let windows = [window(100, 120, "spike"), window(300, 330, "shift")];
        // 110: inside window 1 (delay 10m); 125, 130: one episode in window 1's grace (not
        // false); 200, 205: one false episode; 250: another; window 2 is missed.
        let pts = points(400, &[110, 125, 130, 200, 205, 250]);
        let ev = events(&pts, &windows, &rules());
        assert_eq!((ev.windows, ev.detected, ev.false_alarms), (2, 1, 2));
        assert_eq!(ev.alerts, 6);
        assert_eq!(ev.delays_secs, [600.0]);
        assert_eq!(ev.precision(), Some(1.0 / 3.0));
        assert_eq!(ev.recall(), Some(0.5));
        let f1 = 2.0 * (1.0 / 3.0) * 0.5 / (1.0 / 3.0 + 0.5);
        assert!((ev.f1() - f1).abs() < 1e-12);
        assert_eq!(ev.by_kind["spike"], (1, 1));
        assert_eq!(ev.by_kind["shift"], (1, 0));
    }

    #[test]
    fn an_alert_in_the_grace_detects_and_one_after_it_does_not() {
        let windows = [window(100, 100, "spike")];
        let late = events(&points(200, &[110]), &windows, &rules());
        assert_eq!((late.detected, late.false_alarms), (1, 0));
        assert_eq!(late.delays_secs, [600.0]);
        let too_late = events(&points(200, &[115]), &windows, &rules());
        assert_eq!((too_late.detected, too_late.false_alarms), (0, 1));
        assert_eq!(too_late.precision(), Some(0.0));
        assert_eq!(too_late.f1(), 0.0);
    }

    #[test]
    fn an_episode_touching_a_window_is_not_a_false_alarm_and_probation_is_ignored() {
        let windows = [window(100, 105, "spike")];
        let r = Rules {
            probation_end: at(50),
            ..rules()
        };
        // 10, 15: probation; 90…140 one long episode touching the window.
        let alerts: Vec<i64> = (0..=10).map(|i| 90 + i * 5).chain([10, 15]).collect();
        let ev = events(&points(200, &alerts), &windows, &r);
        assert_eq!((ev.detected, ev.false_alarms, ev.alerts), (1, 0, 11));
        assert_eq!(ev.precision(), Some(1.0));
        let none = events(&points(200, &[]), &windows, &r);
        assert_eq!((none.precision(), none.f1()), (None, 0.0));
    }

    #[test]
    fn sums_over_series() {
        let mut total = Events::default();
        let a = events(&points(200, &[100]), &[window(100, 100, "spike")], &rules());
        let b = events(&points(200, &[50]), &[window(100, 100, "spike")], &rules());
        total.add(&a);
        total.add(&b);
        assert_eq!(
            (total.windows, total.detected, total.false_alarms),
            (2, 1, 1)
        );
        assert_eq!(total.by_kind["spike"], (2, 1));
        assert_eq!(total.mean_delay_secs(), Some(0.0));
    }

    #[test]
    fn ranking_keeps_positives_and_clear_negatives_only() {
        let windows = [window(100, 110, "spike")];
        let mut pts = points(150, &[]);
        for p in &mut pts {
            p.score = if p.t >= at(100) && p.t <= at(110) {
                0.9
            } else {
                0.1
            };
        }
        let r = ranked(&pts, &windows, &rules());
        // 31 points, minus 115 and 120 (grace) = 29; 3 positives.
        assert_eq!(r.len(), 29);
        assert_eq!(r.iter().filter(|s| s.1).count(), 3);
        assert_eq!(roc_auc(&r), Some(1.0));
        assert_eq!(average_precision(&r), Some(1.0));
    }

    #[test]
    fn auc_and_average_precision_on_hand_made_rankings() {
        // Scores: positives 0.9, 0.4; negatives 0.8, 0.3, 0.1.
        let s = [
            (0.9, true),
            (0.8, false),
            (0.4, true),
            (0.3, false),
            (0.1, false),
        ];
        // Pairs (pos > neg): 0.9 beats 3, 0.4 beats 2 → 5 of 6.
        assert!((roc_auc(&s).unwrap() - 5.0 / 6.0).abs() < 1e-12);
        // AP = 1/1 · 1/2 + 2/3 · 1/2.
        assert!((average_precision(&s).unwrap() - (0.5 + 1.0 / 3.0)).abs() < 1e-12);
        // All tied: AUC 0.5, AP = the positive share.
        let tied = [(0.5, true), (0.5, false), (0.5, false), (0.5, false)];
        assert_eq!(roc_auc(&tied), Some(0.5));
        assert_eq!(average_precision(&tied), Some(0.25));
        // Perfectly wrong.
        assert_eq!(roc_auc(&[(0.1, true), (0.9, false)]), Some(0.0));
        assert_eq!(roc_auc(&[(0.1, true)]), None);
        assert_eq!(average_precision(&[(0.1, false)]), None);
    }
}
