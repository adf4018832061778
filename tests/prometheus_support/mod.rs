//! Harness for tests/probe_prometheus.rs: a real Prometheus (Debian `prometheus`, 2.42) run as a
//! child process on a random loopback port with its TSDB in a temporary directory, scraping
//! exporters the test serves (axum on 127.0.0.1:0, text exposition format the test writes, sample
//! timestamps included when a test needs an exact history); an authenticating proxy in front of
//! it (bearer token, tenant header, route prefix) that records the requests it forwards.
//!
//! Every test starts its own Prometheus (it is ready in about 0.1 s): tests stay independent and
//! each exporter is that test's own.
#![allow(dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use patrol::config::Check;
use patrol::engine::{Known, RunFacts, judge};
use patrol::probe::{Measurement, ProbeError};
use patrol::result::CheckResult;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// How long Prometheus may take to report ready, and a query to see what a test waits for.
const READY_WITHIN: Duration = Duration::from_secs(20);
const SEEN_WITHIN: Duration = Duration::from_secs(30);
/// Attempts at starting it (a random port can be taken between choosing and binding it).
const START_ATTEMPTS: usize = 3;
const LOG_FILE: &str = "prometheus.log";
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The job name of the exporters in the scrape configuration (their `job` label).
pub const JOB: &str = "exporter";

/// A user Prometheus' `--web.config.file` lets in, with the password and its bcrypt hash (cost
/// 5), computed once with libxcrypt: `perl -e 'print crypt("patrol-test-pw",
/// q($2b$05$abcdefghijklmnopqrstuu))'`. The tests prove Prometheus accepts it.
pub const WEB_USER: &str = "patrol";
pub const WEB_PASSWORD: &str = "patrol-test-pw";
pub const WEB_PASSWORD_BCRYPT: &str =
    "$2b$05$abcdefghijklmnopqrstuuykAhXjya8a1XVEh1X33emAG36MtK6m6";

/// A `/metrics` endpoint serving whatever exposition text the test set last.
pub struct Exporter {
    pub addr: SocketAddr,
    text: Arc<Mutex<String>>,
}

impl Exporter {
    /// Serves `text` (Prometheus text exposition format) on a random loopback port.
    pub async fn start(text: &str) -> Exporter {
        let shared = Arc::new(Mutex::new(text.to_string()));
        let router = Router::new()
            .route(
                "/metrics",
                get(|State(t): State<Arc<Mutex<String>>>| async move {
                    let body = t.lock().unwrap().clone();
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                }),
            )
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Exporter { addr, text: shared }
    }

    /// Serves `text` from now on.
    pub fn set(&self, text: &str) {
        *self.text.lock().unwrap() = text.to_string();
    }

    /// Its `instance` label as Prometheus gives it: `127.0.0.1:PORT`.
    pub fn instance(&self) -> String {
        self.addr.to_string()
    }
}

/// How a test's Prometheus serves its API.
#[derive(Default)]
pub struct WebConfig {
    /// Basic-auth users: `WEB_USER` with `WEB_PASSWORD`.
    pub basic_auth: bool,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<(String, String)>,
}

/// A running Prometheus, killed when dropped.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    dir: TempDir,
    /// How the harness itself talks to it (trust and credentials of `WebConfig`).
    http: reqwest::Client,
    basic_auth: bool,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `exporters` every second and waits until it is ready.
    pub async fn scraping(exporters: &[&Exporter]) -> Prometheus {
        Prometheus::start(exporters, WebConfig::default(), None).await
    }

    /// Starts Prometheus with `web` settings; `ca_pem` is what the harness trusts for HTTPS.
    pub async fn start(
        exporters: &[&Exporter],
        web: WebConfig,
        ca_pem: Option<&str>,
    ) -> Prometheus {
        patrol::install_crypto_provider();
        let binary = find_binary().expect(
            "Prometheus is not installed: apt-get install prometheus (scripts/test.sh does)",
        );
        let targets: Vec<String> = exporters.iter().map(|e| e.instance()).collect();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("prometheus.yml"), scrape_config(&targets)).unwrap();
            let web_file = write_web_config(dir.path(), &web);
            let http = harness_client(dir.path(), ca_pem);
            let mut prom = spawn(&binary, dir, web_file.as_deref(), http, &web);
            match prom.wait_ready().await {
                Ok(()) => return prom,
                // Dropping `prom` kills what is left of it before the next attempt.
                Err(log) => last_log = log,
            }
        }
        panic!("Prometheus did not become ready; its log:\n{last_log}");
    }

    /// `host:port` it listens on.
    pub fn host_port(&self) -> String {
        self.url.split("://").nth(1).unwrap().to_string()
    }

    /// What Prometheus logged so far (shown when a test fails).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
    }

    /// The `data.result` of an instant query the harness asks itself.
    pub async fn query(&self, promql: &str) -> serde_json::Value {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            [("query", promql)],
        )
        .unwrap();
        let mut request = self.http.get(url).timeout(Duration::from_secs(5));
        if self.basic_auth {
            request = request.basic_auth(WEB_USER, Some(WEB_PASSWORD));
        }
        let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(answer["status"], "success", "{answer}");
        answer["data"]["result"].clone()
    }

    /// Waits (bounded) until `promql` returns `series` series; their `data.result`.
    pub async fn wait_for_series(&self, promql: &str, series: usize) -> serde_json::Value {
        self.wait_until(promql, |r| r.as_array().is_some_and(|a| a.len() == series))
            .await
    }

    /// Waits (bounded) until each of the `series` series of `metric` has at least `samples`
    /// samples in the last minute (a range query ending at a whole second then sees them).
    pub async fn wait_for_samples(&self, metric: &str, series: usize, samples: u32) {
        self.wait_until(&format!("count_over_time({metric}[1m])"), |r| {
            r.as_array().is_some_and(|a| {
                a.len() == series
                    && a.iter().all(|s| {
                        s["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<u32>().ok())
                            .is_some_and(|n| n >= samples)
                    })
            })
        })
        .await;
    }

    /// Waits (bounded) until the result of `promql` satisfies `done`; that result.
    pub async fn wait_until(
        &self,
        promql: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + SEEN_WITHIN;
        loop {
            let result = self.query(promql).await;
            if done(&result) {
                return result;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{promql} did not give what the test waits for within {SEEN_WITHIN:?}; last \
                 result {result}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls `/-/ready` (bounded); gives the log back when the process exits or never gets ready.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(exited with {status})\n{}", self.log()));
            }
            let mut request = self
                .http
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(1));
            if self.basic_auth {
                request = request.basic_auth(WEB_USER, Some(WEB_PASSWORD));
            }
            if request.send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "(not ready within {READY_WITHIN:?})\n{}",
            self.log()
        ))
    }
}

fn spawn(
    binary: &Path,
    dir: TempDir,
    web_file: Option<&Path>,
    http: reqwest::Client,
    web: &WebConfig,
) -> Prometheus {
    let port = free_port();
    let log = File::create(dir.path().join(LOG_FILE)).unwrap();
    let mut command = Command::new(binary);
    command
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Stated, not left to the default: the range test's arithmetic depends on it.
        .arg("--query.lookback-delta=5m");
    if let Some(file) = web_file {
        command.arg(format!("--web.config.file={}", file.display()));
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("Prometheus starts");
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    Prometheus {
        child,
        url: format!("{scheme}://127.0.0.1:{port}"),
        dir,
        http,
        basic_auth: web.basic_auth,
    }
}

/// Every exporter scraped every second as job [`JOB`] (nothing scraped without exporters).
fn scrape_config(targets: &[String]) -> String {
    let mut yaml = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n");
    if !targets.is_empty() {
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        yaml.push_str(&format!(
            "scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ));
    }
    yaml
}

/// Writes `web.yml` (and the TLS files) when `web` asks for anything.
fn write_web_config(dir: &Path, web: &WebConfig) -> Option<PathBuf> {
    if !web.basic_auth && web.tls.is_none() {
        return None;
    }
    let mut yaml = String::new();
    if let Some((chain, key)) = &web.tls {
        std::fs::write(dir.join("server.pem"), chain).unwrap();
        std::fs::write(dir.join("server.key"), key).unwrap();
        yaml.push_str(&format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ));
    }
    if web.basic_auth {
        yaml.push_str(&format!(
            "basic_auth_users:\n  {WEB_USER}: '{WEB_PASSWORD_BCRYPT}'\n"
        ));
    }
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    Some(path)
}

/// The client the harness uses: trusting `ca_pem` when given (written next to the config).
fn harness_client(dir: &Path, ca_pem: Option<&str>) -> reqwest::Client {
    let mut tls = patrol::config::TlsOptions::default();
    if let Some(pem) = ca_pem {
        let path = dir.join("harness-ca.pem");
        std::fs::write(&path, pem).unwrap();
        tls.ca_file = Some(path);
    }
    patrol::probe::http::client::client_for_tls(&tls, dir).unwrap()
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// A loopback port free at the moment of asking.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A proxy in front of a Prometheus, as SREs put one there: it requires `Authorization: Bearer
/// <token>` (401 without it, 403 with another) and the tenant header `X-Scope-OrgID: <tenant>`
/// (401 without), serves the API under the route prefix `/prometheus`, and records the method
/// and path of every request it forwards.
pub struct AuthProxy {
    /// `http://127.0.0.1:PORT/prometheus`.
    pub url: String,
    forwarded: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    token: String,
    tenant: String,
    http: reqwest::Client,
    forwarded: Arc<Mutex<Vec<String>>>,
}

impl AuthProxy {
    pub async fn start(upstream: &Prometheus, token: &str, tenant: &str) -> AuthProxy {
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.url.clone(),
            token: token.to_string(),
            tenant: tenant.to_string(),
            http: reqwest::Client::new(),
            forwarded: forwarded.clone(),
        };
        let router = Router::new().fallback(forward).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        AuthProxy {
            url: format!("http://{addr}/prometheus"),
            forwarded,
        }
    }

    /// `METHOD /path` of every request forwarded so far.
    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }
}

async fn forward(State(s): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers: &HeaderMap = &parts.headers;
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header_text("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        None => return (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response(),
        Some(t) if t != s.token => {
            return (StatusCode::FORBIDDEN, "token not allowed\n").into_response();
        }
        Some(_) => {}
    }
    if header_text("x-scope-orgid") != Some(s.tenant.as_str()) {
        return (StatusCode::UNAUTHORIZED, "no org id\n").into_response();
    }
    let Some(path) = parts.uri.path().strip_prefix("/prometheus") else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    s.forwarded
        .lock()
        .unwrap()
        .push(format!("{} {path}", parts.method));
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let mut upstream = s
        .http
        .request(
            Method::from_bytes(parts.method.as_str().as_bytes()).unwrap(),
            format!("{}{path}{query}", s.upstream),
        )
        .body(body.to_vec());
    if let Some(ct) = header_text("content-type") {
        upstream = upstream.header("content-type", ct);
    }
    let answer = upstream.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let bytes = answer.bytes().await.unwrap();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        bytes.to_vec(),
    )
        .into_response()
}

/// Every result the engine makes of `outcome` (one per series).
pub fn judge_all(check: &Check, outcome: Result<Measurement, ProbeError>) -> Vec<CheckResult> {
    let facts = RunFacts {
        run_id: "test-run",
        revision: "test",
        started_at: chrono::Utc::now(),
        duration_ms: 1.0,
    };
    judge(check, outcome, &Known::default(), &facts).results
}

/// Whole seconds since the epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
