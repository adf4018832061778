//! `cargo bench --bench http_run`: how long `patrol run` takes for 1,000 HTTP checks against a local
//! server, next to a named peer doing the same 1,000 requests in the same run: curl driven by
//! `xargs -P 32` (the same global concurrency as `patrol run`'s default). Both hit the same
//! in-process axum server on 127.0.0.1; the ratio patrol/curl is what to compare across machines.
//!
//! Bounded: 1,000 requests per round, 3 rounds each.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHECKS: usize = 1000;
const ROUNDS: usize = 3;

fn main() {
    let port = start_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("bench.yaml"), rules_yaml(port)).unwrap();
    let store = format!("sqlite://{}", dir.path().join("bench.db").display());

    let patrol = median(ROUNDS, || -> Option<()> {
        let out = Command::new(env!("CARGO_BIN_EXE_patrol"))
            .args(["run", "--format", "json", "--rules"])
            .arg(&rules)
            .args(["--store", &store, "--per-target", "32"])
            .output()
            .expect("run patrol");
        let lines = String::from_utf8_lossy(&out.stdout).lines().count();
        assert_eq!(
            lines,
            CHECKS,
            "every check must report: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "all checks pass against the bench server"
        );
        Some(())
    })
    .expect("patrol ran");
    let curl = median(ROUNDS, || curl_peer(port));
    println!(
        "patrol run, {CHECKS} http checks (32 at once, results stored in SQLite): median {:.0} ms",
        ms(patrol)
    );
    match curl {
        Some(c) => println!(
            "peer: curl via xargs -P 32, {CHECKS} requests:                median {:.0} ms\nratio patrol/curl: {:.2}",
            ms(c),
            patrol.as_secs_f64() / c.as_secs_f64()
        ),
        None => println!("peer: curl not installed, no ratio"),
    }
}

fn rules_yaml(port: u16) -> String {
    let mut y =
        format!("targets:\n  bench: {{kind: http, url: \"http://127.0.0.1:{port}\"}}\nchecks:\n");
    for i in 0..CHECKS {
        y.push_str(&format!(
            "  - {{name: c{i}, kind: http, target: bench, request: {{path: /health/{i}}}, expect: {{status: 200}}, baseline: {{warmup: 5}}}}\n"
        ));
    }
    y
}

/// One round of the peer; None when curl is missing.
fn curl_peer(port: u16) -> Option<()> {
    let mut child = Command::new("xargs")
        .args([
            "-P",
            "32",
            "-n",
            "1",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    for i in 0..CHECKS {
        writeln!(stdin, "http://127.0.0.1:{port}/health/{i}").ok()?;
    }
    drop(stdin);
    let out = child.wait_with_output().ok()?;
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count();
    (ok == CHECKS).then_some(())
}

/// Median duration of `rounds` runs of `f`; None as soon as one run cannot be made.
fn median(rounds: usize, mut f: impl FnMut() -> Option<()>) -> Option<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Some(times[rounds / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An axum server on a random loopback port answering every `/health/{i}` with a small JSON body.
fn start_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/health/{i}",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}
