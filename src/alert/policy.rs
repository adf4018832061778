//! `alert:` on a check: when its results become an alert and how often people hear about it.
//! Every field has a default, so `alert: {}` (or no `alert:` at all) means "fire on the first bad
//! result, resolve on the first good one, remind every 4h, damp flapping".

use std::num::NonZeroU32;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::duration::{self, DurationSchema};

/// How a check's results turn into alert notifications.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertPolicy {
    /// Bad results (warn, crit, error) in a row before the alert fires.
    #[serde(default = "one")]
    pub failure_threshold: NonZeroU32,
    /// Good (ok) results in a row before a firing alert resolves.
    #[serde(default = "one")]
    pub success_threshold: NonZeroU32,
    /// Whether receivers hear when the alert resolves.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// A still-firing alert is notified again after this long (`0s`: never).
    #[serde(default = "four_hours", with = "duration")]
    #[schemars(with = "DurationSchema")]
    pub repeat_interval: Duration,
    /// Flap damping: a check changing between firing and resolved too often is notified once as
    /// flapping instead of at every change.
    #[serde(default)]
    pub flap: FlapPolicy,
}

/// When an alert counts as flapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlapPolicy {
    /// Changes between firing and resolved are counted over this window (`0s`: no damping).
    #[serde(default = "thirty_minutes", with = "duration")]
    #[schemars(with = "DurationSchema")]
    pub window: Duration,
    /// More changes than this within the window make the alert flapping; it calms down once at
    /// most half as many remain in the window.
    #[serde(default = "six")]
    pub max_flips: NonZeroU32,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            failure_threshold: one(),
            success_threshold: one(),
            send_resolved: yes(),
            repeat_interval: four_hours(),
            flap: FlapPolicy::default(),
        }
    }
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy {
            window: thirty_minutes(),
            max_flips: six(),
        }
    }
}

impl AlertPolicy {
    /// The check's own `alert:` policy, or the defaults when it has none.
    pub fn of(check: &crate::config::Check) -> AlertPolicy {
        check.common.alert.clone().unwrap_or_default()
    }
}

impl FlapPolicy {
    /// Whether flap damping is on at all (a zero window turns it off).
    pub fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// Flapping starts with more changes than this in the window.
    pub fn start_above(&self) -> usize {
        self.max_flips.get() as usize
    }

    /// Flapping stops with at most this many changes left in the window (half of `max_flips`),
    /// so a check hovering at the limit does not toggle between flapping and calm.
    pub fn calm_at_most(&self) -> usize {
        self.start_above() / 2
    }
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

fn six() -> NonZeroU32 {
    NonZeroU32::new(6).expect("6 is not zero")
}

fn yes() -> bool {
    true
}

fn four_hours() -> Duration {
    Duration::from_secs(4 * 3600)
}

fn thirty_minutes() -> Duration {
    Duration::from_secs(30 * 60)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
