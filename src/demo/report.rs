//! What the demo prints about its rounds, and how it decides that an anomaly was caught. Pure
//! functions of results, so the wording and the verdict are tested without running anything.

use crate::result::{CheckResult, Status, StatusCounts, format_number};

/// Longest error message quoted in a progress line.
const ERROR_EXCERPT: usize = 90;

/// Whether `r` is a baseline catch: a value outside the band it was judged against, with a status
/// the baseline raised (`warn` or `crit`).
pub fn is_baseline_anomaly(r: &CheckResult) -> bool {
    let (Some(band), Some(x)) = (&r.baseline, r.value.as_ref().and_then(|v| v.as_f64())) else {
        return false;
    };
    r.status >= Status::Warn && r.status != Status::Error && (x > band.upper || x < band.lower)
}

/// The watched checks split into those caught outside their band and those missed.
pub fn verdict<'a>(
    results: &'a [CheckResult],
    watched: &[&'a str],
) -> (Vec<&'a CheckResult>, Vec<&'a str>) {
    let mut caught = Vec::new();
    let mut missed = Vec::new();
    for name in watched {
        match results
            .iter()
            .find(|r| r.check == *name && is_baseline_anomaly(r))
        {
            Some(r) => caught.push(r),
            None => missed.push(*name),
        }
    }
    (caught, missed)
}

/// The closing line: what was caught, and what was missed.
pub fn verdict_line(caught: &[&CheckResult], missed: &[&str]) -> String {
    let names: Vec<String> = caught
        .iter()
        .map(|r| {
            format!(
                "{} {} > {}",
                r.check,
                value_text(r),
                format_number(round1(r.baseline.as_ref().map_or(0.0, |b| b.upper)))
            )
        })
        .collect();
    let noun = if caught.len() == 1 {
        "anomaly"
    } else {
        "anomalies"
    };
    let mut line = format!(
        "caught: {} {noun} outside their baseline band",
        caught.len()
    );
    if !names.is_empty() {
        line.push_str(&format!(" ({})", names.join(", ")));
    }
    if !missed.is_empty() {
        line.push_str(&format!("; missed: {}", missed.join(", ")));
    }
    line
}

/// One line per round: status counts, the watched checks' values and bands, and the first error.
pub fn progress_line(
    label: &str,
    results: &[CheckResult],
    watched: &[&str],
    warmup: u64,
) -> String {
    let mut line = format!("{label}  {}", counts_text(&StatusCounts::tally(results)));
    for name in watched {
        if let Some(r) = results.iter().find(|r| r.check == *name) {
            line.push_str(&format!(" · {name} {}", watched_text(r, warmup)));
        }
    }
    if let Some(e) = results.iter().find(|r| r.status == Status::Error) {
        line.push_str(&format!(
            " · {} error: {}",
            e.check,
            excerpt(&e.message, ERROR_EXCERPT)
        ));
    }
    line
}

/// `4 ok, 1 warn`: the non-zero counts, gravest last.
pub fn counts_text(c: &StatusCounts) -> String {
    let parts: Vec<String> = [
        (c.ok, "ok"),
        (c.warn, "warn"),
        (c.crit, "crit"),
        (c.error, "error"),
        (c.skipped, "skipped"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, s)| format!("{n} {s}"))
    .collect();
    if parts.is_empty() {
        "no results".into()
    } else {
        parts.join(", ")
    }
}

/// A watched check's value and where its baseline stands: still learning, or the band.
fn watched_text(r: &CheckResult, warmup: u64) -> String {
    if r.value.is_none() {
        return r.status.to_string();
    }
    let learned = r.baseline.as_ref().map_or(0, |b| b.samples);
    let state = match &r.baseline {
        Some(b) if learned >= warmup => {
            format!(
                "band [{}, {}]",
                format_number(round1(b.lower)),
                format_number(round1(b.upper))
            )
        }
        _ => format!("learning {}/{warmup}", (learned + 1).min(warmup)),
    };
    let flag = if is_baseline_anomaly(r) {
        format!(" {}!", r.status)
    } else {
        String::new()
    };
    format!("{} ({state}){flag}", value_text(r))
}

fn value_text(r: &CheckResult) -> String {
    let v = match r.value.as_ref() {
        Some(v) => v
            .as_f64()
            .map_or_else(|| v.to_string(), |x| format_number(round1(x))),
        None => "-".into(),
    };
    if r.unit.is_empty() {
        v
    } else {
        format!("{v} {}", r.unit)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Band, Value};

    fn result(
        check: &str,
        status: Status,
        value: Option<f64>,
        band: Option<(f64, f64, u64)>,
    ) -> CheckResult {
        CheckResult {
            unit: "ms".into(),
            message: if status == Status::Error {
                "connection refused".into()
            } else {
                String::new()
            },
            baseline: band.map(|(lower, upper, samples)| Band {
                mean: (lower + upper) / 2.0,
                stddev: (upper - lower) / 8.0,
                lower,
                upper,
                samples,
                ..Band::default()
            }),
            ..CheckResult::new(check, "", status, value.map(Value::Num))
        }
    }

    #[test]
    fn an_anomaly_is_a_raised_status_outside_the_band() {
        assert!(is_baseline_anomaly(&result(
            "a",
            Status::Warn,
            Some(200.0),
            Some((10.0, 30.0, 10))
        )));
        assert!(is_baseline_anomaly(&result(
            "a",
            Status::Crit,
            Some(1.0),
            Some((10.0, 30.0, 10))
        )));
        // Inside the band, or outside while still learning (status ok): not a catch.
        assert!(!is_baseline_anomaly(&result(
            "a",
            Status::Warn,
            Some(20.0),
            Some((10.0, 30.0, 10))
        )));
        assert!(!is_baseline_anomaly(&result(
            "a",
            Status::Ok,
            Some(200.0),
            Some((10.0, 30.0, 3))
        )));
        // Could not measure, or no baseline: not a catch.
        assert!(!is_baseline_anomaly(&result(
            "a",
            Status::Error,
            None,
            None
        )));
        assert!(!is_baseline_anomaly(&result(
            "a",
            Status::Crit,
            Some(200.0),
            None
        )));
    }

    #[test]
    fn verdict_names_caught_and_missed_checks() {
        let results = vec![
            result("lat", Status::Warn, Some(203.4), Some((12.0, 31.26, 10))),
            result("pending", Status::Ok, Some(41.0), Some((30.0, 52.0, 10))),
        ];
        let (caught, missed) = verdict(&results, &["lat", "pending"]);
        assert_eq!(caught.len(), 1);
        assert_eq!(missed, ["pending"]);
        assert_eq!(
            verdict_line(&caught, &missed),
            "caught: 1 anomaly outside their baseline band (lat 203.4 ms > 31.3); missed: pending"
        );
    }

    #[test]
    fn verdict_line_counts_in_plural() {
        let results = vec![
            result("lat", Status::Warn, Some(200.0), Some((12.0, 31.0, 10))),
            result("pending", Status::Crit, Some(400.0), Some((30.0, 52.0, 10))),
        ];
        let (caught, missed) = verdict(&results, &["lat", "pending"]);
        assert!(missed.is_empty());
        assert!(verdict_line(&caught, &missed).starts_with(
            "caught: 2 anomalies outside their baseline band (lat 200 ms > 31, pending 400 ms > 52)"
        ));
    }

    #[test]
    fn progress_shows_learning_then_the_band() {
        let learning = vec![result(
            "lat",
            Status::Ok,
            Some(21.26),
            Some((21.0, 21.0, 3)),
        )];
        assert_eq!(
            progress_line("round  4/25", &learning, &["lat"], 10),
            "round  4/25  1 ok · lat 21.3 ms (learning 4/10)"
        );
        let first = vec![result("lat", Status::Ok, Some(20.0), None)];
        assert_eq!(
            progress_line("round  1/25", &first, &["lat"], 10),
            "round  1/25  1 ok · lat 20 ms (learning 1/10)"
        );
        let judged = vec![result(
            "lat",
            Status::Warn,
            Some(90.0),
            Some((12.04, 31.0, 10)),
        )];
        assert_eq!(
            progress_line("round 11/25", &judged, &["lat"], 10),
            "round 11/25  1 warn · lat 90 ms (band [12, 31]) warn!"
        );
    }

    #[test]
    fn progress_quotes_the_first_error() {
        let results = vec![
            result("lat", Status::Error, None, None),
            result("x", Status::Ok, Some(1.0), None),
        ];
        assert_eq!(
            progress_line("round  1/25", &results, &["lat"], 10),
            "round  1/25  1 ok, 1 error · lat error · lat error: connection refused"
        );
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}
