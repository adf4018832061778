//! Starts N node processes sharing one event log, for the drill demo and the tests. Each node
//! has its own pidfile and a `start` command line that brings it back on the same port — what a
//! drill's process fault needs to kill a node and restart it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

use super::log::EventLog;

/// What stderr says once a node serves.
pub const READY_PREFIX: &str = "listening on ";

/// How one node behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// Events kept for `Last-Event-ID` replays (`--buffer`).
    pub buffer: usize,
    /// Interval between `: ping` comments (`--heartbeat`).
    pub heartbeat: Duration,
    /// A faulty node that starts every stream at "now" (`--ignore-last-event-id`).
    pub ignore_last_event_id: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            buffer: 1000,
            heartbeat: Duration::from_secs(1),
            ignore_last_event_id: false,
        }
    }
}

/// How the cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The `patrol` binary to run (default: the current executable).
    pub binary: Option<PathBuf>,
    /// Options of every node…
    pub node: NodeOptions,
    /// …except these, by node index (0-based).
    pub per_node: BTreeMap<usize, NodeOptions>,
    /// The topic `publish_url` and `subscribe_url` use.
    pub topic: String,
    /// How long a node may take to print its readiness line.
    pub ready_timeout: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            binary: None,
            node: NodeOptions::default(),
            per_node: BTreeMap::new(),
            topic: "orders".into(),
            ready_timeout: Duration::from_secs(15),
        }
    }
}

/// One running (or killed) node.
#[derive(Clone, Debug)]
pub struct SseNode {
    /// 0-based position in the cluster.
    pub index: usize,
    /// `sse-1`, `sse-2`, …
    pub name: String,
    pub addr: SocketAddr,
    pub pidfile: PathBuf,
    /// The exact argv (program first) that restarts this node on the same port.
    pub start: Vec<String>,
    /// A URL answering 200 once the node serves (`/healthz`).
    pub ready: String,
    /// Where the node's stderr goes when the cluster started it.
    pub stderr_log: PathBuf,
    pub options: NodeOptions,
}

impl SseNode {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sub_url(&self, topic: &str) -> String {
        format!("{}/sub/{topic}", self.url())
    }

    pub fn pub_url(&self, topic: &str) -> String {
        format!("{}/pub/{topic}", self.url())
    }

    /// The pid the node wrote to its pidfile (`None` while it has none).
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pidfile)
    }
}

/// N node processes; killed when dropped (including nodes restarted from their `start` argv).
pub struct SseCluster {
    dir: PathBuf,
    log: PathBuf,
    topic: String,
    ready_timeout: Duration,
    nodes: Vec<SseNode>,
    children: Vec<Option<Child>>,
}

impl SseCluster {
    /// Starts `nodes` node processes in `dir` (created when missing) and waits until each serves.
    pub async fn start(
        dir: &Path,
        nodes: usize,
        options: &ClusterOptions,
    ) -> Result<SseCluster, String> {
        if nodes == 0 {
            return Err("nodes: a cluster needs at least one node".into());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the cluster folder {}: {e}", dir.display()))?;
        // Absolute, so a node's `start` argv works from any working directory.
        let dir = &std::path::absolute(dir)
            .map_err(|e| format!("cannot resolve the cluster folder {}: {e}", dir.display()))?;
        let binary = match &options.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot find the current executable: {e}"))?,
        };
        let log = dir.join("events.db");
        // Create the tables once, before nodes race to do it.
        EventLog::open(&log).await?.close().await;
        let mut cluster = SseCluster {
            dir: dir.to_path_buf(),
            log,
            topic: options.topic.clone(),
            ready_timeout: options.ready_timeout,
            nodes: Vec::with_capacity(nodes),
            children: Vec::with_capacity(nodes),
        };
        let mut launches = Vec::with_capacity(nodes);
        for index in 0..nodes {
            let node_options = options.per_node.get(&index).unwrap_or(&options.node);
            let name = format!("sse-{}", index + 1);
            let pidfile = dir.join(format!("{name}.pid"));
            let argv = node_argv(&binary, &cluster.log, "127.0.0.1:0", &pidfile, node_options);
            let stderr_log = dir.join(format!("{name}.log"));
            let (child, ready) = spawn_node(&argv, &stderr_log)?;
            cluster.children.push(Some(child));
            launches.push((
                index,
                name,
                pidfile,
                stderr_log,
                node_options.clone(),
                ready,
            ));
        }
        for (index, name, pidfile, stderr_log, node_options, ready) in launches {
            let addr = cluster.await_ready(&name, ready, &stderr_log).await?;
            let start = node_argv(
                &binary,
                &cluster.log,
                &addr.to_string(),
                &pidfile,
                &node_options,
            );
            cluster.nodes.push(SseNode {
                index,
                name,
                addr,
                pidfile,
                start,
                ready: format!("http://{addr}/healthz"),
                stderr_log,
                options: node_options,
            });
        }
        Ok(cluster)
    }

    pub fn nodes(&self) -> &[SseNode] {
        &self.nodes
    }

    /// Node `index` (0-based). Panics when out of range, like indexing.
    pub fn node(&self, index: usize) -> &SseNode {
        &self.nodes[index]
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shared SQLite event log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Where to publish on the cluster's topic (through the first node; any node works).
    pub fn publish_url(&self) -> String {
        self.nodes[0].pub_url(&self.topic)
    }

    /// Where to subscribe to the cluster's topic on node `index`.
    pub fn subscribe_url(&self, index: usize) -> String {
        self.nodes[index].sub_url(&self.topic)
    }

    /// Every node's address, e.g. as the upstreams of a front proxy.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.to_string()).collect()
    }

    /// Runs node `index`'s `start` argv (after it was killed) and waits until it serves again.
    pub async fn restart(&mut self, index: usize) -> Result<(), String> {
        let node = self
            .nodes
            .get(index)
            .ok_or_else(|| format!("node {index}: the cluster has {} nodes", self.nodes.len()))?
            .clone();
        if let Some(mut old) = self.children[index].take() {
            // Reap the killed process so it does not linger as a zombie.
            let _ = old.kill();
            let _ = old.wait();
        }
        let (child, ready) = spawn_node(&node.start, &node.stderr_log)?;
        self.children[index] = Some(child);
        self.await_ready(&node.name, ready, &node.stderr_log)
            .await
            .map(|_| ())
    }

    async fn await_ready(
        &self,
        name: &str,
        ready: oneshot::Receiver<SocketAddr>,
        stderr_log: &Path,
    ) -> Result<SocketAddr, String> {
        let failed = |why: &str| {
            let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
            format!("SSE node {name} {why}; its stderr:\n{stderr}")
        };
        match tokio::time::timeout(self.ready_timeout, ready).await {
            Ok(Ok(addr)) => Ok(addr),
            Ok(Err(_)) => Err(failed("exited before it was ready")),
            Err(_) => Err(failed(&format!(
                "was not ready within {}",
                crate::config::duration::format(self.ready_timeout)
            ))),
        }
    }
}

impl Drop for SseCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            kill_child(child);
        }
        // Nodes restarted by someone else (a drill's `start` command) are not our children:
        // find them by their pidfile, and only when the process is really that node.
        for node in &self.nodes {
            if let Some(pid) = node.pid().filter(|pid| runs_node(*pid, &node.pidfile)) {
                // SAFETY: kill(2) with a pid checked just above; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

fn kill_child(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The argv of a node: `patrol demo sse-node …`.
fn node_argv(
    binary: &Path,
    log: &Path,
    listen: &str,
    pidfile: &Path,
    options: &NodeOptions,
) -> Vec<String> {
    let mut argv = vec![
        binary.display().to_string(),
        "demo".into(),
        "sse-node".into(),
        "--log".into(),
        log.display().to_string(),
        "--listen".into(),
        listen.into(),
        "--pidfile".into(),
        pidfile.display().to_string(),
        "--buffer".into(),
        options.buffer.to_string(),
        "--heartbeat".into(),
        crate::config::duration::format(options.heartbeat),
    ];
    if options.ignore_last_event_id {
        argv.push("--ignore-last-event-id".into());
    }
    argv
}

/// Spawns a node; the receiver gets its address once it prints the readiness line. Its stderr
/// is copied to `stderr_log` by a thread (a pipe nobody reads would block the node).
fn spawn_node(
    argv: &[String],
    stderr_log: &Path,
) -> Result<(Child, oneshot::Receiver<SocketAddr>), String> {
    let log_file = std::fs::File::create(stderr_log)
        .map_err(|e| format!("cannot create {}: {e}", stderr_log.display()))?;
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    let mut child =
        spawn_from_lasting_thread(command).map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let (tx, rx) = oneshot::channel();
    let stderr = child
        .stderr
        .take()
        .ok_or("the node's stderr is not piped")?;
    std::thread::spawn(move || copy_stderr(stderr, log_file, tx));
    Ok((child, rx))
}

/// Copies the node's stderr to its log file and reports the readiness line's address.
fn copy_stderr(
    stderr: std::process::ChildStderr,
    mut log_file: std::fs::File,
    ready: oneshot::Sender<SocketAddr>,
) {
    let mut ready = Some(ready);
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let _ = writeln!(log_file, "{line}");
        let addr = line
            .strip_prefix(READY_PREFIX)
            .and_then(|a| a.trim().parse().ok());
        if let (Some(addr), Some(tx)) = (addr, ready.take()) {
            let _ = tx.send(addr);
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the process. The death signal set by
/// [`die_with_parent`] fires when the *thread* that forked the child ends, and runtime threads
/// (tokio's blocking pool, a worker left by `block_in_place`) may end while the cluster lives.
fn spawn_from_lasting_thread(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("sse-node-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let gone = || std::io::Error::other("the process-spawning thread is gone");
    let spawner = spawner.as_ref().ok_or_else(gone)?;
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner.send((command, reply_tx)).map_err(|_| gone())?;
    // A fork and exec: short enough to wait for on an async thread.
    reply_rx.recv().map_err(|_| gone())?
}

/// A node started by a test or the demo must not outlive it, even when the parent is killed.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // Own process group: a Ctrl-C meant for the drill must not kill the nodes it may restart.
    command.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// Whether process `pid` is a node using `pidfile` (guards against a recycled pid).
fn runs_node(pid: i32, pidfile: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = pidfile.display().to_string();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == wanted.as_bytes())
}
