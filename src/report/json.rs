//! The JSON report: [`SuiteReport`] serialized, pretty-printed. Its shape (`schema_version` 1):
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "generated_at": "2026-11-02T02:00:14.512Z",      // the only field that differs on regeneration
//!   "suite": "nightly",                               // trigger without `suite:`; `cli` for patrol run
//!   "run": {"id", "started_at", "finished_at", "revision", "trigger",
//!           "counts": {"ok", "warn", "crit", "error", "skipped"}},
//!   "duration_ms": 1234.5,
//!   "results": [ <one result line each, as `patrol run --format json` prints them> ],
//!   "scores": [ {"service", "score", "at", "model", "previous": number|null,
//!                "trend": [{"at", "score"}]} ],       // services of the run, then `_overall`
//!   "previous_run": { same as "run" } | null,        // previous run of the same trigger
//!   "changes": {"new_failures", "recovered", "still_failing", "new_checks":
//!               [ {"check", "series", "status", "previous": status|null, "message"} ]},
//!   "series": [ {"check", "series", "service", "unit", "status", "value", "message",
//!                "outside_band": bool,
//!                "points": [{"at", "value", "status", "mean", "lower", "upper"}]} ],
//!   "series_omitted": 0
//! }
//! ```
//!
//! Statuses are `ok`, `warn`, `crit`, `error`, `skipped`; times RFC 3339 in UTC. Fields are only
//! ever added within one `schema_version`.

use super::model::SuiteReport;

/// The JSON report, ending with a newline.
pub fn render(report: &SuiteReport) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
}

/// The top-level keys of the JSON report, in order.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "schema_version",
    "generated_at",
    "suite",
    "run",
    "duration_ms",
    "results",
    "scores",
    "previous_run",
    "changes",
    "series",
    "series_omitted",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::sample_report;

    #[test]
    fn the_json_has_the_documented_keys_and_reads_back() {
        let report = sample_report();
        let text = render(&report);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = TOP_LEVEL_KEYS.to_vec();
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected);
        assert_eq!(v["schema_version"], 1);
        let back: SuiteReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
