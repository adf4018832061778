//! `wait: 30s` — pauses the playbook; `wait: {until_check: NAME, timeout: 5m, every: 10s}` — runs
//! a check of the rules (as a `check:` step does) every `every` until it is ok or warn, and fails
//! when `timeout` passes first (with the check's last message). Neither is run by `--dry-run`,
//! which only says it would wait.

use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::check::CheckStep;
use super::{StepEnv, StepKind};
use crate::config::{Issues, RuleSet};

fn default_until_timeout() -> Duration {
    Duration::from_secs(300)
}

fn default_every() -> Duration {
    Duration::from_secs(10)
}

/// How long, or until what, to wait.
#[derive(Clone, Debug)]
pub enum WaitStep {
    /// `wait: 30s`.
    For(Duration),
    /// `wait: {until_check: NAME, …}`.
    Until(WaitUntil),
}

/// Waiting for a check to pass.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    /// A check of the rules.
    pub until_check: String,
    /// Longest wait (default 5m).
    #[serde(default = "default_until_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    /// Time between two runs of the check (default 10s).
    #[serde(default = "default_every", with = "crate::config::duration")]
    pub every: Duration,
}

/// A duration, or the mapping of [`WaitUntil`]; read by hand so that each form's mistakes are
/// named (an untagged enum would only say "did not match any variant").
impl<'de> Deserialize<'de> for WaitStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        if value.is_object() {
            return serde_json::from_value(value)
                .map(WaitStep::Until)
                .map_err(|e| D::Error::custom(format!("wait: {e}")));
        }
        crate::config::duration::deserialize(value)
            .map(WaitStep::For)
            .map_err(|e| {
                D::Error::custom(format!(
                    "{e}; `wait` takes a duration (30s) or {{until_check: NAME, timeout, every}}"
                ))
            })
    }
}

impl WaitUntil {
    /// Runs the check until it passes; its last output then, or why the wait failed.
    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let check = CheckStep(self.until_check.clone());
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let left = self.timeout.saturating_sub(started.elapsed());
            let why = match tokio::time::timeout(left, check.run(env)).await {
                Ok(Ok(mut out)) => {
                    out["attempts"] = json!(attempts);
                    out["waited_ms"] = json!(started.elapsed().as_millis() as u64);
                    return Ok(out);
                }
                Ok(Err(e)) => e,
                Err(_) => format!("check {} did not finish in time", self.until_check),
            };
            if started.elapsed() + self.every >= self.timeout {
                return Err(format!(
                    "check {} did not pass within {} ({attempts} run(s)); last: {why}",
                    self.until_check,
                    crate::config::duration::format(self.timeout)
                ));
            }
            tokio::time::sleep(self.every).await;
        }
    }
}

impl StepKind for WaitStep {
    fn validate(&self, rules: &RuleSet, exec_allow: &[String], issues: &mut Issues) {
        let WaitStep::Until(until) = self else {
            return;
        };
        let mut about_check = Issues::default();
        CheckStep(until.until_check.clone()).validate(rules, exec_allow, &mut about_check);
        for (_, message) in about_check.items {
            issues.at(&["until_check"], message);
        }
        if until.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
        if until.every.is_zero() {
            issues.at(&["every"], "every must be above 0s");
        }
    }

    fn dry_run_safe(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        match self {
            WaitStep::For(d) => format!("wait {}", humantime::format_duration(*d)),
            WaitStep::Until(u) => format!(
                "wait until check {} passes (every {}, at most {})",
                u.until_check,
                humantime::format_duration(u.every),
                humantime::format_duration(u.timeout)
            ),
        }
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        match self {
            WaitStep::For(d) => {
                tokio::time::sleep(*d).await;
                Ok(json!({ "waited_ms": d.as_millis() as u64 }))
            }
            WaitStep::Until(until) => until.run(env).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::step::test_support::{load, problems, rules};

    #[test]
    fn a_duration_or_a_check_to_wait_for() {
        let w: WaitStep = serde_json::from_value(json!("30s")).unwrap();
        assert!(matches!(w, WaitStep::For(d) if d == Duration::from_secs(30)));
        let w: WaitStep = serde_json::from_value(json!(2)).unwrap();
        assert!(matches!(w, WaitStep::For(d) if d == Duration::from_secs(2)));
        let w: WaitStep = serde_json::from_value(json!({"until_check": "api"})).unwrap();
        let WaitStep::Until(u) = &w else {
            panic!("{w:?}")
        };
        assert_eq!(
            (u.timeout, u.every),
            (Duration::from_secs(300), Duration::from_secs(10))
        );
        assert_eq!(
            w.describe(),
            "wait until check api passes (every 10s, at most 5m)"
        );
        assert!(!w.dry_run_safe());
    }

    #[test]
    fn mistakes_are_named() {
        let e = serde_json::from_value::<WaitStep>(json!({"until_check": "a", "timout": "1m"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `timout`"), "{e}");
        let e = serde_json::from_value::<WaitStep>(json!("soon"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`wait` takes a duration (30s) or {until_check"),
            "{e}"
        );
    }

    #[test]
    fn the_check_must_be_one_of_the_rules() {
        let rules = rules(
            "checks:\n  - name: api\n    kind: http\n    url: \"http://127.0.0.1:1/health\"\n",
        );
        load(
            "  - wait: { until_check: api, timeout: 1m, every: 5s }\n  - wait: 1s\n",
            &rules,
        )
        .expect("valid");
        let p = problems("  - wait: { until_check: web, every: 0s }\n", &rules);
        assert!(
            p.iter().any(|m| m
                .starts_with("pb.yaml:4:26: error: unknown check `web`; checks of the rules: api")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.contains("every must be above 0s")),
            "{p:?}"
        );
    }
}
