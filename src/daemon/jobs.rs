//! Scheduler jobs from rules: every check with a `schedule` or `every`, and every suite.

use std::time::Duration;

use chrono_tz::Tz;

use crate::config::{Check, RuleSet};
use crate::schedule::{Job, JobKey, Trigger, parse_cron, parse_timezone};

/// The jobs of `rules`; cron schedules without their own `timezone` use `default_tz`.
pub fn jobs_from(rules: &RuleSet, default_tz: Tz) -> Vec<Job> {
    let mut jobs: Vec<Job> = rules
        .checks
        .iter()
        .filter_map(|c| check_job(c, default_tz))
        .collect();
    for (name, suite) in &rules.suites {
        let Ok(cron) = parse_cron(&suite.schedule) else {
            continue;
        };
        let tz = suite
            .timezone
            .as_deref()
            .and_then(|t| parse_timezone(t).ok())
            .unwrap_or(default_tz);
        jobs.push(Job {
            key: JobKey::Suite(name.clone()),
            trigger: Trigger::Cron { cron, tz },
            jitter: Duration::ZERO,
            catch_up: suite.catch_up.unwrap_or(Check::DEFAULT_CATCH_UP),
        });
    }
    jobs
}

/// The job of one check, when it has a `schedule` or `every`.
pub fn check_job(check: &Check, default_tz: Tz) -> Option<Job> {
    let c = &check.common;
    let trigger = match (&c.schedule, c.every) {
        (Some(expr), _) => Trigger::Cron {
            cron: parse_cron(expr).ok()?,
            tz: c
                .timezone
                .as_deref()
                .and_then(|t| parse_timezone(t).ok())
                .unwrap_or(default_tz),
        },
        (None, Some(every)) => Trigger::Every(every),
        (None, None) => return None,
    };
    Some(Job {
        key: JobKey::Check(c.name.clone()),
        trigger,
        jitter: c.jitter.unwrap_or(Duration::ZERO),
        catch_up: check.catch_up(),
    })
}

/// The system's time zone (from /etc/localtime or `TZ`), or UTC when it cannot be named.
pub fn system_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}
