//! `process`: kill, terminate, pause or restart one process, chosen by `pidfile` or `pid` — never
//! by name, which can match the wrong process.
//!
//! `pause` sends SIGSTOP and reverts with SIGCONT. `kill` / `term` revert by running the declared
//! `start` command detached (it outlives patrol) and waiting for `ready`; `restart` terminates
//! and starts at once, its revert only makes sure the service runs. A revert starts nothing when
//! the service already runs (the pidfile names a live process, or `ready` answers), so reverting
//! twice — or after a supervisor restarted it — starts no second copy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::{CommandLine, Resolved, spawn_detached};
use super::pid;
use super::ready::Ready;
use super::{Fault, FaultContext};
use crate::config::Issues;
use crate::config::duration::DurationSchema;

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a terminated process may take to exit before `restart` kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a signalled process may take to show the signal's effect (gone, or stopped).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do to the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProcessAction {
    /// SIGKILL; revert runs `start` and waits for `ready`.
    Kill,
    /// SIGTERM; revert runs `start` and waits for `ready`.
    Term,
    /// SIGSTOP; revert sends SIGCONT.
    Pause,
    /// SIGTERM (SIGKILL after 10s), then `start` at once; revert makes sure it runs.
    Restart,
}

impl ProcessAction {
    fn needs_start(self) -> bool {
        !matches!(self, ProcessAction::Pause)
    }
}

/// A `process:` fault.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessFault {
    /// File holding the process id (relative to the drill file). Give this or `pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
    /// The process id. Give this or `pidfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// kill | term | pause | restart.
    pub action: ProcessAction,
    /// How to start the service again (kill, term, restart): a list [program, arg…], or one
    /// line (run by `sh -c` only with `shell: true`). It runs detached from patrol, in the drill
    /// file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<CommandLine>,
    /// Run a one-line `start` with `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// When the started service is ready: `tcp://HOST:PORT` or an `http(s)://` URL answering 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// How long to wait for `ready` (default 30s).
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub ready_timeout: Option<Duration>,
    /// File the started service's output is appended to (default: discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
    /// Environment variables for `start`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Never accepted: read so that `validate` can say why.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub name: Option<String>,
}

/// What a process fault's revert needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessState {
    pub action: ProcessAction,
    /// The process the fault hit.
    pub pid: i32,
    /// Its start time (/proc/PID/stat): guards against a reused pid. None when unknown.
    pub start_time: Option<u64>,
    /// Absolute path of the pidfile, when the fault named one.
    pub pidfile: Option<PathBuf>,
    pub start: Option<Resolved>,
    pub ready: Option<Ready>,
    #[serde(with = "crate::config::duration")]
    pub ready_timeout: Duration,
    pub log: Option<PathBuf>,
}

impl ProcessFault {
    /// Where the pid comes from, for messages.
    fn chosen_by(&self) -> String {
        match (&self.pidfile, self.pid) {
            (Some(path), _) => format!("the process in {}", path.display()),
            (None, Some(pid)) => format!("process {pid}"),
            (None, None) => "no process".into(),
        }
    }

    /// The pid the fault is aimed at, now.
    fn target_pid(&self, ctx: &FaultContext) -> Result<i32, String> {
        let pid = match (&self.pidfile, self.pid) {
            (Some(path), _) => pid::read_pidfile(&ctx.resolve(path))?,
            (None, Some(pid)) => i32::try_from(pid).map_err(|_| format!("invalid pid {pid}"))?,
            (None, None) => return Err("`pidfile` or `pid` is required".into()),
        };
        if pid == std::process::id() as i32 {
            return Err(format!("{} is patrol itself", self.chosen_by()));
        }
        Ok(pid)
    }

    /// The revert state for `pid`, with paths made absolute.
    fn state(&self, ctx: &FaultContext, pid: i32) -> Result<ProcessState, String> {
        let start = match &self.start {
            Some(cmd) => Some(Resolved::new(cmd, self.shell, &ctx.base_dir, &self.env)?),
            None => None,
        };
        Ok(ProcessState {
            action: self.action,
            pid,
            start_time: pid::stat(pid).map(|s| s.start_time),
            pidfile: self.pidfile.as_ref().map(|p| ctx.resolve(p)),
            start,
            ready: self.ready.as_deref().map(Ready::parse).transpose()?,
            ready_timeout: self.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT),
            log: self.log.as_ref().map(|p| ctx.resolve(p)),
        })
    }

    fn revert_plan(&self) -> String {
        let start = self
            .start
            .as_ref()
            .map(|s| format!("`{}`", s.display()))
            .unwrap_or_else(|| "(no start command)".into());
        let ready = match &self.ready {
            Some(r) => format!(
                " and wait for {r} (up to {})",
                crate::config::duration::format(
                    self.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT)
                )
            ),
            None => String::new(),
        };
        format!("start {start}{ready}")
    }
}

impl Fault for ProcessFault {
    type State = ProcessState;

    fn validate(&self, issues: &mut Issues) {
        if self.name.is_some() {
            issues.at_key(
                &["name"],
                "a process is chosen by `pidfile` or `pid`, never by name (a name can match \
                 the wrong process)",
            );
        }
        match (&self.pidfile, self.pid) {
            (Some(_), Some(_)) => issues.at(&["pid"], "give `pidfile` or `pid`, not both"),
            (None, None) => issues.at(&[], "`pidfile` or `pid` is required"),
            (None, Some(pid)) if pid <= 1 || i32::try_from(pid).is_err() => issues.at(
                &["pid"],
                format!("pid must be a process id above 1, got {pid}"),
            ),
            (Some(path), None) if path.as_os_str().is_empty() => {
                issues.at(&["pidfile"], "pidfile is empty")
            }
            _ => {}
        }
        match &self.start {
            Some(cmd) => cmd.validate("start", self.shell, issues),
            None if self.action.needs_start() => issues.at(
                &["start"],
                format!(
                    "action `{}` needs `start`: the command that starts the service again",
                    action_name(self.action)
                ),
            ),
            None if self.shell => {
                issues.at(&["shell"], "`shell` applies to `start`, which is not set")
            }
            None => {}
        }
        if let Some(ready) = &self.ready
            && let Err(e) = Ready::parse(ready)
        {
            issues.at(&["ready"], e);
        }
        if !self.action.needs_start() {
            for (field, set) in [
                ("start", self.start.is_some()),
                ("ready", self.ready.is_some()),
                ("ready_timeout", self.ready_timeout.is_some()),
            ] {
                if set {
                    issues.at(
                        &[field],
                        "`pause` is reverted with SIGCONT: nothing is started",
                    );
                }
            }
        }
    }

    fn describe(&self) -> String {
        let target = self.chosen_by();
        let radius = "blast radius: that process and every client connected to it";
        match self.action {
            ProcessAction::Pause => format!(
                "SIGSTOP {target} for the fault window, SIGCONT on revert ({radius}; it stays \
                 alive but answers nothing)"
            ),
            ProcessAction::Kill | ProcessAction::Term => format!(
                "{} {target}; revert: {} ({radius})",
                if self.action == ProcessAction::Kill {
                    "SIGKILL"
                } else {
                    "SIGTERM"
                },
                self.revert_plan()
            ),
            ProcessAction::Restart => format!(
                "SIGTERM {target} (SIGKILL after {}s), then {} at once ({radius})",
                STOP_TIMEOUT.as_secs(),
                self.revert_plan()
            ),
        }
    }

    async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
        let pid = self.target_pid(ctx)?;
        pid::may_signal(pid).map_err(|e| format!("{}: {e}", self.chosen_by()))?;
        let state = self.state(ctx, pid)?;
        if let Some(start) = &state.start {
            start.check_program()?;
        } else if self.action.needs_start() {
            return Err(format!(
                "action `{}` needs `start`",
                action_name(self.action)
            ));
        }
        if let Some(dir) = state.log.as_deref().and_then(|l| l.parent())
            && !dir.is_dir()
        {
            return Err(format!("log directory {} does not exist", dir.display()));
        }
        Ok(())
    }

    async fn inject(&self, ctx: &FaultContext, _window: Duration) -> Result<ProcessState, String> {
        let pid = self.target_pid(ctx)?;
        pid::may_signal(pid)?;
        let state = self.state(ctx, pid)?;
        match self.action {
            ProcessAction::Pause => {
                pid::send(pid, libc::SIGSTOP)?;
                let stopped = pid::poll_until(SETTLE_TIMEOUT, || {
                    pid::stat(pid).is_none_or(|s| matches!(s.state, 'T' | 't' | 'Z' | 'X'))
                })
                .await;
                if !stopped {
                    return Err(format!("process {pid} did not stop after SIGSTOP"));
                }
            }
            ProcessAction::Kill => {
                pid::send(pid, libc::SIGKILL)?;
                pid::wait_gone(pid, SETTLE_TIMEOUT).await;
            }
            ProcessAction::Term => {
                pid::send(pid, libc::SIGTERM)?;
                // A process may take its time (or ignore SIGTERM): that is part of the drill.
                pid::wait_gone(pid, SETTLE_TIMEOUT).await;
            }
            ProcessAction::Restart => {
                stop(pid).await?;
                start_service(&state).await?;
            }
        }
        Ok(state)
    }

    async fn revert(_ctx: &FaultContext, state: &ProcessState) -> Result<String, String> {
        match state.action {
            ProcessAction::Pause => Ok(resume(state.pid, state.start_time)),
            _ => ensure_running(state).await,
        }
    }

    async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
        let pid = match self.target_pid(ctx) {
            Ok(pid) => pid,
            // No pid to resume; a pidfile naming nobody is handled by `ensure_running`.
            Err(e) if self.action == ProcessAction::Pause => {
                return Ok(format!("nothing to resume: {e}"));
            }
            // Without a pid nor `ready`, starting could make a second copy of a running service.
            Err(e) if self.ready.is_none() => {
                return Err(format!(
                    "cannot tell whether the service runs ({e}) and there is no `ready` to \
                     ask: check it and start it by hand if needed"
                ));
            }
            Err(_) => 0,
        };
        let mut state = self.state(ctx, pid)?;
        if self.action == ProcessAction::Pause {
            let stopped = pid::stat(pid).is_some_and(|s| s.state == 'T');
            return Ok(if stopped {
                resume(pid, None)
            } else {
                format!("process {pid} is not stopped; nothing to resume")
            });
        }
        // The pid read now may already be a restarted service: do not tie it to a start time.
        state.start_time = None;
        ensure_running(&state).await
    }
}

fn action_name(action: ProcessAction) -> &'static str {
    match action {
        ProcessAction::Kill => "kill",
        ProcessAction::Term => "term",
        ProcessAction::Pause => "pause",
        ProcessAction::Restart => "restart",
    }
}

/// SIGCONT to `pid` if it is still the process that was paused.
fn resume(pid: i32, start_time: Option<u64>) -> String {
    let same = match start_time {
        Some(t) => pid::is_same_process(pid, t),
        None => pid::is_alive(pid),
    };
    if !same {
        return format!("process {pid} is gone; nothing to resume");
    }
    match pid::send(pid, libc::SIGCONT) {
        Ok(()) => format!("resumed process {pid} (SIGCONT)"),
        Err(e) => e,
    }
}

/// SIGTERM, then SIGKILL if it is still alive after [`STOP_TIMEOUT`].
async fn stop(pid: i32) -> Result<(), String> {
    pid::send(pid, libc::SIGTERM)?;
    if pid::wait_gone(pid, STOP_TIMEOUT).await {
        return Ok(());
    }
    pid::send(pid, libc::SIGKILL)?;
    if pid::wait_gone(pid, SETTLE_TIMEOUT).await {
        Ok(())
    } else {
        Err(format!("process {pid} is still alive after SIGKILL"))
    }
}

/// The pid of the running service, if it runs: the pidfile's process, or the original process
/// (a SIGTERM may have been ignored).
fn running_pid(state: &ProcessState) -> Option<i32> {
    if let Some(path) = &state.pidfile
        && let Ok(pid) = pid::read_pidfile(path)
        && pid::is_alive(pid)
        && pid != state.pid
    {
        return Some(pid);
    }
    let original_alive = match state.start_time {
        Some(t) => pid::is_same_process(state.pid, t),
        None => state.pid > 1 && pid::is_alive(state.pid),
    };
    original_alive.then_some(state.pid)
}

/// Starts the service unless it already runs; idempotent.
async fn ensure_running(state: &ProcessState) -> Result<String, String> {
    if let Some(pid) = running_pid(state) {
        return Ok(format!("process {pid} is running; nothing to start"));
    }
    if let Some(ready) = &state.ready
        && ready.check().await.is_ok()
    {
        return Ok(format!("{ready} is already ready; nothing to start"));
    }
    start_service(state).await
}

/// Runs the start command detached and waits for `ready`.
async fn start_service(state: &ProcessState) -> Result<String, String> {
    let start = state
        .start
        .as_ref()
        .ok_or("no `start` command to start the service with")?;
    let child = spawn_detached(start, state.log.as_deref())?;
    let shown = format!("started `{}` (pid {})", start.argv.join(" "), child.pid);
    let Some(ready) = &state.ready else {
        return Ok(shown);
    };
    let gave_up = || match child.exit_status() {
        // A start script that daemonises exits 0 and leaves the service running.
        Some(Some(0)) | None => None,
        Some(code) => Some(format!(
            "`{}` exited ({}) before {ready} was ready",
            start.program(),
            code.map_or("killed by a signal".into(), |c| format!("status {c}"))
        )),
    };
    let took = ready
        .wait(state.ready_timeout, gave_up)
        .await
        .map_err(|e| format!("{shown}, but {e}"))?;
    Ok(format!(
        "{shown}; {ready} ready after {} ms",
        took.as_millis()
    ))
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
