//! Schedules. Today: parsing and validating 5-field cron expressions (the daemon's scheduler
//! builds on this). croner, not the `cron` crate: it takes standard 5-field expressions, numbers
//! Sunday 0 and does not skip a 02:00 run on a DST-change day.

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
