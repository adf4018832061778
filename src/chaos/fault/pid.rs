//! Processes by pid: reading pidfiles, /proc/PID/stat, signalling. Linux only (/proc).
//!
//! A pid alone is not an identity: once a process dies its pid can be given to another. Every
//! signal sent on a revert is therefore guarded by the process's start time (field 22 of
//! /proc/PID/stat), journaled at inject time.

use std::path::Path;
use std::time::Duration;

/// The fields of /proc/PID/stat that faults use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// R running, S sleeping, D disk wait, T stopped, t traced, Z zombie, X dead, I idle.
    pub state: char,
    /// User-mode CPU time, in clock ticks.
    pub utime: u64,
    /// Start time after boot, in clock ticks: with the pid, identifies one process.
    pub start_time: u64,
}

/// /proc/PID/stat of `pid`, None when there is no such process.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses /proc/PID/stat. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so fields are counted from the LAST `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        utime: fields.get(14 - 3)?.parse().ok()?,
        start_time: fields.get(22 - 3)?.parse().ok()?,
    })
}

/// Whether `pid` is a process that still runs (a zombie has ended; it only waits to be reaped).
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Whether `pid` is alive and is the process that started at `start_time`.
pub fn is_same_process(pid: i32, start_time: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    Some(words.join(" "))
}

/// Reads a pid from `path` (the first line, blanks ignored).
pub fn read_pidfile(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pidfile {}: {e}", path.display()))?;
    let first = text.lines().next().unwrap_or("").trim();
    match first.parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!(
            "pidfile {} does not hold a process id (found {first:?})",
            path.display()
        )),
    }
}

/// Checks that `pid` exists and that patrol may signal it (kill(pid, 0)).
pub fn may_signal(pid: i32) -> Result<(), String> {
    if pid <= 1 {
        return Err(format!("refusing to signal pid {pid}"));
    }
    // SAFETY: kill(2) with signal 0 only checks existence and permission.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return if is_alive(pid) {
            Ok(())
        } else {
            Err(format!("process {pid} has already exited"))
        };
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::EPERM) => format!("not permitted to signal process {pid} (another user's)"),
        Some(libc::ESRCH) => format!("no process {pid}"),
        _ => format!("cannot signal process {pid}: {err}"),
    })
}

/// Sends `signal` to `pid`; a process that has gone already is reported as such.
pub fn send(pid: i32, signal: i32) -> Result<(), String> {
    if pid <= 1 {
        return Err(format!("refusing to signal pid {pid}"));
    }
    // SAFETY: kill(2) touches no memory.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot send {} to process {pid}: {}",
            signal_name(signal),
            std::io::Error::last_os_error()
        ))
    }
}

/// Sends `signal` to the process group `pgid` (a process and the workers it forked).
pub fn send_group(pgid: i32, signal: i32) -> Result<(), String> {
    if pgid <= 1 {
        return Err(format!("refusing to signal process group {pgid}"));
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot send {} to process group {pgid}: {}",
            signal_name(signal),
            std::io::Error::last_os_error()
        ))
    }
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGCONT => "SIGCONT",
        _ => "a signal",
    }
}

/// Waits until `pid` has ended (or is a zombie), polling up to `timeout`; true when it has.
pub async fn wait_gone(pid: i32, timeout: Duration) -> bool {
    poll_until(timeout, || !is_alive(pid)).await
}

/// Polls `done` every 20–200 ms until it holds or `timeout` passes; true when it held.
pub async fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        if done() {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (my (odd) name) T 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    37 5 0 0 20 0 1 0 98765 1000 200 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'T');
        assert_eq!(s.utime, 37);
        assert_eq!(s.start_time, 98765);
        assert_eq!(parse_stat("12 (x) R 1"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_signallable() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        may_signal(me).unwrap();
        let s = stat(me).unwrap();
        assert!(is_same_process(me, s.start_time));
        assert!(!is_same_process(me, s.start_time + 1));
        assert!(cmdline(me).unwrap().len() > 1);
    }

    #[test]
    fn pid_one_and_bad_pidfiles_are_refused() {
        assert!(may_signal(1).unwrap_err().contains("refusing"));
        assert!(send(0, 0).unwrap_err().contains("refusing"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        std::fs::write(&path, "not a pid\n").unwrap();
        assert!(read_pidfile(&path).unwrap_err().contains("does not hold"));
        std::fs::write(&path, " 4242 \n").unwrap();
        assert_eq!(read_pidfile(&path).unwrap(), 4242);
        assert!(
            read_pidfile(&dir.path().join("missing.pid"))
                .unwrap_err()
                .contains("cannot read pidfile")
        );
    }
}
