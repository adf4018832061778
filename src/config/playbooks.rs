//! `playbooks:` — the global switches of remediation playbooks, set once in the rules: whether
//! they may run at all, where they live, which programs `exec` steps may start, and who hears
//! about approvals and refused runs.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long an approval waits for a decision unless a playbook says otherwise.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybooksConfig {
    /// `false` refuses every playbook run (triggers, the API and the command line).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Directory of the `kind: playbook` files, relative to the rule file (default: the
    /// daemon's `--playbooks`, itself `playbooks`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Programs `exec` steps may run (a name looked up in PATH, or an absolute path).
    #[serde(default)]
    pub exec_allow: Vec<String>,
    /// Receivers told about approvals waiting (with the approval link) and refused runs.
    #[serde(default)]
    pub notify: Vec<String>,
    /// How long an approval waits before the step is refused.
    #[serde(default = "default_approval_timeout", with = "crate::config::duration")]
    #[schemars(with = "crate::config::duration::DurationSchema")]
    pub approval_timeout: Duration,
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        PlaybooksConfig {
            enabled: true,
            dir: None,
            exec_allow: Vec::new(),
            notify: Vec::new(),
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_approval_timeout() -> Duration {
    DEFAULT_APPROVAL_TIMEOUT
}
