//! A headless Chromium driven through chromedriver's W3C WebDriver REST API with reqwest: just
//! what the status page test needs (navigate, run a script, take a screenshot). Debian's
//! `chromium` and `chromium-driver` packages provide both programs; scripts/test.sh installs
//! them, and a machine without them fails the test with that advice rather than skipping it.
//!
//! Clean-up does not depend on the test passing: [`Session`] deletes itself on drop (which closes
//! the browser), and [`Chromedriver`] kills its own process group on drop, taking any browser
//! process a failed delete left behind with it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest chromedriver or a new browser session may take to start.
pub const START_WAIT: Duration = Duration::from_secs(30);
/// Longest one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Panics with the fix when Chromium or chromedriver is not installed.
pub fn require_browser() {
    for (program, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: install the Debian package {package} \
             (scripts/test.sh installs chromium and chromium-driver)"
        );
    }
}

/// A chromedriver on a free loopback port, in its own process group.
pub struct Chromedriver {
    child: Child,
    pub port: u16,
    pub http: reqwest::Client,
    log: PathBuf,
}

impl Chromedriver {
    /// Starts chromedriver and waits (bounded) until `/status` says it is ready. A port taken
    /// between choosing and binding it is retried with another.
    pub async fn start(dir: &Path) -> Chromedriver {
        require_browser();
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = dir.join(format!("chromedriver-{attempt}.log"));
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group: dropping the driver kills it and every browser it started.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let mut driver = Chromedriver {
                child,
                port,
                http: reqwest::Client::builder()
                    .timeout(COMMAND_TIMEOUT)
                    .build()
                    .unwrap(),
                log,
            };
            if driver.wait_ready().await {
                return driver;
            }
            last_log = driver.log_text();
            driver.kill_group();
        }
        panic!("chromedriver did not become ready within {START_WAIT:?}:\n{last_log}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `/status` until `value.ready`; false when chromedriver exits or time runs out.
    async fn wait_ready(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < START_WAIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(response) = self.http.get(self.url("/status")).send().await
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM to the group, then SIGKILL if it has not gone within two seconds.
    fn kill_group(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: signals only the process group this harness created (process_group(0)).
        unsafe { libc::kill(-group, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Browser processes may outlive chromedriver in the group; end them all.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A browser session. Declare it after its [`Chromedriver`] so it is dropped first.
pub struct Session {
    pub id: String,
    driver_port: u16,
    http: reqwest::Client,
}

/// The Chromium arguments: headless, no sandbox (containers), nothing that calls out to the
/// internet, a window big enough for the whole page, a profile of its own.
pub fn chromium_args(profile: &Path, width: u32, height: u32) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("--window-size={width},{height}"));
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

impl Session {
    /// Opens a browser with `args` (see [`chromium_args`]).
    pub async fn new(driver: &Chromedriver, args: Vec<String>) -> Session {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let response = driver
            .http
            .post(driver.url("/session"))
            .timeout(START_WAIT)
            .json(&capabilities)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating a session failed: {e}"));
        let body: Value = response.json().await.unwrap();
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "chromedriver refused the session: {body}\n{}",
                    driver.log_text()
                )
            })
            .to_string();
        Session {
            id,
            driver_port: driver.port,
            http: driver.http.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.driver_port, self.id
        )
    }

    /// Sends a command and returns its `value`; a WebDriver error panics with its message.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(ok, "WebDriver {path} failed: {body}");
        body["value"].clone()
    }

    pub async fn navigate(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Polls `script` (every 200 ms, at most `wait`) until it returns something truthy, and
    /// returns that; panics with `what` and the last answer otherwise.
    pub async fn wait_for(&self, what: &str, wait: Duration, script: &str) -> Value {
        let started = Instant::now();
        let mut last = Value::Null;
        while started.elapsed() < wait {
            last = self.execute(script, json!([])).await;
            if truthy(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("timed out after {wait:?} waiting for {what}; last answer: {last}");
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let text = value.as_str().expect("the screenshot is base64 text");
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("the screenshot is valid base64")
    }

    /// The browser's console messages so far (chromedriver's log extension), as
    /// `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let value = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        value
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Session {
    /// Deletes the session (closing the browser) with a plain blocking request, since drop
    /// cannot await; the driver's group kill covers a delete that fails.
    fn drop(&mut self) {
        let path = format!("/session/{}", self.id);
        if let Err(e) = blocking_delete(self.driver_port, &path) {
            eprintln!("could not delete WebDriver session {}: {e}", self.id);
        }
    }
}

fn blocking_delete(port: u16, path: &str) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver may keep the connection open: read one whole answer, not until EOF.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !is_complete_response(&answer) {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Whether `bytes` hold an HTTP response's head and its whole `Content-Length` body.
fn is_complete_response(bytes: &[u8]) -> bool {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= head_end + 4 + length
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Checks that `png` is a well-formed PNG (signature, every chunk's CRC, `IHDR` first and
/// `IEND` last, image data present) and returns its width and height.
pub fn png_dimensions(png: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut rest = png.strip_prefix(SIGNATURE).ok_or("no PNG signature")?;
    let mut chunks = Vec::new();
    let mut size = None;
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(format!("truncated chunk after {chunks:?}"));
        }
        let len = u32::from_be_bytes(rest[0..4].try_into().unwrap()) as usize;
        if rest.len() < 12 + len {
            return Err(format!("chunk {} longer than the file", chunks.len()));
        }
        let kind = String::from_utf8_lossy(&rest[4..8]).to_string();
        let data = &rest[8..8 + len];
        let crc = u32::from_be_bytes(rest[8 + len..12 + len].try_into().unwrap());
        if crc32(&rest[4..8 + len]) != crc {
            return Err(format!("bad CRC in chunk {kind}"));
        }
        if kind == "IHDR" {
            if len != 13 {
                return Err("IHDR is not 13 bytes".into());
            }
            size = Some((
                u32::from_be_bytes(data[0..4].try_into().unwrap()),
                u32::from_be_bytes(data[4..8].try_into().unwrap()),
            ));
        }
        chunks.push(kind);
        rest = &rest[12 + len..];
    }
    if chunks.first().map(String::as_str) != Some("IHDR") {
        return Err(format!("the first chunk is not IHDR: {chunks:?}"));
    }
    if chunks.last().map(String::as_str) != Some("IEND") {
        return Err(format!("the last chunk is not IEND: {chunks:?}"));
    }
    if !chunks.iter().any(|c| c == "IDAT") {
        return Err("no image data (IDAT)".into());
    }
    size.ok_or_else(|| "no IHDR".into())
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_response_is_complete_with_its_whole_body() {
    assert!(!is_complete_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
    ));
    assert!(!is_complete_response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}"
    ));
    assert!(is_complete_response(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    ));
    assert!(is_complete_response(b"HTTP/1.1 204 No Content\r\n\r\n"));
}

#[test]
fn crc32_matches_the_reference_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"IEND"), 0xAE42_6082);
}
