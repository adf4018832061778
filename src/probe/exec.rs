//! `kind: exec` — runs a command, the way Nagios runs a plugin.
//!
//! `command:` is a list of arguments passed as they are (no shell), or with `shell: true` one
//! command line for `/bin/sh -c`. The exit code is the command's own verdict (the Nagios plugin
//! protocol): 0 ok, 1 warn, 2 crit, 3 unknown → error, reported with the first line of its output
//! as the message; any other code, or death by a signal, is an error. Performance data after the
//! `|` is parsed, and `value:` picks what the check records: `exit_code` (default), `stdout` (the
//! whole output as a number), `perf:<label>` (one datum), or `perf` (every datum as a series).
//!
//! At the check's `timeout` the command and every process it started are killed (it runs in its
//! own process group). `env:` is added to patrol's environment; its values may be secrets and are
//! never written into messages. `workdir:` and relative program paths start at the rule file's
//! directory, like other paths in rules.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::config::{CheckCommon, Issues};

mod command;
mod nagios;
mod outcome;
mod process;

pub use command::CommandLine;

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecProbe {
    /// The program and its arguments (`[/usr/lib/nagios/plugins/check_tcp, -H, db, -p, "5432"]`),
    /// passed without a shell; with `shell: true`, one command line run by `/bin/sh -c`.
    /// A bare program name is searched in `PATH`, then in the Nagios plugin directories; a
    /// relative path starts at the rule file's directory.
    pub command: CommandLine,
    /// Run `command` (a string) with `/bin/sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Variables added to the command's environment (values may be `${env:…}`/`${file:…}` secrets).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative to the rule file's directory); default: patrol's own.
    #[serde(default)]
    pub workdir: Option<String>,
    /// What to record: `exit_code` (default), `stdout`, `perf:<label>` or `perf`.
    #[serde(default)]
    pub value: ExecValue,
    #[serde(default)]
    pub expect: ExecExpect,
}

/// Expectations; each one that fails makes the result `crit` with a message naming it.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ExecExpect {
    /// Regular expression the command's stdout must match; `^` and `$` match at each line.
    pub stdout_matches: Option<String>,
}

/// The recorded value of an exec check.
#[derive(Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(with = "String")]
pub enum ExecValue {
    /// The exit code (0 ok, 1 warning, 2 critical, 3 unknown).
    #[default]
    ExitCode,
    /// The whole stdout, trimmed, as a number.
    Stdout,
    /// The performance datum with this label; its unit is the datum's.
    Perf(String),
    /// Every performance datum, one series per label.
    PerfAll,
}

impl ExecValue {
    pub fn parse(s: &str) -> Result<ExecValue, String> {
        let s = s.trim();
        Ok(match s {
            "exit_code" => ExecValue::ExitCode,
            "stdout" => ExecValue::Stdout,
            "perf" => ExecValue::PerfAll,
            _ => match s.strip_prefix("perf:") {
                Some(label) if !label.trim().is_empty() => ExecValue::Perf(label.trim().into()),
                Some(_) => return Err("perf: needs a label, e.g. perf:time".into()),
                None => {
                    return Err(format!(
                        "unknown value {s:?}; expected exit_code, stdout, perf:<label> or perf"
                    ));
                }
            },
        })
    }
}

impl<'de> Deserialize<'de> for ExecValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ExecValue::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Probe for ExecProbe {
    const TARGET_KINDS: &'static [&'static str] = &[];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        if let Some(problem) = self.command.problem(self.shell) {
            issues.at(&["command"], problem);
        }
        for name in self.env.keys() {
            if let Some(problem) = env_name_problem(name) {
                issues.at_key(&["env", name], problem);
            }
        }
        // The values may be secrets: say which variable, never what it holds.
        for (name, value) in &self.env {
            if value.contains('\0') {
                issues.at(
                    &["env", name],
                    format!("env {name} contains a NUL byte, which cannot be passed"),
                );
            }
        }
        if self.workdir.as_deref().is_some_and(|w| w.trim().is_empty()) {
            issues.at(
                &["workdir"],
                "workdir is empty; leave it out to use patrol's own",
            );
        }
        issues.regex(
            &["expect", "stdout_matches"],
            self.expect.stdout_matches.as_deref(),
        );
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let base_dir = ctx.check.origin.file.parent().unwrap_or(Path::new(""));
        let invocation = self.invocation(base_dir)?;
        let deadline = tokio::time::Instant::now() + own_deadline(ctx.timeout);
        let name = self.command.display_name();
        match process::run(&invocation, deadline).await {
            Ok(finished) => outcome::measurement(&name, &self.value, &self.expect, &finished),
            Err(failure) => Err(outcome::run_failure(
                &name,
                &invocation,
                ctx.timeout,
                failure,
            )),
        }
    }
}

impl ExecProbe {
    /// The command to start: program found, working directory checked (so a missing directory is
    /// not reported as a missing program, which is how spawning would put it).
    fn invocation(&self, base_dir: &Path) -> Result<process::Invocation, ProbeError> {
        let resolved =
            command::resolve(&self.command, base_dir, &self.env).map_err(ProbeError::new)?;
        let workdir = self
            .workdir
            .as_deref()
            .map(|w| crate::tls::resolve_path(base_dir, Path::new(w)));
        if let Some(dir) = &workdir {
            check_workdir(dir)?;
        }
        Ok(process::Invocation {
            program: resolved.program,
            arg0: resolved.arg0,
            args: resolved.args,
            env: self.env.clone(),
            workdir,
        })
    }
}

fn check_workdir(dir: &Path) -> Result<(), ProbeError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ProbeError::new(format!(
            "workdir {} is not a directory",
            dir.display()
        ))),
        Err(e) => Err(ProbeError::new(format!("workdir {}: {e}", dir.display()))),
    }
}

/// Ends the command a little before the engine's own timeout, so the run reports what the command
/// printed and that its processes were killed, instead of being cut off without a word.
fn own_deadline(timeout: Duration) -> Duration {
    let margin = (timeout / 20).min(Duration::from_millis(50));
    timeout.saturating_sub(margin)
}

/// Why `name` cannot be an environment variable name, if it cannot.
fn env_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an environment variable name is empty".into())
    } else if name.contains('=') || name.contains('\0') {
        Some(format!(
            "{name:?} is not a valid environment variable name (no '=' or NUL)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(ExecValue::parse("exit_code"), Ok(ExecValue::ExitCode));
        assert_eq!(ExecValue::parse(" stdout "), Ok(ExecValue::Stdout));
        assert_eq!(ExecValue::parse("perf"), Ok(ExecValue::PerfAll));
        assert_eq!(
            ExecValue::parse("perf:pct used"),
            Ok(ExecValue::Perf("pct used".into()))
        );
        assert!(
            ExecValue::parse("perf:")
                .unwrap_err()
                .contains("needs a label")
        );
        assert!(
            ExecValue::parse("status")
                .unwrap_err()
                .contains("expected exit_code, stdout, perf:<label> or perf")
        );
    }

    #[test]
    fn own_deadline_leaves_a_small_margin() {
        assert_eq!(
            own_deadline(Duration::from_secs(10)),
            Duration::from_millis(9950)
        );
        assert_eq!(
            own_deadline(Duration::from_millis(200)),
            Duration::from_millis(190)
        );
        assert_eq!(own_deadline(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_schema_accepts_a_list_or_a_line_as_command() {
        let schema = serde_json::to_value(schemars::schema_for!(ExecProbe)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let valid = |v: serde_json::Value| validator.is_valid(&v);
        assert!(valid(
            serde_json::json!({"command": ["check_tcp", "-H", "db"]})
        ));
        assert!(valid(
            serde_json::json!({"command": "a | b", "shell": true, "value": "perf:time"})
        ));
        assert!(valid(
            serde_json::json!({"command": ["x"], "env": {"A": "1"}, "workdir": "d",
            "expect": {"stdout_matches": "ok"}})
        ));
        assert!(!valid(serde_json::json!({"shell": true})));
        assert!(!valid(serde_json::json!({"command": 5})));
        assert!(!valid(
            serde_json::json!({"command": ["x"], "expect": {"stdout": "ok"}})
        ));
    }

    #[test]
    fn env_names_are_checked() {
        assert!(env_name_problem("TOKEN").is_none());
        assert!(env_name_problem("A=B").unwrap().contains("not a valid"));
        assert!(env_name_problem("").is_some());
    }
}
