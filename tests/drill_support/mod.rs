//! Harness of the drill CLI tests: a temporary directory with its own SQLite store, a real HTTP
//! server on loopback, the real `patrol drill` binary, and the fault journal read back.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use patrol::chaos::fault::{Journal, JournalEntry};
use patrol::store::Store;
use tokio::net::TcpListener;

/// Longest a drill under test may run.
pub const DRILL_TIMEOUT: Duration = Duration::from_secs(90);

/// One test's world: a directory holding the drill, its store, its reports and the exec log.
pub struct World {
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        patrol::install_crypto_provider();
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self.path("patrol.db").display())
    }

    /// Writes `text` as `name` and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// What the exec faults of the drills wrote (`injected`, `reverted` lines).
    pub fn exec_log(&self) -> String {
        std::fs::read_to_string(self.path("exec.log")).unwrap_or_default()
    }

    /// An exec fault that appends `injected` / `reverted` to exec.log.
    pub fn exec_fault(&self) -> String {
        let log = self.path("exec.log").display().to_string();
        format!(
            "exec: {{ inject: [sh, -c, 'echo injected >> {log}'], revert: [sh, -c, 'echo reverted >> {log}'] }}"
        )
    }

    /// `patrol drill ARGS…` in this directory, with this store and report dir.
    pub fn drill_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
        cmd.current_dir(self.dir.path())
            .arg("drill")
            .args(args)
            .arg("--store")
            .arg(self.store_url())
            .arg("--report-dir")
            .arg(self.path("reports"))
            .env_remove("PATROL_STORE")
            .kill_on_drop(true);
        cmd
    }

    /// Runs `patrol drill ARGS…` to its end (bounded).
    pub async fn drill(&self, args: &[&str]) -> Output {
        let run = self.drill_command(args).output();
        tokio::time::timeout(DRILL_TIMEOUT, run)
            .await
            .expect("the drill ends in time")
            .unwrap()
    }

    /// Waits until exec.log holds `line` (bounded); a readiness signal, not a sleep.
    pub async fn wait_for_exec_log(&self, line: &str) {
        for _ in 0..600 {
            if self.exec_log().lines().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("exec.log never held {line:?}: {:?}", self.exec_log());
    }

    pub async fn journal(&self) -> Journal {
        Journal::new(Store::open(&self.store_url()).await.unwrap())
    }

    pub async fn active_faults(&self) -> Vec<JournalEntry> {
        self.journal().await.active().await.unwrap()
    }

    /// The report JSON files written under reports/drills.
    pub fn report_files(&self, ext: &str) -> Vec<PathBuf> {
        let dir = self.path("reports").join("drills");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    }
}

/// A plain HTTP server with `/health` (200, `{"status":"UP"}`) on a random loopback port.
pub async fn health_server() -> SocketAddr {
    let router = Router::new().route(
        "/health",
        get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A loopback port nobody listens on right now (bound, then released) — for a proxy's `listen`,
/// which the drill file must name before patrol starts it.
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// stdout and stderr for assertion messages.
pub fn streams(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The drill report printed by `--format json`.
pub fn report_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not a JSON report ({e}):\n{}", streams(out)))
}

/// Sends `signal` to the process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child process this test started; no memory is touched.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
