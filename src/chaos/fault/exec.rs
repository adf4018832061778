//! `exec`: an `inject` and a `revert` command, for what patrol has no built-in fault for (`tc`,
//! `iptables`, a vendor CLI). Each runs with a timeout (default 30s) in its own process group,
//! killed whole on timeout; its output is kept (the end of it) in the journal and the outcome.
//! An inject that exits non-zero is an error, and its revert still runs: a half-applied change
//! must be undone too.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::{Captured, CommandLine, Resolved, run_captured};
use super::{Fault, FaultContext};
use crate::config::Issues;
use crate::config::duration::DurationSchema;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An `exec:` fault.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecFault {
    /// The command that injects the fault: a list [program, arg…], or one line (run by `sh -c`
    /// only with `shell: true`).
    pub inject: CommandLine,
    /// The command that undoes it. It should be safe to run more than once: after a crash it
    /// runs again whenever the journal cannot tell whether it already did.
    pub revert: CommandLine,
    /// Run one-line commands with `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Time limit of each command (default 30s).
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Duration>,
    /// Environment variables for both commands.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// What an exec fault's revert needs, and what its inject printed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecState {
    pub revert: Resolved,
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    pub inject_output: Captured,
}

impl ExecFault {
    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    fn resolved(&self, ctx: &FaultContext, cmd: &CommandLine) -> Result<Resolved, String> {
        Resolved::new(cmd, self.shell, &ctx.base_dir, &self.env)
    }
}

impl Fault for ExecFault {
    type State = ExecState;

    fn validate(&self, issues: &mut Issues) {
        self.inject.validate("inject", self.shell, issues);
        self.revert.validate("revert", self.shell, issues);
        if self.timeout.is_some_and(|t| t.is_zero()) {
            issues.at(&["timeout"], "timeout must be above 0s");
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                issues.at(
                    &["env", key],
                    format!("invalid environment variable name {key:?}"),
                );
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "run `{}`; revert: run `{}` (each up to {}; blast radius: whatever these commands touch)",
            self.inject.display(),
            self.revert.display(),
            crate::config::duration::format(self.timeout())
        )
    }

    async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
        for (field, cmd) in [("inject", &self.inject), ("revert", &self.revert)] {
            self.resolved(ctx, cmd)
                .and_then(|r| r.check_program())
                .map_err(|e| format!("{field}: {e}"))?;
        }
        Ok(())
    }

    async fn inject(&self, ctx: &FaultContext, _window: Duration) -> Result<ExecState, String> {
        let revert = self.resolved(ctx, &self.revert)?;
        let inject = self.resolved(ctx, &self.inject)?;
        let out = run_captured(&inject, self.timeout()).await?;
        if !out.succeeded() {
            return Err(format!(
                "inject {}",
                out.failure(inject.program(), self.timeout())
            ));
        }
        Ok(ExecState {
            revert,
            timeout: self.timeout(),
            inject_output: out,
        })
    }

    async fn revert(_ctx: &FaultContext, state: &ExecState) -> Result<String, String> {
        run_revert(&state.revert, state.timeout).await
    }

    async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
        run_revert(&self.resolved(ctx, &self.revert)?, self.timeout()).await
    }
}

async fn run_revert(cmd: &Resolved, timeout: Duration) -> Result<String, String> {
    let out = run_captured(cmd, timeout).await?;
    if !out.succeeded() {
        return Err(format!("revert {}", out.failure(cmd.program(), timeout)));
    }
    let printed = out.stdout.trim();
    Ok(if printed.is_empty() {
        format!("`{}` exited 0", cmd.program())
    } else {
        format!("`{}` exited 0: {printed}", cmd.program())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::FaultSpec;
    use crate::chaos::fault::test_support::{issues_of, spec_of};

    #[test]
    fn an_exec_fault_parses_with_defaults() {
        let spec = spec_of(
            "exec",
            "{ inject: [tc, qdisc, add, dev, lo, root, netem, delay, 100ms], \
               revert: 'tc qdisc del dev lo root' }",
        );
        let FaultSpec::Exec(e) = &spec else {
            panic!("{spec:?}")
        };
        assert_eq!(e.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(
            e.revert.argv(false).unwrap(),
            ["tc", "qdisc", "del", "dev", "lo", "root"]
        );
        assert!(issues_of(&spec).is_empty());
        assert!(
            spec.describe()
                .contains("revert: run `tc qdisc del dev lo root`")
        );
    }

    #[test]
    fn shell_lines_need_shell_true() {
        let spec = spec_of(
            "exec",
            "{ inject: 'echo x > /tmp/f', revert: 'rm /tmp/f', timeout: 0s }",
        );
        let found = issues_of(&spec);
        assert!(
            found
                .iter()
                .any(|i| i.starts_with("inject:") && i.contains("shell: true")),
            "{found:?}"
        );
        assert!(found.iter().any(|i| i.starts_with("timeout:")), "{found:?}");
        assert_eq!(found.len(), 2, "{found:?}");
        let spec = spec_of(
            "exec",
            "{ inject: 'echo x > /tmp/f', revert: 'rm /tmp/f', shell: true }",
        );
        assert!(issues_of(&spec).is_empty());
    }

    #[test]
    fn a_missing_revert_is_a_located_error() {
        let node = crate::config::parse_yaml("{ inject: [true] }").unwrap();
        let err = FaultSpec::from_node("exec", &node).unwrap().unwrap_err();
        assert!(err.describe().contains("revert"), "{}", err.describe());
        let node = crate::config::parse_yaml("{ inject: 5, revert: [true] }").unwrap();
        let err = FaultSpec::from_node("exec", &node).unwrap().unwrap_err();
        assert!(err.describe().contains("a command"), "{}", err.describe());
    }
}
