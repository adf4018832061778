//! Harness for the probe tests: a test CA and leaf certificates (rcgen), an HTTPS server (axum
//! over tokio-rustls) on a random loopback port, loading checks from YAML written to a temporary
//! rules directory, and measuring and judging them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone, Utc};
use patrol::config::{Check, Diagnostic, RuleSet};
use patrol::engine::{RunFacts, judge};
use patrol::probe::{Measurement, ProbeContext, ProbeError};
use patrol::result::{CheckResult, Status, Value};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A certificate authority that no public root store knows.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate with its key and expiry.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub not_after: chrono::DateTime<Utc>,
}

impl Leaf {
    /// The leaf and its chain as PEM, for servers that read files (Prometheus, tonic).
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }

    /// The leaf's private key as PEM.
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", self.key.secret_pkcs8_der())
    }
}

/// A PEM block of `der` labelled `label` (`CERTIFICATE`, `PRIVATE KEY`).
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "patrol test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `127.0.0.1` and `localhost`, valid from 2020 until midnight UTC `days` from today
    /// (negative: already expired).
    pub fn leaf(&self, days: i64) -> Leaf {
        let not_after = midnight_in_days(days);
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "patrol test server");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(
            not_after.year(),
            not_after.month() as u8,
            not_after.day() as u8,
        );
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.issuer.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
        }
    }
}

impl Leaf {
    /// Days from now until the certificate expires, as the probes should report them.
    pub fn days_left(&self) -> f64 {
        (self.not_after - Utc::now()).num_milliseconds() as f64 / 86_400_000.0
    }

    /// Asserts that a probe reported this certificate's days left (to within 0.01 days).
    pub fn assert_days_left(&self, days: f64) {
        assert!(
            (days - self.days_left()).abs() < 0.01,
            "{days} vs {}",
            self.days_left()
        );
    }
}

fn midnight_in_days(days: i64) -> chrono::DateTime<Utc> {
    let date = (Utc::now() + chrono::Duration::days(days)).date_naive();
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap())
}

/// Accepts TCP connections and completes the TLS handshake before handing them to axum; a client
/// that rejects the certificate (or stalls) is skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `router` over HTTPS with `leaf` on a random loopback port; returns the address.
pub async fn serve_https(router: axum::Router, leaf: &Leaf) -> SocketAddr {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        leaf.chain.clone(),
        PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
    )
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Serves `router` over HTTPS with a fresh leaf of `ca` valid for `days` (installing the crypto
/// provider first); returns the address and the leaf.
pub async fn serve_https_for(router: axum::Router, ca: &TestCa, days: i64) -> (SocketAddr, Leaf) {
    patrol::install_crypto_provider();
    let leaf = ca.leaf(days);
    let addr = serve_https(router, &leaf).await;
    (addr, leaf)
}

/// Serves `router` over plain HTTP on a random loopback port; returns the address.
pub async fn serve_http(router: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A loopback port nobody listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Rule files written into a temporary directory, loaded with a given environment.
pub struct Rules {
    pub dir: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
}

impl Rules {
    pub fn new() -> Rules {
        Rules {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> Rules {
        self.env.insert(name.into(), value.into());
        self
    }

    pub fn file(self, name: &str, contents: &str) -> Rules {
        std::fs::write(self.dir.path().join(name), contents).unwrap();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Loads the directory: the rules, or the diagnostics that stopped them.
    pub fn try_load(&self) -> Result<RuleSet, Vec<Diagnostic>> {
        patrol::config::load_with_env(&[self.dir.path().to_path_buf()], &self.env)
    }

    /// Loads the directory; any diagnostic fails the test.
    pub fn load(&self) -> RuleSet {
        self.try_load()
            .unwrap_or_else(|d| panic!("rules did not load: {d:#?}"))
    }

    /// Loads the directory and returns the check called `name`.
    pub fn check(&self, name: &str) -> Arc<Check> {
        self.load()
            .check(name)
            .unwrap_or_else(|| panic!("no check {name}"))
            .clone()
    }
}

/// One check from a single rule file with `yaml` as its contents.
pub fn check_from(yaml: &str, name: &str) -> (Rules, Arc<Check>) {
    let rules = Rules::new().file("rules.yaml", yaml);
    let check = rules.check(name);
    (rules, check)
}

/// A rule file whose only check is called `name`: `fields` is the rest of its YAML flow mapping
/// (`kind: tcp, address: "…"`).
pub fn lone_check_yaml(name: &str, fields: &str) -> String {
    format!("checks:\n  - {{ name: {name}, {fields} }}\n")
}

/// The only check of a rule file (see [`lone_check_yaml`]).
pub fn lone_check(name: &str, fields: &str) -> (Rules, Arc<Check>) {
    check_from(&lone_check_yaml(name, fields), name)
}

/// Measures the only check of a rule file (see [`lone_check_yaml`]).
pub async fn measure_lone(name: &str, fields: &str) -> Result<Measurement, ProbeError> {
    let (_rules, check) = lone_check(name, fields);
    measure(&check).await
}

/// Measures and judges the only check of a rule file (see [`lone_check_yaml`]).
pub async fn run_lone(name: &str, fields: &str) -> CheckResult {
    let (_rules, check) = lone_check(name, fields);
    run(&check).await
}

/// The diagnostics of `yaml`, a rule file that must not load, as one text to search.
pub fn load_errors_of(yaml: &str) -> String {
    let diags = Rules::new()
        .file("r.yaml", yaml)
        .try_load()
        .expect_err("the rules must not load");
    format!("{diags:?}")
}

/// The diagnostics of `yaml` (as `r.yaml`), a rule file that must not load, one
/// `r.yaml:line:col: message` per line.
pub fn load_error_lines(yaml: &str) -> String {
    let diags = Rules::new()
        .file("r.yaml", yaml)
        .try_load()
        .expect_err("the rules must not load");
    diags
        .iter()
        .map(|d| {
            let file = d.file.file_name().unwrap().to_string_lossy();
            format!("{file}:{}:{}: {}", d.line, d.column, d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `yaml` as the only rule file, `${env:URL}` standing for `url`.
pub fn load_with_url(yaml: &str, url: &str) -> Result<RuleSet, Vec<Diagnostic>> {
    Rules::new()
        .env("URL", url)
        .file("rules.yaml", yaml)
        .try_load()
}

/// One item of a `checks:` list: the `key: value` lines of `fields`, indented under its `- `.
pub fn check_item(fields: &str) -> String {
    let mut lines = fields.lines();
    let mut item = format!("  - {}\n", lines.next().unwrap_or_default());
    for line in lines {
        item.push_str(&format!("    {line}\n"));
    }
    item
}

/// The check called `name` of `rules`.
pub fn check<'a>(rules: &'a RuleSet, name: &str) -> &'a Check {
    rules
        .check(name)
        .unwrap_or_else(|| panic!("no check {name}"))
}

/// The value of the first sample, if any.
pub fn single(m: &Measurement) -> Option<&Value> {
    m.samples.first().map(|s| &s.value)
}

/// The number a result or sample carries; anything else fails the test.
pub fn number(value: &Option<Value>) -> f64 {
    match value {
        Some(Value::Num(n)) => *n,
        other => panic!("expected a number, got {other:?}"),
    }
}

pub async fn measure(check: &Check) -> Result<Measurement, ProbeError> {
    let ctx = ProbeContext {
        check,
        timeout: check.common.timeout,
        memory: &Default::default(),
    };
    check.probe.measure(&ctx).await
}

/// Measures `check`, which must fail within `limit` (`context` names the case); the error.
pub async fn quick_error(check: &Check, limit: Duration, context: &str) -> ProbeError {
    let started = Instant::now();
    let err = measure(check).await.unwrap_err();
    assert!(
        started.elapsed() < limit,
        "{context}: {:?}",
        started.elapsed()
    );
    err
}

/// Measures `check`, which must fail, and asserts the engine judges that `error`; the message.
pub async fn judged_error(check: &Check) -> String {
    let err = measure(check).await.unwrap_err();
    let message = err.0.clone();
    assert_eq!(verdict(check, Err(err)).0, Status::Error, "{message}");
    message
}

/// Asserts that `err` says the database or cache at `127.0.0.1:{port}` refused the connection
/// (`context` names the case).
pub fn assert_refused_connection(err: &ProbeError, port: u16, context: &str) {
    assert!(
        err.0
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{context}: {err}"
    );
    assert!(err.0.to_lowercase().contains("refused"), "{context}: {err}");
}

/// Asserts that less than `limit` has passed since `started`.
pub fn assert_quicker_than(started: Instant, limit: Duration) {
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}");
}

/// Asserts that `text` starts with `prefix`, showing all of `text` otherwise.
pub fn assert_starts_with(text: &str, prefix: &str) {
    assert!(text.starts_with(prefix), "{text}");
}

/// Asserts that `text` contains `part`, showing all of `text` otherwise.
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text}");
}

/// The single result the engine makes of `outcome`.
pub fn judged(check: &Check, outcome: Result<Measurement, ProbeError>) -> CheckResult {
    let facts = RunFacts {
        run_id: "test-run",
        revision: "test",
        started_at: Utc::now(),
        duration_ms: 1.0,
    };
    let mut j = judge(check, outcome, &patrol::engine::Known::default(), &facts);
    assert_eq!(j.results.len(), 1, "{:?}", j.results);
    j.results.remove(0)
}

/// The status and message the engine gives `outcome`.
pub fn verdict(check: &Check, outcome: Result<Measurement, ProbeError>) -> (Status, String) {
    let result = judged(check, outcome);
    (result.status, result.message)
}

/// Measures and judges in one go.
pub async fn run(check: &Check) -> CheckResult {
    let outcome = measure(check).await;
    judged(check, outcome)
}
