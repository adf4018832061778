//! Event windows: known events (a sale, a batch job, a maintenance window) during which the band
//! is widened (`k`) or not enforced (`disable`), and whose samples may be kept out of learning
//! (`learn: false`), so a planned surge neither alerts nor becomes the new normal.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::maintenance::MaintenanceWindow;
use crate::schedule::Trigger;

/// One known event, recurring (`schedule` + `duration`), fixed (`from`/`to`) or borrowed from a
/// named `maintenance:` window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventWindow {
    /// Shown in results judged inside the window (default: what defines it).
    #[serde(default)]
    pub name: Option<String>,
    /// When the event starts: a 5-field cron expression (`0 20 11 11 *`: 11 Nov 20:00).
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA zone of `schedule` (UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// How long a scheduled event lasts.
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub duration: Option<Duration>,
    /// A one-off event: from this instant (RFC 3339) …
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub from: Option<DateTime<Utc>>,
    /// … until this one.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to: Option<DateTime<Utc>>,
    /// The name of a `maintenance:` window: the event is open whenever it is.
    #[serde(default)]
    pub maintenance: Option<String>,
    /// Band half-width in the window, in the method's standard deviations (wider than usual).
    #[serde(default)]
    pub k: Option<f64>,
    /// No band at all in the window: nothing is anomalous.
    #[serde(default)]
    pub disable: bool,
    /// Whether samples in the window are learned (default true; false keeps the surge out).
    #[serde(default = "yes")]
    pub learn: bool,
}

fn yes() -> bool {
    true
}

impl EventWindow {
    /// What the window is called in messages.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if let Some(m) = &self.maintenance {
            return format!("maintenance {m}");
        }
        if let Some(s) = &self.schedule {
            return format!("window {s}");
        }
        match (self.from, self.to) {
            (Some(f), Some(t)) => format!("window {} – {}", f.to_rfc3339(), t.to_rfc3339()),
            _ => "window".to_string(),
        }
    }

    /// The one definition problem of the window, if any.
    pub fn problem(&self) -> Result<(), String> {
        let kinds = [
            self.schedule.is_some(),
            self.from.is_some() || self.to.is_some(),
            self.maintenance.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "a window needs exactly one of schedule (+ duration), from/to, or maintenance"
                    .to_string(),
            );
        }
        if let Some(s) = &self.schedule {
            let tz = self.timezone.as_deref().unwrap_or("UTC");
            Trigger::cron(s, tz).map_err(|e| format!("window schedule {s:?}: {e}"))?;
            if self.duration.is_none_or(|d| d.is_zero()) {
                return Err(format!("window schedule {s:?} needs a duration, e.g. 6h"));
            }
        }
        if (self.from.is_some() || self.to.is_some())
            && !matches!((self.from, self.to), (Some(f), Some(t)) if f < t)
        {
            return Err("a window's from must come before its to, and both are needed".to_string());
        }
        if let Some(k) = self.k
            && !(k > 0.0 && k.is_finite())
        {
            return Err(format!("window k must be a positive number, got {k}"));
        }
        Ok(())
    }

    /// Whether the event is on at `t`. `maintenance` holds the rules' maintenance windows (a
    /// reference to an unknown one is never open; validation reports it).
    pub fn is_open(&self, t: DateTime<Utc>, maintenance: &[MaintenanceWindow]) -> bool {
        if let Some(name) = &self.maintenance {
            return maintenance.iter().any(|m| &m.name == name && m.active(t));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            return from <= t && t < to;
        }
        let (Some(s), Some(d)) = (&self.schedule, self.duration) else {
            return false;
        };
        let tz = self.timezone.as_deref().unwrap_or("UTC");
        let Some(start) = Trigger::cron(s, tz)
            .ok()
            .and_then(|tr| tr.last_at_or_before(t))
        else {
            return false;
        };
        TimeDelta::from_std(d).is_ok_and(|len| start + len > t)
    }
}

/// The first of `windows` open at `t`.
pub fn open_at<'a>(
    windows: &'a [EventWindow],
    t: DateTime<Utc>,
    maintenance: &[MaintenanceWindow],
) -> Option<&'a EventWindow> {
    windows.iter().find(|w| w.is_open(t, maintenance))
}
