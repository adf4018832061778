//! A loaded playbook: `kind: playbook` with `params`, `steps` (each with its own `rollback`),
//! `rollback`, `approve`, `lock`, `rate_limit`, `timeout`.

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
    /// Waits for an approval (`--yes`, a terminal prompt, or the approval API) before it runs.
    pub approve: bool,
    /// Steps undoing this one: after a failure with `on_error: rollback`, the rollbacks of the
    /// steps that succeeded run in reverse order.
    pub rollback: Vec<Step>,
}

/// `rate_limit: 3/h` — at most `count` runs per `per` for one playbook and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub count: u32,
    #[serde(with = "crate::config::duration")]
    pub per: Duration,
}

impl RateLimit {
    /// `COUNT/UNIT` or `COUNT/DURATION`: `3/h`, `10/d`, `1/30m`.
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let bad =
            || format!("rate_limit {text:?}: expected COUNT/PERIOD such as 3/h, 10/d or 1/30m");
        let (count, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        let per = match per {
            "s" | "m" | "h" | "d" => crate::config::duration::parse(&format!("1{per}")),
            _ => crate::config::duration::parse(per),
        }
        .map_err(|_| bad())?;
        if count == 0 || per.is_zero() {
            return Err(format!(
                "rate_limit {text:?}: count and period must be above zero"
            ));
        }
        Ok(RateLimit { count, per })
    }
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
    /// Programs `exec` steps may run (the rules' `playbooks.exec_allow`).
    pub exec_allow: Vec<String>,
    pub timeout: Duration,
    /// The whole run waits for one approval before its first step.
    pub approve: bool,
    /// A template over `{params, trigger}`: one run per rendered key at a time (held in the store).
    pub lock: Option<String>,
    pub rate_limit: Option<RateLimit>,
    /// How long an approval waits (default: the rules' `playbooks.approval_timeout`).
    pub approval_timeout: Duration,
    pub rules: Arc<RuleSet>,
}

impl Playbook {
    /// Steps (of `steps`, their rollbacks and `rollback`) that need an approval.
    pub fn needing_approval(&self) -> Vec<&Step> {
        let mut out = Vec::new();
        for step in self.steps.iter().chain(&self.rollback) {
            if step.approve {
                out.push(step);
            }
            out.extend(step.rollback.iter().filter(|s| s.approve));
        }
        out
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
