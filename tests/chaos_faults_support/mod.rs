//! Helpers for the fault tests: a fault context over real rules, real services with pidfiles on
//! random loopback ports, and guards that kill whatever a failed test left running.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patrol::chaos::fault::{FaultContext, FaultSpec};
use patrol::config::RuleSet;

/// Rules with one redis target, `cache`, on the test Redis.
pub fn rules(dir: &Path) -> Arc<RuleSet> {
    let path = dir.join("rules.yaml");
    std::fs::write(
        &path,
        format!(
            "targets:\n  cache: {{ kind: redis, url: \"{}\" }}\n  web: {{ kind: tcp, address: \"127.0.0.1:1\" }}\n",
            crate::common::REDIS_URL
        ),
    )
    .unwrap();
    Arc::new(patrol::config::load(&[path]).expect("test rules load"))
}

/// A context for faults of a drill file in `dir`, with no proxies.
pub fn context(dir: &Path) -> FaultContext {
    FaultContext {
        rules: rules(dir),
        proxies: HashMap::new(),
        base_dir: dir.to_path_buf(),
    }
}

/// The fault of `kind` from YAML (panics with the located error otherwise), validated.
pub fn fault(kind: &str, yaml: &str) -> FaultSpec {
    let node = patrol::config::parse_yaml(yaml).unwrap();
    let spec = FaultSpec::from_node(kind, &node)
        .expect("known kind")
        .unwrap_or_else(|e| panic!("{yaml}: {}", e.describe()));
    let mut issues = patrol::config::Issues::default();
    spec.validate(&mut issues);
    assert!(issues.is_empty(), "{yaml}: {:?}", issues.items);
    spec
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/proc/PID/stat` state letter, None when there is no such process.
pub fn proc_state(pid: i32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// Field `n` (1-based) of /proc/PID/stat as a number.
pub fn proc_stat_field(pid: i32, n: usize) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// VmRSS of `pid` in bytes.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Polls `done` every 20 ms for up to `limit`; true once it holds.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `argv` as a child of the test in its own process group and reaps it in a thread (so
/// a killed one does not linger as a zombie); returns its pid.
pub fn spawn_reaped(argv: &[&str]) -> i32 {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    pid
}

/// A small HTTP service (python3 http.server) on a random loopback port, writing its pid to a
/// pidfile: started here as the fault's `start` command would start it.
pub struct Service {
    pub pidfile: PathBuf,
    pub port: u16,
}

impl Service {
    /// Starts it and waits until it accepts connections.
    pub fn start(dir: &Path, name: &str) -> Service {
        let service = Service {
            pidfile: dir.join(format!("{name}.pid")),
            port: free_port(),
        };
        spawn_reaped(&["sh", "-c", &service.start_line()]);
        assert!(
            wait_for(Duration::from_secs(20), || service.accepts()),
            "the test service did not start"
        );
        service
    }

    /// The shell line that starts it (also the fault's `start`).
    pub fn start_line(&self) -> String {
        format!(
            "echo $$ > '{}'; exec python3 -m http.server {} --bind 127.0.0.1",
            self.pidfile.display(),
            self.port
        )
    }

    pub fn pid(&self) -> i32 {
        std::fs::read_to_string(&self.pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn accepts(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for Service {
    /// Kills whatever the pidfile names now (the service may have been restarted).
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.pidfile)
            && let Ok(pid) = text.trim().parse::<i32>()
            && pid > 1
        {
            // SAFETY: kill(2) touches no memory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Kills `pid` when dropped (a `sleep` a test paused, a stress child).
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 1 {
            // SAFETY: kill(2) touches no memory; SIGCONT first so a stopped process can die.
            unsafe {
                libc::kill(self.0, libc::SIGCONT);
                libc::kill(self.0, libc::SIGKILL);
            }
        }
    }
}

/// A `sleep 120` child with its pid written to `dir/NAME.pid`.
pub fn sleeper(dir: &Path, name: &str) -> (KillOnDrop, PathBuf) {
    let pid = spawn_reaped(&["sleep", "120"]);
    let pidfile = dir.join(format!("{name}.pid"));
    std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
    (KillOnDrop(pid), pidfile)
}
