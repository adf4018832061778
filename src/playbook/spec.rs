//! A loaded playbook: `kind: playbook` with `params`, `steps`, `rollback`, `exec_allow`, `timeout`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::step::StepAction;
use crate::config::RuleSet;

/// Longest a whole run may take unless `timeout:` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A parameter: `--param NAME=VALUE`, else its default; `required` ones need a value.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// What a failing step leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the run; nothing is undone.
    Stop,
    /// Go on with the next step; the run still succeeds.
    Continue,
    /// Run the playbook's `rollback:` steps, then stop.
    #[default]
    Rollback,
}

/// One step: its action, kept as JSON templates until it runs.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    /// The kind key (`http`, `exec`…).
    pub kind: &'static str,
    /// The step's fields, every string a template.
    pub fields: Value,
    /// The action as written (before rendering), for plans and validation.
    pub action: StepAction,
    /// An expression; the step is skipped when false.
    pub when: Option<String>,
    pub on_error: OnError,
    /// Needs `--yes` (or a future approval) before the run starts.
    pub approve: bool,
}

/// A playbook ready to run.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub params: BTreeMap<String, ParamSpec>,
    pub steps: Vec<Step>,
    pub rollback: Vec<Step>,
    /// Programs `exec` steps may run.
    pub exec_allow: Vec<String>,
    pub timeout: Duration,
    pub rules: Arc<RuleSet>,
}

impl Playbook {
    /// Steps (of `steps` and `rollback`) that need an approval.
    pub fn needing_approval(&self) -> Vec<&Step> {
        self.steps
            .iter()
            .chain(&self.rollback)
            .filter(|s| s.approve)
            .collect()
    }

    /// The parameters' values: `given` over the defaults; a missing required one is an error,
    /// as is a name the playbook does not declare.
    pub fn resolve_params(
        &self,
        given: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        for (k, v) in given {
            if !self.params.contains_key(k) {
                let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown parameter `{k}`; parameters of {}: {}",
                    self.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            out.insert(k.clone(), v.clone());
        }
        for (name, spec) in &self.params {
            if out.contains_key(name) {
                continue;
            }
            match (&spec.default, spec.required) {
                (Some(d), _) => {
                    out.insert(name.clone(), d.clone());
                }
                (None, true) => {
                    return Err(format!(
                        "parameter `{name}` is required: give --param {name}=VALUE"
                    ));
                }
                (None, false) => {
                    out.insert(name.clone(), String::new());
                }
            }
        }
        Ok(out)
    }
}
