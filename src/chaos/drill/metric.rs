//! Conditions on a drill's measured quantities (`verify:`): counts (`lost: eq(0)`), ratios
//! (`success_rate: ge(0.99)`) and durations (`reconnect_p99: lt(5s)`).
//!
//! A duration condition is written with durations as arguments (`lt(5s)`, `between(1s, 2500ms)`; a
//! bare number is seconds, as everywhere in patrol). It is evaluated in milliseconds: the arguments
//! are converted once and the text handed to [`crate::condition::Condition`], so the operators and
//! their error messages stay those of every other condition.

use std::fmt;

use crate::condition::Condition;
use crate::result::{Value, format_number};

/// What a verified quantity measures, which decides how its condition is read and its value shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Events, requests: a plain number.
    Count,
    /// A fraction between 0 and 1.
    Ratio,
    /// A duration, held in milliseconds.
    Duration,
}

impl Quantity {
    /// A value for people: `1.25s`, `340ms`, `0.995`, `12`.
    pub fn show(self, value: f64) -> String {
        match self {
            Quantity::Count | Quantity::Ratio => format_number(value),
            Quantity::Duration => show_millis(value),
        }
    }
}

/// `340ms`, `1.25s`, `2m5s`.
pub fn show_millis(ms: f64) -> String {
    if !ms.is_finite() {
        return format_number(ms);
    }
    if ms < 1000.0 {
        return format!("{}ms", format_number(ms.round()));
    }
    if ms < 60_000.0 {
        return format!("{}s", format_number((ms / 10.0).round() / 100.0));
    }
    let secs = (ms / 1000.0).round() as u64;
    format!("{}m{}s", secs / 60, secs % 60)
}

/// A condition on one quantity, as written and as evaluated.
#[derive(Clone, Debug)]
pub struct MetricCondition {
    source: String,
    quantity: Quantity,
    parsed: Result<Condition, String>,
}

impl MetricCondition {
    pub fn parse(source: &str, quantity: Quantity) -> MetricCondition {
        let source = source.trim().to_string();
        let parsed = match quantity {
            Quantity::Count | Quantity::Ratio => Ok(plain(&source)),
            Quantity::Duration => in_millis(&source).map(|text| Condition::parse(&text)),
        }
        .and_then(|c| match c.error() {
            Some(e) => Err(e.to_string()),
            None => Ok(c),
        });
        MetricCondition {
            source,
            quantity,
            parsed,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn quantity(&self) -> Quantity {
        self.quantity
    }

    pub fn error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    /// Whether `value` (milliseconds for a duration) satisfies the condition; never for a
    /// malformed one.
    pub fn holds(&self, value: f64) -> bool {
        match &self.parsed {
            Ok(c) => c.matches(&Value::Num(value)),
            Err(_) => false,
        }
    }
}

impl fmt::Display for MetricCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A bare number means `eq`, as in rule files.
fn plain(source: &str) -> Condition {
    match source.parse::<f64>() {
        Ok(n) => Condition::equals_number(n),
        Err(_) => Condition::parse(source),
    }
}

/// `lt(5s)` → `lt(5000)`; a bare duration (`5s`) is refused: "equal to 5 seconds" is never what a
/// drill means.
fn in_millis(source: &str) -> Result<String, String> {
    let (Some(open), true) = (source.find('('), source.ends_with(')')) else {
        return Err(format!(
            "condition {source:?} is not of the form op(duration), e.g. lt(5s)"
        ));
    };
    let op = source[..open].trim();
    if matches!(op, "matches" | "eq" | "ne" | "in") {
        return Err(format!(
            "{op}() cannot compare durations; use lt, le, gt, ge, between or outside (e.g. lt(5s))"
        ));
    }
    let inner = &source[open + 1..source.len() - 1];
    let mut args = Vec::new();
    for arg in inner.split(',') {
        let ms = crate::config::duration::parse(arg)
            .map_err(|e| format!("condition {source:?}: {e}"))?
            .as_secs_f64()
            * 1000.0;
        args.push(format_number(ms));
    }
    Ok(format!("{op}({})", args.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_conditions_compare_milliseconds() {
        let c = MetricCondition::parse("lt(5s)", Quantity::Duration);
        assert_eq!(c.error(), None);
        assert!(c.holds(4999.0));
        assert!(!c.holds(5000.0));
        let c = MetricCondition::parse("between(1s, 2500ms)", Quantity::Duration);
        assert!(c.holds(2500.0) && c.holds(1000.0) && !c.holds(999.0));
        let c = MetricCondition::parse("le(2)", Quantity::Duration);
        assert!(
            c.holds(2000.0) && !c.holds(2001.0),
            "a bare number is seconds"
        );
    }

    #[test]
    fn malformed_duration_conditions_say_why() {
        for (src, want) in [
            ("5s", "not of the form"),
            ("lt(five)", "invalid duration"),
            ("eq(5s)", "cannot compare durations"),
            ("lt(1s, 2s)", "takes 1 argument"),
            ("between(3s, 1s)", "lower bound is above"),
        ] {
            let c = MetricCondition::parse(src, Quantity::Duration);
            let e = c.error().unwrap_or_else(|| panic!("{src} should fail"));
            assert!(e.contains(want), "{src}: {e}");
            assert!(!c.holds(0.0));
        }
    }

    #[test]
    fn count_conditions_are_plain_conditions() {
        let c = MetricCondition::parse("eq(0)", Quantity::Count);
        assert!(c.holds(0.0) && !c.holds(1.0));
        let c = MetricCondition::parse("0", Quantity::Count);
        assert!(c.holds(0.0) && !c.holds(3.0));
        let c = MetricCondition::parse("ge(0.99)", Quantity::Ratio);
        assert!(c.holds(0.995) && !c.holds(0.98));
        assert!(
            MetricCondition::parse("gt(x)", Quantity::Count)
                .error()
                .is_some()
        );
    }

    #[test]
    fn durations_show_in_human_units() {
        assert_eq!(show_millis(340.4), "340ms");
        assert_eq!(show_millis(1250.0), "1.25s");
        assert_eq!(show_millis(125_000.0), "2m5s");
    }
}
