//! `exec: {command: [program, arg…], env, timeout}` — runs a program listed in the playbook's
//! `exec_allow`, without a shell unless the step says `shell: true` (then `sh` must be allowed).
//! A non-zero exit or a timeout fails the step; the output is `steps.<name>.stdout|stderr|code`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{StepEnv, StepKind};
use crate::chaos::fault::command::{CommandLine, Resolved, run_captured};
use crate::config::{Issues, RuleSet};

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A command to run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    pub command: CommandLine,
    /// Run a one-line command with `sh -c` (opt-in; `sh` must be in `exec_allow`).
    #[serde(default)]
    pub shell: bool,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
}

impl ExecStep {
    /// The program's argv, refused when its program is not in `allow`.
    pub fn allowed_argv(&self, allow: &[String]) -> Result<Vec<String>, String> {
        let argv = self.command.argv(self.shell)?;
        let program = &argv[0];
        if !allow.iter().any(|a| a == program) {
            return Err(format!(
                "`{program}` is not in `playbooks.exec_allow` of the rules ({}); add it there to let steps run it",
                if allow.is_empty() {
                    "empty".to_string()
                } else {
                    allow.join(", ")
                }
            ));
        }
        Ok(argv)
    }
}

impl StepKind for ExecStep {
    fn validate(&self, _rules: &RuleSet, exec_allow: &[String], issues: &mut Issues) {
        let before = issues.items.len();
        self.command.validate("command", self.shell, issues);
        if issues.items.len() > before {
            return;
        }
        // A templated program is only known when rendered: the runner checks it again then.
        let templated = self
            .command
            .argv(self.shell)
            .is_ok_and(|argv| argv[0].contains("{{"));
        if !templated && let Err(e) = self.allowed_argv(exec_allow) {
            issues.at(&["command"], e);
        }
        if self.timeout.is_zero() {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
    }

    fn dry_run_safe(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        let shell = if self.shell { "sh -c " } else { "" };
        format!("exec {shell}{}", self.command.display())
    }

    async fn run(&self, env: &StepEnv<'_>) -> Result<Value, String> {
        let argv = self.allowed_argv(env.exec_allow)?;
        let cmd = Resolved {
            argv,
            cwd: env.base_dir.to_path_buf(),
            env: self.env.clone(),
        };
        let out = run_captured(&cmd, self.timeout).await?;
        if !out.succeeded() {
            return Err(out.failure(cmd.program(), self.timeout));
        }
        Ok(json!({ "code": out.code, "stdout": out.stdout, "stderr": out.stderr }))
    }
}
