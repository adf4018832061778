//! `check: NAME` — runs a check of the rules now. Its status is the step's output
//! (`steps.<name>.status`); a `crit` or `error` result fails the step, so a verification step
//! fails the playbook (or, with `on_error: continue`, later steps branch on the status).

use serde::Deserialize;
use serde_json::{Value, json};

use super::{StepEnv, StepKind};
use crate::config::{Issues, RuleSet};
use crate::result::Status;

/// The name of a check of the rules.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct CheckStep(pub String);

impl StepKind for CheckStep {
    fn validate(&self, rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        if rules.check(&self.0).is_none() && !self.0.contains("{{") {
            let known: Vec<&str> = rules.checks.iter().map(|c| c.name()).collect();
            issues.at(
                &[],
                format!(
                    "unknown check `{}`; checks of the rules: {}",
                    self.0,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }

    fn dry_run_safe(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("run check {}", self.0)
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let check = env
            .rules
            .check(&self.0)
            .ok_or_else(|| format!("unknown check `{}`", self.0))?;
        let judged = crate::engine::execute_check(
            check,
            &crate::engine::Known::default(),
            "playbook",
            "playbook",
        )
        .await;
        let worst = judged
            .results
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(Status::Skipped);
        let messages: Vec<&str> = judged.results.iter().map(|r| r.message.as_str()).collect();
        let status = worst.as_str();
        if matches!(worst, Status::Crit | Status::Error) {
            return Err(format!(
                "check {} is {}: {}",
                self.0,
                status,
                messages.join("; ")
            ));
        }
        Ok(json!({ "status": status, "message": messages.join("; ") }))
    }
}
