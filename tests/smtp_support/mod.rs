//! Harness for the email receiver tests: a real SMTP server (aiosmtpd, `smtp_server.py` next to
//! this file) started as a child process on a free loopback port, and a private CA (rcgen) for its
//! STARTTLS / implicit-TLS certificate.
//!
//! The server prints "ready PORT" once it accepts connections, so no test waits on a timer; and it
//! writes each accepted mail (raw, plus a JSON summary parsed by Python's `email` package) before
//! answering 250, so a successful send means the mail is already on disk.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde::Deserialize;

/// How long the server may take to start (Python and aiosmtpd imports).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the test server behaves.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Fixed reply to every RCPT TO (e.g. "550 5.1.1 mailbox unavailable").
    pub rcpt_reply: Option<String>,
    /// Fixed reply to DATA (e.g. "451 4.7.1 try again later").
    pub data_reply: Option<String>,
    /// AUTH required with this login and password.
    pub auth: Option<(String, String)>,
    /// Certificate chain and key files: STARTTLS is offered (or, with `implicit_tls`, every
    /// connection starts with TLS).
    pub tls: Option<(PathBuf, PathBuf)>,
    pub require_starttls: bool,
    pub implicit_tls: bool,
}

/// A running aiosmtpd; killed when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// One accepted mail as the server saw it.
#[derive(Debug, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The AUTH login, when the client authenticated.
    pub login: Option<String>,
    /// Whether the session was TLS-protected when the mail was sent.
    pub encrypted: bool,
    pub message: ParsedMessage,
    /// The raw message as received.
    #[serde(skip)]
    pub raw: String,
}

/// The mail as Python's `email` package parses it (headers decoded, bodies decoded).
#[derive(Debug, Deserialize)]
pub struct ParsedMessage {
    pub content_type: String,
    /// Lower-case header names: subject, from, to, cc, message-id, x-patrol-idempotency-key, date.
    pub headers: BTreeMap<String, String>,
    pub parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
pub struct Part {
    pub content_type: String,
    pub charset: Option<String>,
    pub transfer_encoding: Option<String>,
    pub text: String,
}

impl ParsedMessage {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:#?}", self.headers))
    }

    pub fn part(&self, content_type: &str) -> &Part {
        self.parts
            .iter()
            .find(|p| p.content_type == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {:#?}", self.parts))
    }
}

impl SmtpServer {
    /// Starts the server and returns once it accepts connections.
    pub fn start(opts: &ServerOptions) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(script())
            .arg("--maildir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(reply) = &opts.rcpt_reply {
            cmd.args(["--rcpt-reply", reply]);
        }
        if let Some(reply) = &opts.data_reply {
            cmd.args(["--data-reply", reply]);
        }
        if let Some((user, password)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if let Some((cert, key)) = &opts.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if opts.require_starttls {
            cmd.arg("--require-starttls");
        }
        if opts.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        let mut child = cmd.spawn().expect("start the SMTP test server");
        let port = match wait_for_ready(&mut child) {
            Ok(port) => port,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                panic!("SMTP test server did not start: {why}\n{log}");
            }
        };
        SmtpServer { child, port, dir }
    }

    /// `smtp://127.0.0.1:PORT` (or `smtps://…`).
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Every mail accepted so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for n in 1.. {
            let json = self.dir.path().join(format!("{n}.json"));
            let Ok(text) = std::fs::read_to_string(&json) else {
                break;
            };
            let mut mail: Received = serde_json::from_str(&text).unwrap();
            mail.raw = std::fs::read_to_string(self.dir.path().join(format!("{n}.eml"))).unwrap();
            out.push(mail);
        }
        out
    }

    /// The one mail accepted so far.
    pub fn only_mail(&self) -> Received {
        let mut all = self.received();
        assert_eq!(all.len(), 1, "expected exactly one mail, got {}", all.len());
        all.remove(0)
    }

    /// What the server logged (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads "ready PORT" from the server's stdout, within [`STARTUP_TIMEOUT`].
fn wait_for_ready(child: &mut Child) -> Result<u16, String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = rx
        .recv_timeout(STARTUP_TIMEOUT)
        .map_err(|_| format!("no readiness line within {STARTUP_TIMEOUT:?}"))?
        .map_err(|e| format!("reading its stdout: {e}"))?;
    line.trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("unexpected first line {line:?}"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_support/smtp_server.py")
}

/// A Python that can import aiosmtpd: `$PATROL_TEST_PYTHON`, `python3` on PATH, or the system's
/// (Debian's `python3-aiosmtpd` lives there even when a pyenv `python3` comes first on PATH).
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let candidates = std::env::var("PATROL_TEST_PYTHON")
            .into_iter()
            .chain(["python3".to_string(), "/usr/bin/python3".to_string()]);
        for candidate in candidates {
            let ok = Command::new(&candidate)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return candidate;
            }
        }
        panic!("no python3 with aiosmtpd (apt-get install python3-aiosmtpd; scripts/test.sh does)")
    })
}

/// A private CA and a server certificate for 127.0.0.1 / localhost, written as PEM files.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "patrol SMTP test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp.patrol.test");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*ca).unwrap();

        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("chain.pem"), cert.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        TestPki { dir }
    }

    /// The CA certificate, for the receiver's `ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate chain and key files.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("chain.pem"),
            self.dir.path().join("key.pem"),
        )
    }
}
