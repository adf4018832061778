//! Harness of the daemon tests: the built `patrol daemon` binary as a child process on a free
//! loopback port, with its rules and SQLite store in a temporary directory, and a local axum
//! server for its checks to measure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest a test waits for the daemon to reach a state.
pub const WAIT: Duration = Duration::from_secs(20);

/// A free port on 127.0.0.1 (bound, then released for the daemon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Requests served by the test server, counted by path.
#[derive(Default)]
pub struct Served {
    pub fast: AtomicUsize,
    pub slow_started: AtomicUsize,
    pub slow_finished: AtomicUsize,
}

/// An HTTP server on a random loopback port: `/ok` answers at once, `/slow` after 2 s.
pub async fn target_server() -> (u16, Arc<Served>) {
    let served = Arc::new(Served::default());
    let (a, b) = (served.clone(), served.clone());
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::get(move || {
                a.fast.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({"status": "UP"})) }
            }),
        )
        .route(
            "/slow",
            axum::routing::get(move || {
                let b = b.clone();
                async move {
                    b.slow_started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    b.slow_finished.fetch_add(1, Ordering::SeqCst);
                    "done"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, served)
}

/// A check of `kind: http` named `name` on the test server's `path`, with the further fields in
/// `more` (`every: 1s`, a schedule, …), as a YAML flow mapping.
pub fn http_check(name: &str, port: u16, path: &str, more: &str) -> String {
    format!("{{name: {name}, kind: http, url: \"http://127.0.0.1:{port}{path}\", {more}}}")
}

/// A rules file with one line per check (YAML flow mappings, see [`http_check`]).
pub fn checks_yaml(checks: &[String]) -> String {
    let lines: String = checks.iter().map(|c| format!("  - {c}\n")).collect();
    format!("checks:\n{lines}")
}

/// `patrol daemon` in `dir` over `rules/` and the store `d.db`, listening on `listen`, without an
/// API token from the environment.
pub fn daemon_command(dir: &Path, listen: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.current_dir(dir)
        .args(["daemon", "--rules", "rules", "--store", "sqlite://d.db"])
        .args(["--listen", listen])
        .env_remove("PATROL_API_TOKEN");
    cmd
}

/// A started `patrol daemon` process: its stderr drained by a thread (so the pipe never fills)
/// and the port it said it listens on.
pub struct Spawned {
    child: std::sync::Mutex<Child>,
    /// Everything the daemon wrote on stderr so far.
    stderr: Arc<std::sync::Mutex<String>>,
    /// The thread draining stderr; it ends when the daemon's end of the pipe closes.
    drain: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    pub port: u16,
}

impl Spawned {
    /// Spawns `cmd` (a `patrol daemon` listening on `127.0.0.1:0`) with stderr piped and waits
    /// (bounded by [`WAIT`]) until it logs its port; `Err((exit code, stderr))` when it exits
    /// without listening.
    pub async fn spawn(cmd: &mut Command) -> Result<Spawned, (Option<i32>, String)> {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        patrol::install_crypto_provider();
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        let drain = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("listening on 127.0.0.1:")
                    .nth(1)
                    .and_then(|r| r.split(',').next()?.parse::<u16>().ok())
                {
                    let _ = port_tx.send(port);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = tokio::task::spawn_blocking(move || port_rx.recv_timeout(WAIT))
            .await
            .unwrap();
        let spawned = Spawned {
            child: std::sync::Mutex::new(child),
            stderr,
            drain: std::sync::Mutex::new(Some(drain)),
            port: port.unwrap_or_default(),
        };
        match port {
            Ok(_) => Ok(spawned),
            // The pipe closed or time ran out: the daemon did not listen.
            Err(_) => {
                let code = spawned.kill_now();
                Err((code, spawned.collected_stderr()))
            }
        }
    }

    /// Everything on stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The exit status, once the daemon has exited.
    pub fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// All of stderr, once the daemon has exited (waits for the draining thread to finish).
    fn collected_stderr(&self) -> String {
        if let Some(t) = self.drain.lock().unwrap().take() {
            let _ = t.join();
        }
        self.log()
    }

    /// SIGKILL, and waits until the process is reaped; its exit code.
    fn kill_now(&self) -> Option<i32> {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        child.wait().ok().and_then(|s| s.code())
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit code and stderr.
    pub fn terminate(&self) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return (status.code(), self.collected_stderr());
            }
            assert!(
                started.elapsed() < WAIT * 2,
                "the daemon did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `cond` (every 50 ms, at most [`WAIT`]) until it holds; panics with `what` and the
    /// daemon's log otherwise, or at once when the daemon exits.
    pub async fn wait_until<Fut>(&self, what: &str, cond: impl Fn() -> Fut)
    where
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if let Some(status) = self.exited() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}:\n{}",
                    self.log()
                );
            }
            if cond().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; the daemon said:\n{}",
            self.log()
        );
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill_now();
    }
}

pub struct DaemonProcess {
    pub process: Spawned,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl DaemonProcess {
    /// Starts `patrol daemon` over `rules` (file name → YAML) and waits until it is ready.
    pub async fn start(rules: &[(&str, &str)], extra_args: &[&str]) -> DaemonProcess {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        for (name, text) in rules {
            std::fs::write(dir.path().join("rules").join(name), text).unwrap();
        }
        Self::start_in(dir, extra_args).await
    }

    /// Starts `patrol daemon` over one rules file `r.yaml` holding `checks` (see [`checks_yaml`]).
    pub async fn with_checks(checks: &[String], extra_args: &[&str]) -> DaemonProcess {
        Self::start(&[("r.yaml", &checks_yaml(checks))], extra_args).await
    }

    /// Starts the daemon in an existing directory (rules/ and the store d.db inside it).
    pub async fn start_in(dir: tempfile::TempDir, extra_args: &[&str]) -> DaemonProcess {
        // Port 0: the daemon binds a free port itself and logs it; no other test can take it.
        let mut cmd = daemon_command(dir.path(), "127.0.0.1:0");
        cmd.args(["--score-every", "1s", "--timezone", "UTC"])
            .args(extra_args)
            .env_remove("PATROL_STORE")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let process = Spawned::spawn(&mut cmd)
            .await
            .unwrap_or_else(|(code, log)| {
                panic!("the daemon did not say where it listens (exit {code:?}):\n{log}")
            });
        let d = DaemonProcess {
            port: process.port,
            process,
            dir,
            http: reqwest::Client::new(),
        };
        d.wait_until("ready", |d| async move {
            d.get_status("/readyz").await == Some(200)
        })
        .await;
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.dir.path().join("rules")
    }

    pub fn store_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("d.db").display())
    }

    async fn get_status(&self, path: &str) -> Option<u16> {
        self.http
            .get(self.url(path))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `cond` (every 50 ms, at most [`WAIT`]) until it holds; panics with `what` otherwise.
    pub async fn wait_until<'a, F, Fut>(&'a self, what: &str, cond: F)
    where
        F: Fn(&'a DaemonProcess) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.process.wait_until(what, || cond(self)).await
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit code and stderr.
    pub fn terminate(&self) -> (Option<i32>, String) {
        self.process.terminate()
    }

    /// Kills the daemon with SIGKILL — a crash: no shutdown, nothing flushed — and waits until it
    /// is gone. Returns its directory (rules and store) for a restart with
    /// [`DaemonProcess::start_in`], and what it wrote on stderr.
    pub fn kill9(self) -> (tempfile::TempDir, String) {
        self.process.kill_now();
        (self.dir, self.process.collected_stderr())
    }
}

/// How many runs of `check` ended ok, by the `patrol_runs_total` sample in Prometheus text.
pub fn ok_runs(metrics: &str, check: &str) -> Option<f64> {
    sample(
        metrics,
        &format!("patrol_runs_total{{check=\"{check}\",status=\"ok\"}}"),
    )
}

/// The value of the sample `name{labels}` in Prometheus text, when present.
pub fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
