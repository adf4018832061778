//! Running one command to completion or to its deadline.
//!
//! The command gets its own process group, so that on a timeout the whole tree it started (a
//! shell's `sleep`, a plugin's helper) is killed with one signal, not only the process patrol
//! started. The group is also killed when the run is abandoned (the engine dropping a measurement
//! at the check's timeout) and when the command exits but leaves children holding its output
//! open. stdout and stderr are read at the same time (a command blocked on a full stderr pipe
//! would otherwise never exit) and kept up to [`OUTPUT_LIMIT`] each; the rest is read and dropped,
//! so a chatty command neither eats memory nor stalls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Bytes kept of each of stdout and stderr.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long children left behind by an exited command may keep its output open before the group
/// is killed.
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);

/// How long to collect what is still buffered in the pipes after killing the group.
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// Everything needed to start the command.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub program: PathBuf,
    pub arg0: String,
    pub args: Vec<String>,
    /// Added to patrol's own environment.
    pub env: BTreeMap<String, String>,
    pub workdir: Option<PathBuf>,
}

/// Output of one stream: the first [`OUTPUT_LIMIT`] bytes and how many there were in all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub total: usize,
}

impl Captured {
    fn absorb(&mut self, chunk: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.total += chunk.len();
    }

    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A command that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Why a command did not run to its end.
#[derive(Debug)]
pub enum RunFailure {
    /// It could not be started.
    Spawn(std::io::Error),
    /// The deadline passed; the group was killed. What it wrote until then.
    TimedOut { stdout: Captured, stderr: Captured },
    /// Waiting for it failed (should not happen; reported rather than hidden).
    Wait(std::io::Error),
}

/// Runs `inv` until it exits or `deadline` passes.
pub async fn run(inv: &Invocation, deadline: Instant) -> Result<Finished, RunFailure> {
    let mut child = command(inv).spawn().map_err(RunFailure::Spawn)?;
    let mut group = GroupKiller {
        pgid: child.id().and_then(|id| libc::pid_t::try_from(id).ok()),
    };
    let mut pipes = Pipes {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Captured::default(),
        err: Captured::default(),
    };
    let status = tokio::select! {
        status = wait_reading(&mut child, &mut pipes) => status.map_err(RunFailure::Wait)?,
        _ = tokio::time::sleep_until(deadline) => {
            group.kill();
            // SIGKILL cannot be caught: the leader ends at once and is reaped here.
            let _ = tokio::time::timeout(DRAIN_AFTER_KILL, child.wait()).await;
            pipes.drain(DRAIN_AFTER_KILL).await;
            return Err(RunFailure::TimedOut { stdout: pipes.out, stderr: pipes.err });
        }
    };
    let grace_end = deadline.min(Instant::now() + LEFTOVER_GRACE);
    if tokio::time::timeout_at(grace_end, pipes.read_to_end())
        .await
        .is_err()
    {
        // Someone in the group still holds the output open (a background child): end it, the
        // check is over. The group still has members, so its id cannot have been reused.
        group.kill();
        pipes.drain(DRAIN_AFTER_KILL).await;
    }
    group.disarm();
    Ok(Finished {
        status,
        stdout: pipes.out,
        stderr: pipes.err,
    })
}

fn command(inv: &Invocation) -> Command {
    let mut cmd = Command::new(&inv.program);
    cmd.arg0(&inv.arg0)
        .args(&inv.args)
        .envs(&inv.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group (pgid = its pid), so the group can be killed as one.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &inv.workdir {
        cmd.current_dir(dir);
    }
    cmd
}

/// Waits for the leader to exit while reading both pipes (so it never blocks writing).
async fn wait_reading(child: &mut Child, pipes: &mut Pipes) -> std::io::Result<ExitStatus> {
    let mut out_buf = [0u8; 8192];
    let mut err_buf = [0u8; 8192];
    loop {
        tokio::select! {
            status = child.wait() => return status,
            n = read_some(&mut pipes.stdout, &mut out_buf), if pipes.stdout.is_some() => {
                Pipes::take(&mut pipes.stdout, &mut pipes.out, n, &out_buf);
            }
            n = read_some(&mut pipes.stderr, &mut err_buf), if pipes.stderr.is_some() => {
                Pipes::take(&mut pipes.stderr, &mut pipes.err, n, &err_buf);
            }
        }
    }
}

struct Pipes {
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    out: Captured,
    err: Captured,
}

impl Pipes {
    /// Reads both pipes until each is closed.
    async fn read_to_end(&mut self) {
        let mut out_buf = [0u8; 8192];
        let mut err_buf = [0u8; 8192];
        while self.stdout.is_some() || self.stderr.is_some() {
            tokio::select! {
                n = read_some(&mut self.stdout, &mut out_buf), if self.stdout.is_some() => {
                    Pipes::take(&mut self.stdout, &mut self.out, n, &out_buf);
                }
                n = read_some(&mut self.stderr, &mut err_buf), if self.stderr.is_some() => {
                    Pipes::take(&mut self.stderr, &mut self.err, n, &err_buf);
                }
            }
        }
    }

    /// Collects what is left after a kill, for at most `limit` (a process that left the group
    /// could keep a pipe open forever).
    async fn drain(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.read_to_end()).await;
    }

    /// Keeps a read's bytes; end of stream or a read error closes the pipe.
    fn take<P>(pipe: &mut Option<P>, into: &mut Captured, n: std::io::Result<usize>, buf: &[u8]) {
        match n {
            Ok(n) if n > 0 => into.absorb(&buf[..n]),
            _ => *pipe = None,
        }
    }
}

async fn read_some<P: AsyncRead + Unpin>(
    pipe: &mut Option<P>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        // Disabled branches are never polled; this only keeps the function total.
        None => std::future::pending().await,
    }
}

/// Kills the command's process group once, when asked or when dropped armed.
struct GroupKiller {
    pgid: Option<libc::pid_t>,
}

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take()
            && pgid > 0
        {
            // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    /// The command and everything it started are gone: nothing left to kill.
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(line: &str) -> Invocation {
        Invocation {
            program: "/bin/sh".into(),
            arg0: "sh".into(),
            args: vec!["-c".into(), line.into()],
            env: BTreeMap::new(),
            workdir: None,
        }
    }

    fn soon(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn output_beyond_the_limit_is_counted_not_kept() {
        let f = run(&sh("head -c 1000000 /dev/zero; echo tail >&2"), soon(20))
            .await
            .unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout.bytes.len(), OUTPUT_LIMIT);
        assert_eq!(f.stdout.total, 1_000_000);
        assert!(f.stdout.truncated());
        assert_eq!(f.stderr.text(), "tail\n");
        assert!(!f.stderr.truncated());
    }

    #[tokio::test]
    async fn a_full_stderr_pipe_does_not_stall_the_command() {
        // 1 MB on stderr before anything on stdout: unread, the pipe would fill and block it.
        let f = run(&sh("head -c 1000000 /dev/zero >&2; echo done"), soon(20))
            .await
            .unwrap();
        assert_eq!(f.stdout.text(), "done\n");
        assert_eq!(f.stderr.total, 1_000_000);
    }

    #[tokio::test]
    async fn timeout_kills_and_keeps_output_so_far() {
        let started = std::time::Instant::now();
        let err = run(
            &sh("echo started; sleep 30"),
            Instant::now() + Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        match err {
            RunFailure::TimedOut { stdout, .. } => assert_eq!(stdout.text(), "started\n"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn children_left_holding_the_output_are_ended() {
        // The shell exits at once; its background sleep keeps stdout open.
        let started = std::time::Instant::now();
        let f = run(&sh("sleep 30 & echo quick"), soon(20)).await.unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout.text(), "quick\n");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn env_and_workdir_reach_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = sh("printf '%s %s' \"$PATROL_EXEC_TEST\" \"$(pwd)\"");
        inv.env
            .insert("PATROL_EXEC_TEST".into(), "hello there".into());
        inv.workdir = Some(dir.path().to_path_buf());
        let f = run(&inv, soon(20)).await.unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        assert_eq!(
            f.stdout.text(),
            format!("hello there {}", canonical.display())
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_failure() {
        let mut inv = sh("");
        inv.program = "/nonexistent/prog".into();
        assert!(matches!(
            run(&inv, soon(5)).await,
            Err(RunFailure::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound
        ));
    }
}
