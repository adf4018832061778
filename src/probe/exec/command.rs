//! What to run: `command:` as written (a list of arguments, or one line for `/bin/sh -c`), and
//! finding the program the way a user expects — relative paths from the rule file, bare names in
//! `PATH` and then in the usual Nagios plugin directories, so `[check_tcp, -H, db, -p, "5432"]`
//! works with Debian's `monitoring-plugins` out of the box.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// Where distributions install Nagios/Monitoring plugins, searched after `PATH` for a bare name.
pub const PLUGIN_DIRS: &[&str] = &[
    "/usr/lib/nagios/plugins",
    "/usr/lib64/nagios/plugins",
    "/usr/local/nagios/libexec",
];

/// `PATH` when neither `env:` nor patrol's own environment has one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The shell that runs a `shell: true` command line.
pub const SHELL: &str = "/bin/sh";

/// `command:` as written.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum CommandLine {
    /// The program and its arguments, passed as they are (no shell, no splitting at spaces).
    Args(Vec<String>),
    /// One command line run by `/bin/sh -c` (only with `shell: true`).
    Line(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = CommandLine;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of arguments ([program, arg, …]), or a command line with shell: true")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandLine, E> {
        Ok(CommandLine::Line(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandLine, A::Error> {
        let mut args = Vec::new();
        // Elements go through the string path, so `[check_dummy, 1]` passes "1".
        while let Some(arg) = seq.next_element::<String>()? {
            args.push(arg);
        }
        Ok(CommandLine::Args(args))
    }
}

impl CommandLine {
    /// Problems with `command` given `shell`, each as (message) for the `command` field.
    pub fn problem(&self, shell: bool) -> Option<String> {
        match (self, shell) {
            (CommandLine::Args(_), true) => Some(
                "with shell: true, command is one command line for /bin/sh -c (a string), not a list"
                    .into(),
            ),
            (CommandLine::Line(_), false) => Some(
                "command is a list of arguments run without a shell ([program, arg, …]); \
                 set shell: true to run a command line with /bin/sh -c"
                    .into(),
            ),
            (CommandLine::Args(args), false) if args.is_empty() => {
                Some("command is empty; name the program to run".into())
            }
            (CommandLine::Args(args), false) if args[0].trim().is_empty() => {
                Some("the program (the first element of command) is empty".into())
            }
            (CommandLine::Line(line), true) if line.trim().is_empty() => {
                Some("command is an empty command line".into())
            }
            _ => args_with_nul(self),
        }
    }

    /// How messages name what ran: the program as written, or the shell.
    pub fn display_name(&self) -> String {
        match self {
            CommandLine::Args(args) => args.first().cloned().unwrap_or_default(),
            CommandLine::Line(_) => format!("{SHELL} -c"),
        }
    }
}

/// Arguments travel as C strings: a NUL byte cannot be passed (and would be cut silently).
fn args_with_nul(command: &CommandLine) -> Option<String> {
    let has_nul = match command {
        CommandLine::Args(args) => args.iter().any(|a| a.contains('\0')),
        CommandLine::Line(line) => line.contains('\0'),
    };
    has_nul.then(|| "command contains a NUL byte, which cannot be passed to a program".into())
}

/// The program to start, found, with the `argv[0]` and arguments to give it.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub program: PathBuf,
    /// `argv[0]` as written (plugins print it in their usage text).
    pub arg0: String,
    pub args: Vec<String>,
}

/// Finds the program of `command`. `base_dir` is the rule file's directory (relative paths with a
/// `/` start there); `env` is the check's `env:` (its `PATH`, if any, is searched).
pub fn resolve(
    command: &CommandLine,
    base_dir: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Resolved, String> {
    match command {
        CommandLine::Line(line) => Ok(Resolved {
            program: PathBuf::from(SHELL),
            arg0: "sh".into(),
            args: vec!["-c".into(), line.clone()],
        }),
        CommandLine::Args(args) => {
            let (name, rest) = args
                .split_first()
                .ok_or_else(|| "command is empty".to_string())?;
            let path_var = env
                .get("PATH")
                .map(OsString::from)
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_else(|| DEFAULT_PATH.into());
            Ok(Resolved {
                program: find_program(name, base_dir, &path_var)?,
                arg0: name.clone(),
                args: rest.to_vec(),
            })
        }
    }
}

/// `name` with a `/` is a path (relative ones from `base_dir`); a bare name is searched in
/// `path_var`, then in [`PLUGIN_DIRS`].
pub fn find_program(name: &str, base_dir: &Path, path_var: &OsStr) -> Result<PathBuf, String> {
    if name.contains('/') {
        let path = crate::tls::resolve_path(base_dir, Path::new(name));
        return match executable(&path) {
            Found::Yes => Ok(path),
            Found::Missing => Err(format!("command {} not found", path.display())),
            Found::Directory => Err(format!("command {} is a directory", path.display())),
            Found::NotExecutable => Err(format!(
                "command {} is not executable (no permission to run it)",
                path.display()
            )),
        };
    }
    let dirs = std::env::split_paths(path_var).chain(PLUGIN_DIRS.iter().map(PathBuf::from));
    let mut not_executable = None;
    for dir in dirs.filter(|d| d.is_absolute()) {
        let path = dir.join(name);
        match executable(&path) {
            Found::Yes => return Ok(path),
            Found::NotExecutable if not_executable.is_none() => not_executable = Some(path),
            _ => {}
        }
    }
    Err(match not_executable {
        Some(path) => format!(
            "command {name} found at {} but it is not executable (no permission to run it)",
            path.display()
        ),
        None => format!(
            "command {name} not found in PATH or the plugin directories ({})",
            PLUGIN_DIRS.join(", ")
        ),
    })
}

enum Found {
    Yes,
    Missing,
    Directory,
    NotExecutable,
}

fn executable(path: &Path) -> Found {
    match std::fs::metadata(path) {
        Err(_) => Found::Missing,
        Ok(m) if m.is_dir() => Found::Directory,
        Ok(_) if may_execute(path) => Found::Yes,
        Ok(_) => Found::NotExecutable,
    }
}

/// Whether this process may execute `path` (its own user and groups, as exec would judge).
fn may_execute(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(list: &[&str]) -> CommandLine {
        CommandLine::Args(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn shell_and_form_must_agree() {
        assert!(args(&["true"]).problem(false).is_none());
        assert!(CommandLine::Line("true".into()).problem(true).is_none());
        assert!(
            args(&["true"])
                .problem(true)
                .unwrap()
                .contains("not a list")
        );
        assert!(
            CommandLine::Line("check_tcp -H x".into())
                .problem(false)
                .unwrap()
                .contains("set shell: true")
        );
        assert!(args(&[]).problem(false).unwrap().contains("empty"));
        assert!(args(&[" "]).problem(false).unwrap().contains("program"));
        assert!(CommandLine::Line("  ".into()).problem(true).is_some());
        assert!(
            args(&["echo", "a\0b"])
                .problem(false)
                .unwrap()
                .contains("NUL")
        );
    }

    #[test]
    fn relative_paths_start_at_the_rule_file() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("bin/check.sh");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_program("./bin/check.sh", dir.path(), OsStr::new("")).unwrap();
        assert_eq!(found, dir.path().join("./bin/check.sh"));
        let missing = find_program("bin/nope.sh", dir.path(), OsStr::new("")).unwrap_err();
        assert_eq!(
            missing,
            format!(
                "command {} not found",
                dir.path().join("bin/nope.sh").display()
            )
        );
        let directory = find_program("./bin", dir.path(), OsStr::new("")).unwrap_err();
        assert!(directory.ends_with("is a directory"), "{directory}");
    }

    #[test]
    fn bare_names_search_path_then_plugin_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("mytool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path_var = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(
            find_program("mytool", Path::new("/"), &path_var).unwrap(),
            tool
        );
        let err = find_program("no-such-tool-xyz", Path::new("/"), &path_var).unwrap_err();
        assert_eq!(
            err,
            "command no-such-tool-xyz not found in PATH or the plugin directories \
             (/usr/lib/nagios/plugins, /usr/lib64/nagios/plugins, /usr/local/nagios/libexec)"
        );
    }

    #[test]
    fn files_without_execute_permission_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        // root may execute anything with an x bit only; 0o644 has none, so this holds for root too.
        let err = find_program("plain", Path::new("/"), dir.path().as_os_str()).unwrap_err();
        assert!(
            err.contains("found at") && err.contains("not executable"),
            "{err}"
        );
        let err = find_program(file.to_str().unwrap(), Path::new("/"), OsStr::new("")).unwrap_err();
        assert!(err.contains("is not executable"), "{err}");
    }

    #[test]
    fn the_env_path_is_searched_and_shell_lines_go_to_sh() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("only-here");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o700)).unwrap();
        let env = BTreeMap::from([("PATH".to_string(), dir.path().display().to_string())]);
        let r = resolve(&args(&["only-here", "a b"]), Path::new("/"), &env).unwrap();
        assert_eq!(r.program, tool);
        assert_eq!(
            (r.arg0.as_str(), r.args.clone()),
            ("only-here", vec!["a b".to_string()])
        );
        let r = resolve(&CommandLine::Line("echo hi".into()), Path::new("/"), &env).unwrap();
        assert_eq!(r.program, PathBuf::from("/bin/sh"));
        assert_eq!(r.args, vec!["-c", "echo hi"]);
    }
}
