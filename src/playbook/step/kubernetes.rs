//! `kubernetes: {target: NAME, action: scale, …}` — one Kubernetes action (#6) on a
//! `kind: kubernetes` target of the rules; `--dry-run` runs it as a server-side dry run.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{StepEnv, StepKind};
use crate::actions::kubernetes::KubeAction;
use crate::config::{Issues, RuleSet};

/// An action and the target it runs on.
#[derive(Clone, Debug)]
pub struct KubeStep {
    pub target: String,
    pub action: KubeAction,
}

impl<'de> Deserialize<'de> for KubeStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
        let target = match map.remove("target") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(serde::de::Error::custom("`target` must be a string")),
            None => return Err(serde::de::Error::missing_field("target")),
        };
        let action = serde_json::from_value(Value::Object(map))
            .map_err(|e| serde::de::Error::custom(format!("kubernetes action: {e}")))?;
        Ok(KubeStep { target, action })
    }
}

impl StepKind for KubeStep {
    fn validate(&self, rules: &RuleSet, _exec_allow: &[String], issues: &mut Issues) {
        self.action.validate(issues);
        match rules.targets.get(&self.target) {
            Some(t) if t.spec.kind() != "kubernetes" => issues.at(
                &["target"],
                format!(
                    "target `{}` is {}, not kubernetes",
                    self.target,
                    t.spec.kind()
                ),
            ),
            Some(_) => {}
            None => {
                let known: Vec<&str> = rules
                    .targets
                    .values()
                    .filter(|t| t.spec.kind() == "kubernetes")
                    .map(|t| t.name.as_str())
                    .collect();
                issues.at(
                    &["target"],
                    format!(
                        "unknown target `{}`; kubernetes targets of the rules: {}",
                        self.target,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }

    fn dry_run_safe(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("kubernetes {} on {}", self.action.describe(), self.target)
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let target = env
            .rules
            .targets
            .get(&self.target)
            .ok_or_else(|| format!("unknown target `{}`", self.target))?;
        let outcome = self.action.run_on(target, env.dry_run).await?;
        Ok(outcome.0)
    }
}
