//! `stress`: CPU (`cpu: {workers, load_percent}`) and memory (`memory: {bytes}`) pressure on this
//! host, through `stress-ng` when it is on PATH, else the built-in child `patrol __stress`.
//!
//! Either way the stress runs as a separate process in its own session and process group, told
//! to stop by itself at the end of the fault window: it is bounded even if patrol is killed with
//! -9. Revert kills its process group — only if the journaled pid is still the same process
//! (start time) and its command line still carries the marker.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::command::{Resolved, spawn_detached};
use super::size::ByteSize;
use super::{Fault, FaultContext, pid};
use crate::config::Issues;

/// Most workers one fault may start.
const MAX_WORKERS: u32 = 1024;
/// Share of the memory available now that one fault may take.
const MAX_MEMORY_SHARE: f64 = 0.9;

/// The patrol binary that runs `__stress` (default: the running executable).
static PATROL_BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Makes the built-in stress run `path __stress …` instead of the running executable (for a
/// program that embeds the library, such as a test binary). Only the first call counts.
pub fn set_patrol_binary(path: PathBuf) {
    let _ = PATROL_BINARY.set(path);
}

fn patrol_binary() -> Result<PathBuf, String> {
    match PATROL_BINARY.get() {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe().map_err(|e| format!("cannot find the patrol binary: {e}")),
    }
}

/// CPU pressure.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuStress {
    /// Threads burning CPU (default: one per CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Share of each worker's time spent burning, 1–100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_percent: Option<u8>,
}

/// Memory pressure.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryStress {
    /// Memory to allocate and keep resident: bytes, or `512MiB`, `1.5GiB`, `100MB`.
    pub bytes: ByteSize,
}

/// A `stress:` fault.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StressFault {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuStress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStress>,
}

/// What runs the stress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    StressNg,
    Builtin,
}

/// What a stress fault's revert needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StressState {
    pub engine: Engine,
    /// The stress process; it leads its own process group.
    pub pid: i32,
    pub start_time: Option<u64>,
    /// Text its /proc/PID/cmdline must contain for a revert to kill it.
    pub marker: String,
    /// When it stops by itself.
    pub ends_by: DateTime<Utc>,
}

impl StressFault {
    fn workers(&self) -> u32 {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        self.cpu.as_ref().map_or(0, |c| c.workers.unwrap_or(cpus))
    }

    fn load(&self) -> u8 {
        self.cpu
            .as_ref()
            .and_then(|c| c.load_percent)
            .unwrap_or(100)
    }

    fn bytes(&self) -> u64 {
        self.memory.as_ref().map_or(0, |m| m.bytes.0)
    }

    /// The command for `seconds` of stress, with the marker that identifies it.
    fn command(&self, seconds: u64) -> Result<(Engine, Vec<String>, String), String> {
        if let Some(stress_ng) = on_path("stress-ng") {
            let mut argv = vec![stress_ng.display().to_string()];
            if self.workers() > 0 {
                argv.extend([
                    "--cpu".into(),
                    self.workers().to_string(),
                    "--cpu-load".into(),
                    self.load().to_string(),
                ]);
            }
            if self.bytes() > 0 {
                argv.extend([
                    "--vm".into(),
                    "1".into(),
                    "--vm-bytes".into(),
                    self.bytes().to_string(),
                    "--vm-keep".into(),
                ]);
            }
            argv.extend(["--timeout".into(), format!("{seconds}s"), "--quiet".into()]);
            return Ok((Engine::StressNg, argv, "stress-ng".into()));
        }
        let tag = format!("patrol-stress-{}", uuid::Uuid::now_v7().simple());
        let argv = vec![
            patrol_binary()?.display().to_string(),
            "__stress".into(),
            "--cpu-workers".into(),
            self.workers().to_string(),
            "--load".into(),
            self.load().to_string(),
            "--memory-bytes".into(),
            self.bytes().to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--tag".into(),
            tag.clone(),
        ];
        Ok((Engine::Builtin, argv, tag))
    }
}

impl Fault for StressFault {
    type State = StressState;

    fn validate(&self, issues: &mut Issues) {
        if self.cpu.is_none() && self.memory.is_none() {
            issues.at(&[], "set `cpu`, `memory` or both");
        }
        if let Some(cpu) = &self.cpu {
            if let Some(w) = cpu.workers
                && !(1..=MAX_WORKERS).contains(&w)
            {
                issues.at(
                    &["cpu", "workers"],
                    format!("workers must be 1 to {MAX_WORKERS}, got {w}"),
                );
            }
            if let Some(p) = cpu.load_percent
                && !(1..=100).contains(&p)
            {
                issues.at(
                    &["cpu", "load_percent"],
                    format!("load_percent must be 1 to 100, got {p}"),
                );
            }
        }
        if self.memory.as_ref().is_some_and(|m| m.bytes.0 == 0) {
            issues.at(&["memory", "bytes"], "bytes must be above 0");
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.cpu.is_some() {
            parts.push(format!(
                "burn {} CPU worker(s) at {}%",
                self.workers(),
                self.load()
            ));
        }
        if let Some(m) = &self.memory {
            parts.push(format!("hold {} of memory", m.bytes));
        }
        format!(
            "{} for the fault window (it stops by itself at the end; blast radius: \
             everything on this host)",
            parts.join(" and ")
        )
    }

    async fn preflight(&self, _ctx: &FaultContext) -> Result<(), String> {
        if self.bytes() > 0 {
            let available = mem_available()?;
            let allowed = (available as f64 * MAX_MEMORY_SHARE) as u64;
            if self.bytes() > allowed {
                return Err(format!(
                    "memory: {} is more than 90% of the {} available now",
                    ByteSize(self.bytes()),
                    ByteSize(available)
                ));
            }
        }
        let (_, argv, _) = self.command(1)?;
        if std::path::Path::new(&argv[0]).is_file() {
            Ok(())
        } else {
            Err(format!("{} not found", argv[0]))
        }
    }

    async fn inject(&self, ctx: &FaultContext, window: Duration) -> Result<StressState, String> {
        let seconds = window.as_secs_f64().ceil().max(1.0) as u64;
        let (engine, argv, marker) = self.command(seconds)?;
        let cmd = Resolved {
            argv,
            cwd: ctx.base_dir.clone(),
            env: Default::default(),
        };
        let child = spawn_detached(&cmd, None)?;
        // Journaled at once: the start time tells this process from a later one with its pid.
        let start_time = pid::stat(child.pid).map(|s| s.start_time);
        let state = StressState {
            engine,
            pid: child.pid,
            start_time,
            marker,
            ends_by: Utc::now() + Duration::from_secs(seconds),
        };
        // A child that cannot run (bad memory size, exec failure) dies at once: say so.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(code) = child.exit_status()
            && code != Some(0)
        {
            return Err(format!(
                "the stress process exited at once ({})",
                code.map_or("killed by a signal".into(), |c| format!("status {c}"))
            ));
        }
        Ok(state)
    }

    async fn revert(_ctx: &FaultContext, state: &StressState) -> Result<String, String> {
        let pid = state.pid;
        let ours = match state.start_time {
            Some(t) => pid::is_same_process(pid, t),
            None => pid::is_alive(pid),
        } && pid::cmdline(pid).is_some_and(|c| c.contains(&state.marker));
        if !ours {
            return Ok(format!("the stress process {pid} has already ended"));
        }
        // Its own process group: stress-ng's workers go with it.
        pid::send_group(pid, libc::SIGKILL)?;
        if pid::wait_gone(pid, Duration::from_secs(5)).await {
            Ok(format!("stopped the stress process {pid}"))
        } else {
            Err(format!(
                "the stress process {pid} is still alive after SIGKILL"
            ))
        }
    }

    async fn revert_unconfirmed(&self, _ctx: &FaultContext) -> Result<String, String> {
        Ok(
            "a stress process that may have started stops by itself at the end of its window"
                .into(),
        )
    }
}

/// `name` on PATH, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// MemAvailable from /proc/meminfo, in bytes.
fn mem_available() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no MemAvailable in /proc/meminfo".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::FaultSpec;
    use crate::chaos::fault::test_support::{issues_of, spec_of};

    fn stress(yaml: &str) -> StressFault {
        match spec_of("stress", yaml) {
            FaultSpec::Stress(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes_and_defaults_parse() {
        let s = stress("{ cpu: { workers: 2, load_percent: 80 }, memory: { bytes: 512MiB } }");
        assert_eq!((s.workers(), s.load(), s.bytes()), (2, 80, 512 << 20));
        let s = stress("{ memory: { bytes: 1048576 } }");
        assert_eq!((s.workers(), s.bytes()), (0, 1 << 20));
        let s = stress("{ cpu: {} }");
        assert!(s.workers() >= 1);
        assert_eq!(s.load(), 100);
        assert!(
            FaultSpec::Stress(stress(
                "{ cpu: { workers: 2, load_percent: 80 }, memory: { bytes: 1GiB } }"
            ))
            .describe()
            .starts_with("burn 2 CPU worker(s) at 80% and hold 1.0 GiB of memory")
        );
    }

    #[test]
    fn out_of_range_values_are_reported_at_their_field() {
        let found = issues_of(&spec_of(
            "stress",
            "{ cpu: { workers: 0, load_percent: 150 }, memory: { bytes: 0 } }",
        ));
        assert!(
            found.iter().any(|i| i.starts_with("cpu.workers:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|i| i.starts_with("cpu.load_percent:")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|i| i.starts_with("memory.bytes:")),
            "{found:?}"
        );
        assert_eq!(
            issues_of(&spec_of("stress", "{}")),
            [": set `cpu`, `memory` or both"]
        );
        let node = crate::config::parse_yaml("{ memory: { bytes: 12 parsecs } }").unwrap();
        let err = FaultSpec::from_node("stress", &node).unwrap().unwrap_err();
        assert!(
            err.describe().contains("invalid size"),
            "{}",
            err.describe()
        );
    }

    #[test]
    fn the_builtin_command_is_bounded_and_marked() {
        let s = stress("{ cpu: { workers: 1, load_percent: 50 }, memory: { bytes: 4KiB } }");
        if on_path("stress-ng").is_some() {
            return; // the stress-ng command line is covered where stress-ng is installed
        }
        let (engine, argv, marker) = s.command(7).unwrap();
        assert_eq!(engine, Engine::Builtin);
        let line = argv[1..].join(" ");
        assert!(line.starts_with(
            "__stress --cpu-workers 1 --load 50 --memory-bytes 4096 --seconds 7 --tag patrol-stress-"
        ), "{line}");
        assert!(line.ends_with(&marker));
    }

    #[test]
    fn memory_available_is_read() {
        assert!(mem_available().unwrap() > 0);
    }
}
