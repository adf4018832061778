//! Harness for tests/notify_http.rs: a real Alertmanager (Debian `prometheus-alertmanager`) run as
//! a child process on a random loopback port, clustering off, storage in a temporary directory,
//! routing every alert at once to a webhook the test serves; and a recording fake HTTP server.
#![allow(dead_code)]

pub mod fake;
pub mod fixtures;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long Alertmanager may take to report ready.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Attempts at starting it (a random port can be taken between choosing and binding it).
const START_ATTEMPTS: usize = 3;
const LOG_FILE: &str = "alertmanager.log";

/// A running Alertmanager, killed when dropped.
pub struct Alertmanager {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts Alertmanager routing everything to `webhook_url` (group_wait 0s, group_interval 1s,
    /// resolved notices on) and waits until `/-/ready` answers 200.
    pub async fn start(webhook_url: &str) -> Alertmanager {
        let binary = find_binary().expect(
            "Alertmanager is not installed: apt-get install prometheus-alertmanager (scripts/test.sh does)",
        );
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("alertmanager.yml"), config(webhook_url)).unwrap();
            let mut am = spawn(&binary, dir);
            match am.wait_ready().await {
                Ok(()) => return am,
                // Dropping `am` kills what is left of it before the next attempt.
                Err(log) => last_log = log,
            }
        }
        panic!("Alertmanager did not become ready; its log:\n{last_log}");
    }

    /// `GET /api/v2/alerts` filtered to the alerts named `name` (resolved ones are not listed).
    pub async fn listed(&self, http: &reqwest::Client, name: &str) -> Vec<serde_json::Value> {
        let filter = format!("alertname=\"{name}\"");
        let url = format!("{}/api/v2/alerts", self.url);
        let url = reqwest::Url::parse_with_params(&url, [("filter", filter)]).unwrap();
        let r = http.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.unwrap()
    }

    /// What Alertmanager logged so far (shown when a test fails).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
    }

    /// Polls `/-/ready` (bounded); gives the log back when the process exits or never gets ready.
    async fn wait_ready(&mut self) -> Result<(), String> {
        patrol::install_crypto_provider();
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("(exited with {status})\n{}", self.log()));
            }
            let ready = http
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
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

fn spawn(binary: &Path, dir: TempDir) -> Alertmanager {
    let port = free_port();
    let log = File::create(dir.path().join(LOG_FILE)).unwrap();
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Empty: no cluster listener, so no gossip and no port beyond the web one.
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("Alertmanager starts");
    Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

/// Every alert to one webhook receiver, sent at once and regrouped every second, resolved too.
fn config(webhook_url: &str) -> String {
    format!(
        r#"route:
  receiver: patrol-test
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: patrol-test
    webhook_configs:
      - url: '{webhook_url}'
        send_resolved: true
"#
    )
}

/// Debian installs `prometheus-alertmanager`, upstream builds `alertmanager`.
fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["prometheus-alertmanager", "alertmanager"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A loopback port free at the moment of asking.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether `c` is Alertmanager's webhook notice with `status` about the alert named `name`.
pub fn is_notice_about(c: &fake::Captured, name: &str, status: &str) -> bool {
    let body = c.json();
    body["status"] == status && body["alerts"][0]["labels"]["alertname"] == name
}
