//! Schedules: parsing 5-field cron expressions and time zones (validation and the daemon), when a
//! job fires ([`Trigger`], correct across DST, with a stable [`jitter_offset`]), and the
//! [`Scheduler`] that starts the daemon's checks and suites on time, never twice at once.
//! croner, not the `cron` crate: it takes standard 5-field expressions and numbers Sunday 0;
//! `trigger.rs` maps its wall-clock matches to instants across DST.

mod clock;
mod scheduler;
mod stats;
mod trigger;

pub use clock::{Clock, ManualClock, SystemClock};
pub use scheduler::{Job, JobKey, JobRunner, Scheduler, SchedulerHandle};
pub use stats::{JobStats, LatencyHistogram, LatenessSummary, ScheduleStats};
pub use trigger::{Trigger, jitter_offset};

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!("unknown time zone {name:?}; use an IANA name such as Europe/Berlin or UTC")
    })
}

/// Parses a standard 5-field cron expression (`minute hour day-of-month month day-of-week`).
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && !expr.trim().starts_with('@') {
        return Err(format!(
            "cron expression {expr:?} has {fields} fields; write 5: minute hour day-of-month month day-of-week"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn five_fields_parse_and_others_do_not() {
        assert!(parse_cron("0 2 * * *").is_ok());
        assert!(parse_cron("*/5 * * * 1-5").is_ok());
        assert!(parse_cron("@daily").is_ok());
        assert!(parse_cron("0 0 2 * * *").unwrap_err().contains("6 fields"));
        assert!(
            parse_cron("61 * * * *")
                .unwrap_err()
                .contains("invalid cron")
        );
        assert!(parse_cron("bogus").is_err());
    }

    #[test]
    fn next_run_is_found() {
        let c = parse_cron("0 2 * * *").unwrap();
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap();
        let next = c.find_next_occurrence(&from, false).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap());
    }
}
