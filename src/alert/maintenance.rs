//! `maintenance:` — recurring windows (a cron schedule in a time zone, plus a duration) during
//! which the alerts their matchers select are not notified: the nightly batch that saturates the
//! database, the Sunday patch window. A window is open when its latest start at or before now,
//! plus its duration, lies after now; the start comes from [`Trigger`], so a window at 02:30
//! Europe/Berlin behaves on DST days the way the scheduler's jobs do.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::matcher::{Labels, Matcher, matches_all};
use crate::config::Issues;
use crate::schedule::Trigger;

/// One recurring maintenance window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Shown in listings and logs.
    pub name: String,
    /// When the window opens: a 5-field cron expression (`0 2 * * 0`: Sundays 02:00).
    pub schedule: String,
    /// How long it stays open.
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub duration: Duration,
    /// IANA zone the schedule is read in (UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Alerts the window mutes (none: every alert).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
}

fn utc() -> String {
    "UTC".to_string()
}

impl MaintenanceWindow {
    /// The window's schedule as a trigger; Err for an invalid expression or zone (reported by
    /// [`MaintenanceWindow::validate`]).
    pub fn trigger(&self) -> Result<Trigger, String> {
        Trigger::cron(&self.schedule, &self.timezone)
    }

    /// When the window that contains `now` opened, if one does. An invalid schedule never opens.
    pub fn opened_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.trigger().ok()?.last_at_or_before(now)?;
        let length = TimeDelta::from_std(self.duration).ok()?;
        (start + length > now).then_some(start)
    }

    /// Whether the window is open at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.opened_at(now).is_some()
    }

    /// Whether the window mutes an alert with `labels` at `now`.
    pub fn mutes(&self, labels: &Labels, now: DateTime<Utc>) -> bool {
        matches_all(&self.matchers, labels) && self.active(now)
    }

    /// Problems with the window, by path relative to its mapping.
    pub fn validate(&self, issues: &mut Issues) {
        if self.name.trim().is_empty() {
            issues.at(&["name"], "`name` must not be empty");
        }
        if let Err(e) = crate::schedule::parse_cron(&self.schedule) {
            issues.at(&["schedule"], e);
        }
        if let Err(e) = crate::schedule::parse_timezone(&self.timezone) {
            issues.at(&["timezone"], e);
        }
        if self.duration.is_zero() {
            issues.at(&["duration"], "`duration` must be more than 0");
        } else if TimeDelta::from_std(self.duration).is_err() {
            issues.at(&["duration"], "`duration` is too long");
        }
    }
}

/// The name of the first window that mutes `labels` at `now`, if any.
pub fn in_maintenance<'a>(
    windows: &'a [MaintenanceWindow],
    labels: &Labels,
    now: DateTime<Utc>,
) -> Option<&'a str> {
    windows
        .iter()
        .find(|w| w.mutes(labels, now))
        .map(|w| w.name.as_str())
}

#[cfg(test)]
#[path = "maintenance_tests.rs"]
mod tests;
