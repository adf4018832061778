//! Commands a fault runs (`process` start, `exec` inject and revert): an argv list, one line split
//! into words without a shell, or — only with `shell: true` — a line run by `sh -c`.
//!
//! Two ways to run one: [`run_captured`] waits (bounded) and keeps the output; [`spawn_detached`]
//! starts a process in its own session that outlives patrol (a restarted service, a stress child).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::config::Issues;

/// Characters that only mean something to a shell: a line holding one is refused without
/// `shell: true` rather than passed literally to a program that would not expect it.
const SHELL_SYNTAX: &[char] = &['|', '&', ';', '<', '>', '$', '`', '(', ')', '*', '?'];

/// Output kept of each stream of a command.
pub const OUTPUT_LIMIT: usize = 2000;

/// A command: a list `[program, arg…]`, or one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum CommandLine {
    /// Program and arguments, run without a shell.
    Argv(Vec<String>),
    /// One line: split into words like a shell would (quotes, no expansion), or run by `sh -c`
    /// when the fault says `shell: true`.
    Line(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a command: a list [program, arg…] or one line of text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CommandLine, E> {
                Ok(CommandLine::Line(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<CommandLine, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandLine::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

impl CommandLine {
    /// The argv to execute: with `shell`, a line becomes `sh -c LINE`.
    pub fn argv(&self, shell: bool) -> Result<Vec<String>, String> {
        let argv = match (self, shell) {
            (CommandLine::Argv(argv), _) => argv.clone(),
            (CommandLine::Line(line), true) => vec!["sh".into(), "-c".into(), line.clone()],
            (CommandLine::Line(line), false) => split_words(line)?,
        };
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err("the command is empty".into());
        }
        Ok(argv)
    }

    /// Problems with the command in field `field`.
    pub fn validate(&self, field: &str, shell: bool, issues: &mut Issues) {
        if let Err(e) = self.argv(shell) {
            issues.at(&[field], e);
            return;
        }
        if let CommandLine::Line(line) = self
            && !shell
            && let Some(c) = line.chars().find(|c| SHELL_SYNTAX.contains(c))
        {
            issues.at(
                &[field],
                format!(
                    "`{c}` is shell syntax: set `shell: true` to run this line with sh -c, \
                     or write the command as a list [program, arg…]"
                ),
            );
        }
    }

    /// The command as a person would type it (for plans and messages).
    pub fn display(&self) -> String {
        match self {
            CommandLine::Line(line) => line.clone(),
            CommandLine::Argv(argv) => argv
                .iter()
                .map(|a| {
                    if a.is_empty() || a.contains(char::is_whitespace) {
                        format!("{a:?}")
                    } else {
                        a.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Splits a line into words: blanks separate, quotes group (as redis-cli and shells do), nothing
/// is expanded.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let words = crate::probe::redis::split_args(line).map_err(|e| e.replace("command: ", ""))?;
    words
        .into_iter()
        .map(|w| String::from_utf8(w).map_err(|_| "the command is not valid UTF-8".to_string()))
        .collect()
}

/// A command ready to run again in another process: argv, directory and environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl Resolved {
    pub fn new(
        command: &CommandLine,
        shell: bool,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Resolved, String> {
        Ok(Resolved {
            argv: command.argv(shell)?,
            cwd: cwd.to_path_buf(),
            env: env.clone(),
        })
    }

    /// The program, for messages.
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or("")
    }

    /// Whether the program can be found (a path, relative to `cwd`, or a name on PATH).
    pub fn check_program(&self) -> Result<(), String> {
        let program = self.program();
        let found = if program.contains('/') {
            self.cwd.join(program).is_file()
        } else {
            std::env::var_os("PATH")
                .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
                .unwrap_or(false)
        };
        if found {
            Ok(())
        } else {
            Err(format!("command `{program}` not found"))
        }
    }

    fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .envs(&self.env)
            .stdin(Stdio::null());
        if self.cwd.is_dir() {
            cmd.current_dir(&self.cwd);
        }
        cmd
    }
}

/// How a captured command ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// Exit code; None when killed by a signal or on timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// The end of stdout and stderr, at most [`OUTPUT_LIMIT`] bytes each, secrets masked.
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit 3: <stderr>" or "timed out after 30s".
    pub fn failure(&self, program: &str, timeout: Duration) -> String {
        let why = if self.timed_out {
            format!(
                "`{program}` timed out after {}",
                crate::config::duration::format(timeout)
            )
        } else {
            match self.code {
                Some(code) => format!("`{program}` exited with status {code}"),
                None => format!("`{program}` was killed by a signal"),
            }
        };
        let output = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        if output.is_empty() {
            why
        } else {
            format!("{why}: {output}")
        }
    }
}

/// Runs `cmd` in its own process group, waits up to `timeout` and keeps the end of its output.
/// On timeout the whole group is killed: a shell's children must not live on.
pub async fn run_captured(cmd: &Resolved, timeout: Duration) -> Result<Captured, String> {
    let mut command = tokio::process::Command::from(cmd.std_command());
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", cmd.program()))?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Captured {
            code: out.status.code(),
            timed_out: false,
            stdout: tail(&out.stdout),
            stderr: tail(&out.stderr),
        }),
        Ok(Err(e)) => Err(format!("waiting for `{}`: {e}", cmd.program())),
        Err(_) => {
            if let Some(pgid) = pgid {
                // SAFETY: kill(2) with a negative pid signals that process group; no memory is touched.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            Ok(Captured {
                code: None,
                timed_out: true,
                stdout: String::new(),
                stderr: String::new(),
            })
        }
    }
}

/// The last [`OUTPUT_LIMIT`] bytes of `bytes` as text, secrets masked.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut start = text.len().saturating_sub(OUTPUT_LIMIT);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let kept = if start > 0 {
        format!("…{}", &text[start..])
    } else {
        text.into_owned()
    };
    crate::secrets::redact_owned(kept)
}

/// Starts `cmd` in a new session (no controlling terminal: a Ctrl-C aimed at patrol does not
/// reach it), stdin from /dev/null and its output appended to `log` (or discarded), so it
/// outlives patrol. A thread reaps it when it ends while patrol still runs. Returns its pid and
/// a way to ask whether it has already exited.
pub fn spawn_detached(cmd: &Resolved, log: Option<&Path>) -> Result<Detached, String> {
    let mut command = cmd.std_command();
    let (stdout, stderr) = match log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            let copy = file
                .try_clone()
                .map_err(|e| format!("log file {}: {e}", path.display()))?;
            (Stdio::from(file), Stdio::from(copy))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    command.stdout(stdout).stderr(stderr);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", cmd.program()))?;
    let pid = child.id() as i32;
    let exited = std::sync::Arc::new(std::sync::OnceLock::new());
    let record = exited.clone();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = record.set(status.ok().and_then(|s| s.code()));
    });
    Ok(Detached { pid, exited })
}

/// A process started by [`spawn_detached`].
pub struct Detached {
    pub pid: i32,
    exited: std::sync::Arc<std::sync::OnceLock<Option<i32>>>,
}

impl Detached {
    /// Some(exit code, None for a signal) once the process has ended.
    pub fn exit_status(&self) -> Option<Option<i32>> {
        self.exited.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> CommandLine {
        CommandLine::Line(s.into())
    }

    #[test]
    fn lines_split_like_a_shell_without_expanding() {
        assert_eq!(
            line(r#"server --name "a b" 'c d' e"#).argv(false).unwrap(),
            ["server", "--name", "a b", "c d", "e"]
        );
        assert_eq!(line("a | b").argv(true).unwrap(), ["sh", "-c", "a | b"]);
        assert!(line("  ").argv(false).unwrap_err().contains("empty"));
        assert!(CommandLine::Argv(vec![]).argv(false).is_err());
        assert_eq!(
            CommandLine::Argv(vec!["tc".into(), "a b".into()]).display(),
            r#"tc "a b""#
        );
    }

    #[test]
    fn shell_syntax_without_shell_is_refused() {
        let mut issues = Issues::default();
        line("echo $HOME").validate("inject", false, &mut issues);
        line("echo $HOME").validate("revert", true, &mut issues);
        CommandLine::Argv(vec!["echo".into(), "$HOME".into()]).validate("x", false, &mut issues);
        assert_eq!(issues.items.len(), 1, "{:?}", issues.items);
        assert!(issues.items[0].1.contains("`$` is shell syntax"));
    }

    #[test]
    fn output_keeps_its_end() {
        let long = "x".repeat(OUTPUT_LIMIT) + "END";
        let kept = tail(long.as_bytes());
        assert!(kept.starts_with('…') && kept.ends_with("END"), "{kept}");
        assert_eq!(kept.len(), OUTPUT_LIMIT + '…'.len_utf8());
        assert_eq!(
            tail("é".repeat(OUTPUT_LIMIT).as_bytes()).chars().last(),
            Some('é')
        );
    }

    #[tokio::test]
    async fn captured_commands_report_code_and_output() {
        let cmd = Resolved {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 4".into(),
            ],
            cwd: std::env::temp_dir(),
            env: BTreeMap::new(),
        };
        let out = run_captured(&cmd, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(4), "out\n", "err\n")
        );
        assert_eq!(
            out.failure("sh", Duration::from_secs(10)),
            "`sh` exited with status 4: err"
        );
        let missing = Resolved {
            argv: vec!["/nonexistent/prog".into()],
            ..cmd
        };
        assert!(
            run_captured(&missing, Duration::from_secs(1))
                .await
                .unwrap_err()
                .contains("cannot run")
        );
        assert!(missing.check_program().unwrap_err().contains("not found"));
    }
}
