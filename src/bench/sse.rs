//! `patrol bench sse`: how many SSE subscribers does the drill swarm hold, at what memory per
//! subscriber and how many events per second, next to a Node.js `eventsource` swarm measured in
//! the same run against the same servers.
//!
//! The servers run in child processes (`patrol bench sse server`), generating `--rate` events
//! per second each; each side runs in child processes too (`patrol bench sse swarm`, `node
//! benches/sse-peer/swarm.js`), so every RSS figure is the swarm's alone. One process can only
//! hold as many sockets as its hard RLIMIT_NOFILE allows, so N is split into shards of at most
//! `--per-process` subscribers, one server and one swarm process per shard, all at once.
//! Build with `--release`: an unoptimised build measures the compiler, not the design.

mod server;
mod side;
mod table;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use side::SideReport;

use crate::cli::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// Descriptors a swarm process keeps for itself beyond its subscribers.
const FD_RESERVE: u64 = 256;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SseBenchArgs {
    #[command(subcommand)]
    pub role: Option<SseRole>,
    /// Subscribers per side.
    #[arg(long, default_value_t = 20_000)]
    pub subscribers: u32,
    /// Measured window, once every subscriber is open.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Events per second each server sends to all of its subscribers.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// The peer measured after patrol.
    #[arg(long, value_enum, default_value_t = Peer::Node)]
    pub peer: Peer,
    /// Most subscribers in one process (default: the hard file descriptor limit minus a reserve).
    #[arg(long)]
    pub per_process: Option<u32>,
    /// Print the sides' reports as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// Node.js with the npm `eventsource` package (benches/sse-peer).
    Node,
    None,
}

#[derive(clap::Subcommand, Debug)]
pub enum SseRole {
    /// One event server (started by `bench sse`); prints its port, runs until stdin closes.
    #[command(hide = true)]
    Server {
        #[arg(long)]
        shard: u32,
        #[arg(long)]
        rate: f64,
    },
    /// patrol's swarm for one shard (started by `bench sse`); prints its report as JSON.
    #[command(hide = true)]
    Swarm {
        #[arg(long)]
        url: String,
        #[arg(long)]
        subscribers: u32,
        #[arg(long)]
        seconds: u64,
    },
}

pub async fn run(args: SseBenchArgs) -> u8 {
    match args.role {
        Some(SseRole::Server { shard, rate }) => match server::run(shard, rate).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("patrol bench sse server: {e}");
                EXIT_FAILED
            }
        },
        Some(SseRole::Swarm {
            ref url,
            subscribers,
            seconds,
        }) => {
            let report = side::run_patrol(url, subscribers, seconds).await;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            if report.error.is_some() {
                EXIT_FAILED
            } else {
                EXIT_OK
            }
        }
        None => compare(&args).await,
    }
}

fn check_args(args: &SseBenchArgs) -> Result<(), String> {
    if args.subscribers == 0 || args.subscribers > 1_000_000 {
        return Err("--subscribers must be between 1 and 1000000".into());
    }
    if args.seconds == 0 || args.seconds > 3600 {
        return Err("--seconds must be between 1 and 3600".into());
    }
    if !(args.rate > 0.0 && args.rate <= 10_000.0) {
        return Err("--rate must be above 0 and at most 10000".into());
    }
    if args.per_process == Some(0) {
        return Err("--per-process must be above 0".into());
    }
    Ok(())
}

/// Splits `n` subscribers into shards of at most `per_process`, as even as possible.
pub fn shards(n: u32, per_process: u32) -> Vec<u32> {
    let count = n.div_ceil(per_process.max(1));
    (0..count)
        .map(|i| n / count + u32::from(i < n % count))
        .collect()
}

fn default_per_process() -> u32 {
    let hard = crate::chaos::workload::fd_limit::hard_limit().unwrap_or(1024);
    u32::try_from(hard.saturating_sub(FD_RESERVE).max(1)).unwrap_or(u32::MAX)
}

async fn compare(args: &SseBenchArgs) -> u8 {
    if let Err(e) = check_args(args) {
        eprintln!("patrol bench sse: {e}");
        return EXIT_INVALID;
    }
    match compare_sides(args).await {
        Ok(patrol_held_all) => {
            if patrol_held_all {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
        Err(e) => {
            eprintln!("patrol bench sse: {e}");
            EXIT_FAILED
        }
    }
}

async fn compare_sides(args: &SseBenchArgs) -> Result<bool, String> {
    let per_process = args.per_process.unwrap_or_else(default_per_process);
    let shards = shards(args.subscribers, per_process);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find patrol's binary: {e}"))?;
    let load_before = super::usage::load_average();
    let mut servers = Vec::new();
    let mut urls = Vec::new();
    for i in 0..shards.len() {
        let (child, port) = start_server(&exe, i as u32, args.rate).await?;
        servers.push(child);
        urls.push(format!("http://127.0.0.1:{port}/sub"));
    }
    eprintln!(
        "bench sse: {} subscribers in {} process(es) of at most {per_process}; {} event(s)/s per server",
        args.subscribers,
        shards.len(),
        args.rate
    );
    eprintln!("bench sse: patrol swarm…");
    let patrol = run_side(&shards, &urls, |url, n| {
        patrol_command(&exe, url, n, args.seconds)
    })
    .await;
    let node = match args.peer {
        Peer::None => None,
        Peer::Node => {
            eprintln!("bench sse: Node.js eventsource swarm…");
            let dir = peer_dir();
            Some(match ensure_node_modules(&dir).await {
                Ok(()) => {
                    run_side(&shards, &urls, |url, n| {
                        node_command(&dir, url, n, args.seconds)
                    })
                    .await
                }
                Err(e) => error(e),
            })
        }
    };
    drop(servers);
    let context = table::Context {
        subscribers: args.subscribers,
        shards: shards.clone(),
        rate: args.rate,
        seconds: args.seconds,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        load_after: super::usage::load_average(),
    };
    if args.json {
        println!("{}", serde_json::json!({"patrol": patrol, "node": node}));
    } else {
        print!("{}", table::render(&context, &patrol, node.as_ref()));
    }
    Ok(patrol.held == u64::from(args.subscribers))
}

/// Starts one event server and reads the port it printed.
async fn start_server(exe: &Path, shard: u32, rate: f64) -> Result<(Child, u16), String> {
    let mut child = Command::new(exe)
        .args(["bench", "sse", "server", "--shard", &shard.to_string()])
        .args(["--rate", &rate.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the event server: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the event server has no stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .map_err(|_| "the event server did not print its port within 30s".to_string())?
    .map_err(|e| format!("cannot read the event server's port: {e}"))?;
    let port = line
        .trim()
        .parse()
        .map_err(|_| format!("the event server printed {line:?} instead of its port"))?;
    Ok((child, port))
}

/// Runs one process per shard at once and adds up their reports.
async fn run_side(
    shards: &[u32],
    urls: &[String],
    command: impl Fn(&str, u32) -> Command,
) -> SideReport {
    let runs = shards.iter().zip(urls).map(|(&n, url)| {
        let mut cmd = command(url, n);
        async move { run_process(&mut cmd).await }
    });
    let reports = futures::future::join_all(runs).await;
    sum(&reports)
}

async fn run_process(cmd: &mut Command) -> SideReport {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let limit = side::CONNECT_LIMIT + Duration::from_secs(3600 + 120);
    let out = match tokio::time::timeout(limit, out).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return error(format!("cannot run the side: {e}")),
        Err(_) => return error(format!("the side did not finish within {limit:?}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match last.map(serde_json::from_str::<SideReport>) {
        Some(Ok(r)) => r,
        Some(Err(e)) => error(format!(
            "unreadable report ({e}): {}",
            last.unwrap_or_default()
        )),
        None => error(format!("exited with {} without a report", out.status)),
    }
}

fn error(e: String) -> SideReport {
    SideReport {
        error: Some(e),
        ..SideReport::default()
    }
}

/// One side's processes together: counts and memory add up, time is the longest.
fn sum(reports: &[SideReport]) -> SideReport {
    let mut total = SideReport::default();
    let mut errors = Vec::new();
    for r in reports {
        total.held += r.held;
        total.rss_bytes += r.rss_bytes;
        total.rss_base_bytes += r.rss_base_bytes;
        total.events += r.events;
        total.cpu_secs += r.cpu_secs;
        total.seconds = total.seconds.max(r.seconds);
        total.connect_secs = total.connect_secs.max(r.connect_secs);
        errors.extend(r.error.clone());
    }
    if !errors.is_empty() {
        total.error = Some(errors.join("; "));
    }
    total
}

fn patrol_command(exe: &Path, url: &str, n: u32, seconds: u64) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["bench", "sse", "swarm", "--url", url]).args([
        "--subscribers",
        &n.to_string(),
        "--seconds",
        &seconds.to_string(),
    ]);
    cmd
}

fn node_command(dir: &Path, url: &str, n: u32, seconds: u64) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("swarm.js"))
        .args([url, &n.to_string(), &seconds.to_string()]);
    cmd
}

/// `benches/sse-peer` of the checkout patrol was built from, or of the working directory.
fn peer_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sse-peer");
    if built.join("swarm.js").exists() {
        built
    } else {
        PathBuf::from("benches/sse-peer")
    }
}

async fn ensure_node_modules(dir: &Path) -> Result<(), String> {
    if !dir.join("swarm.js").exists() {
        return Err(format!(
            "{} has no swarm.js (run from the checkout)",
            dir.display()
        ));
    }
    if dir.join("node_modules/eventsource").exists() {
        return Ok(());
    }
    eprintln!("bench sse: npm install --prefix {}", dir.display());
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .status()
        .await
        .map_err(|e| format!("cannot run npm (is Node.js installed?): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "npm install --prefix {} failed: {status}",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_split_evenly_under_the_per_process_limit() {
        assert_eq!(shards(5_000, 19_744), vec![5_000]);
        assert_eq!(shards(20_000, 19_744), vec![10_000, 10_000]);
        assert_eq!(shards(7, 3), vec![3, 2, 2]);
        assert_eq!(shards(6, 3), vec![3, 3]);
    }

    #[test]
    fn side_reports_add_up() {
        let r = |held, events, error: Option<&str>| SideReport {
            held,
            rss_bytes: held * 1000,
            events,
            seconds: 10.0,
            error: error.map(str::to_string),
            ..SideReport::default()
        };
        let total = sum(&[r(10, 100, None), r(5, 50, Some("boom"))]);
        assert_eq!(
            (total.held, total.events, total.rss_bytes),
            (15, 150, 15_000)
        );
        assert_eq!(total.error.as_deref(), Some("boom"));
    }
}
