//! The fields every check shares. A check's own fields (by `kind`) live with its probe in
//! `probe/<kind>.rs`; the two are deserialized from the same mapping (see `load.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::node::Loc;
use super::target::Target;
use crate::alert::policy::AlertPolicy;
use crate::baseline::BaselineConfig;
use crate::condition::Condition;
use crate::probe::ProbeSpec;

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Results count: a `crit` or `error` fails the run and (later) alerts.
    #[default]
    Enforce,
    /// Gray release: results are recorded with what they would have said, never fail or alert.
    Shadow,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_weight() -> f64 {
    1.0
}

/// Fields of every check, whatever its kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckCommon {
    /// Unique name of the check across all rule files.
    pub name: String,
    /// Probe kind: http, sql, redis, tcp, tls, dns.
    pub kind: String,
    /// Name of a target under `targets:`.
    #[serde(default)]
    pub target: Option<String>,
    /// Inline URL instead of a named target (http, sql, redis).
    #[serde(default)]
    pub url: Option<String>,
    /// Inline `host:port` instead of a named target (tcp, tls).
    #[serde(default)]
    pub address: Option<String>,
    /// Longest a single run may take; a slower run is `error`.
    #[serde(default = "default_timeout", with = "super::duration")]
    #[schemars(with = "super::duration::DurationSchema")]
    pub timeout: Duration,
    /// 5-field cron expression (`*/5 * * * *`), in the daemon's time zone.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` (default: the daemon's `--timezone`), e.g. `Europe/Berlin`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// A stable per-check offset of up to this much, so thousands of checks sharing a schedule do
    /// not fire on the same tick.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<super::duration::DurationSchema>")]
    pub jitter: Option<Duration>,
    /// A cron run missed while the daemon was down within this window runs once at start
    /// (default 1h).
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<super::duration::DurationSchema>")]
    pub catch_up: Option<Duration>,
    /// Fixed interval instead of a cron schedule (`30s`, `5m`).
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<super::duration::DurationSchema>")]
    pub every: Option<Duration>,
    /// Service whose health score this check feeds.
    #[serde(default)]
    pub service: Option<String>,
    /// Weight in the service's health score.
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default)]
    pub severity: Severity,
    /// Free labels (selection with `--tag k=v`, routing of alerts).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub mode: Mode,
    /// Condition on the measured value that makes the result `warn`.
    #[serde(default)]
    pub warn: Option<Condition>,
    /// Condition on the measured value that makes the result `crit`.
    #[serde(default)]
    pub crit: Option<Condition>,
    /// Dynamic baseline of the measured value.
    #[serde(default)]
    pub baseline: Option<BaselineConfig>,
    /// Receivers to notify.
    #[serde(default)]
    pub notify: Vec<String>,
    /// When results become an alert: thresholds, resolved notices, reminders, flap damping
    /// (absent: the defaults of [`AlertPolicy`]).
    #[serde(default)]
    pub alert: Option<AlertPolicy>,
    /// Playbook to run when the check fails.
    #[serde(default)]
    pub on_failure: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Where something was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub loc: Loc,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.loc)
    }
}

/// A loaded check: shared fields, the probe's own fields, and its resolved target.
#[derive(Clone, Debug)]
pub struct Check {
    pub common: CheckCommon,
    pub probe: ProbeSpec,
    /// The named target, or one made from an inline `url`/`address`.
    pub target: Option<Arc<Target>>,
    pub origin: Origin,
    /// Hash of what is measured (kind, target, the probe's own fields): when it changes on
    /// reload, the learned baseline no longer describes the value and is dropped.
    pub measure_fingerprint: String,
    /// Hash of the whole check as written: an unchanged check keeps its schedule state on reload.
    pub config_fingerprint: String,
}

impl Check {
    pub fn name(&self) -> &str {
        &self.common.name
    }

    pub fn kind(&self) -> &'static str {
        self.probe.kind()
    }

    /// How results name the target: the target's name, or the inline address.
    pub fn target_label(&self) -> String {
        match (&self.common.target, &self.target) {
            (Some(name), _) => name.clone(),
            (None, Some(t)) => crate::secrets::redact_owned(t.name.clone()),
            (None, None) => String::new(),
        }
    }

    /// Default window for catching up a missed cron run.
    pub const DEFAULT_CATCH_UP: Duration = Duration::from_secs(3600);

    pub fn catch_up(&self) -> Duration {
        self.common.catch_up.unwrap_or(Self::DEFAULT_CATCH_UP)
    }

    pub fn is_shadow(&self) -> bool {
        self.common.mode == Mode::Shadow
    }

    /// Whether the check carries every `k=v` label.
    pub fn has_labels(&self, wanted: &[(String, String)]) -> bool {
        wanted
            .iter()
            .all(|(k, v)| self.common.labels.get(k) == Some(v))
    }
}
