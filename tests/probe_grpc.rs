//! `kind: grpc` against real tonic servers on loopback running tonic-health's
//! `grpc.health.v1.Health` (plaintext h2c, and TLS with a certificate of a test CA): SERVING,
//! NOT_SERVING, per-service status, unknown services, a status that flips between runs, trust by
//! `ca_file` and `insecure_skip_verify`, and the errors (refused, silent, not a health server,
//! bad URLs at their place in the rule file).

mod net_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use net_support::{
    Leaf, Rules, TestCa, assert_contains, assert_starts_with, closed_port, load_error_lines,
    measure, number, run, run_lone,
};
use patrol::config::Check;
use patrol::result::{CheckResult, Status};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// A gRPC server with the standard health service on a random loopback port, TLS with `leaf`
/// when given. The server as a whole ("") starts SERVING, as tonic-health sets it.
async fn health_server(leaf: Option<&Leaf>) -> (SocketAddr, HealthReporter) {
    let (reporter, service) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = Server::builder();
    if let Some(leaf) = leaf {
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity(leaf)))
            .unwrap();
    }
    let serving = builder
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(async move { serving.await.unwrap() });
    (addr, reporter)
}

/// The leaf's chain and key as the PEM tonic reads.
fn identity(leaf: &Leaf) -> Identity {
    Identity::from_pem(leaf.chain_pem(), leaf.key_pem())
}

/// Rules with a `kind: grpc` target `g` (`url`, and the YAML of `tls` when given) and one check
/// `c` on it with `fields`; the CA's PEM is written beside them as ca.pem.
fn grpc_rules(url: &str, tls: Option<&str>, fields: &str, ca: Option<&TestCa>) -> (Rules, Check) {
    let tls = tls.map_or(String::new(), |t| format!(", tls: {t}"));
    let yaml = format!(
        "targets:\n  g: {{ kind: grpc, url: \"{url}\"{tls} }}\n\
         checks:\n  - {{ name: c, kind: grpc, target: g{fields} }}\n"
    );
    let mut rules = Rules::new().file("rules.yaml", &yaml);
    if let Some(ca) = ca {
        rules = rules.file("ca.pem", &ca.pem());
    }
    let check = (*rules.check("c")).clone();
    (rules, check)
}

fn assert_ok(result: &CheckResult) {
    assert_eq!(result.status, Status::Ok, "{}", result.message);
    let ms = number(&result.value);
    assert!(ms > 0.0 && ms < 5_000.0, "latency {ms}");
    assert_eq!(result.unit, "ms");
}

#[tokio::test]
async fn a_serving_server_is_ok_with_its_latency() {
    let (addr, _reporter) = health_server(None).await;
    let (_rules, check) = grpc_rules(&format!("http://{addr}"), None, "", None);
    assert_ok(&run(&check).await);
}

#[tokio::test]
async fn not_serving_is_crit_and_names_the_status() {
    let (addr, reporter) = health_server(None).await;
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let (_rules, check) = grpc_rules(&format!("http://{addr}"), None, "", None);
    let result = run(&check).await;
    assert_eq!(result.status, Status::Crit);
    assert_eq!(
        result.message,
        "health of the server: NOT_SERVING, not SERVING"
    );
    assert!(
        number(&result.value) > 0.0,
        "the latency is kept with the failure"
    );
}

#[tokio::test]
async fn a_service_is_asked_about_by_name() {
    let (addr, reporter) = health_server(None).await;
    reporter
        .set_service_status("orders.v1.Orders", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("billing.v1.Billing", ServingStatus::Unknown)
        .await;
    let url = format!("http://{addr}");

    let (_r, orders) = grpc_rules(&url, None, ", grpc_service: orders.v1.Orders", None);
    assert_ok(&run(&orders).await);

    let (_r, billing) = grpc_rules(&url, None, ", grpc_service: billing.v1.Billing", None);
    let result = run(&billing).await;
    assert_eq!(result.status, Status::Crit);
    assert_eq!(
        result.message,
        "health of service \"billing.v1.Billing\": UNKNOWN, not SERVING"
    );

    let (_r, unknown) = grpc_rules(&url, None, ", grpc_service: search.v1.Search", None);
    let result = run(&unknown).await;
    assert_eq!(result.status, Status::Crit);
    assert_eq!(
        result.message,
        format!(
            "service \"search.v1.Search\" unknown to the health server of {addr} \
             (NOT_FOUND: service not registered)"
        )
    );
}

#[tokio::test]
async fn a_status_that_flips_is_seen_by_each_run() {
    let (addr, reporter) = health_server(None).await;
    let (_rules, check) = grpc_rules(
        &format!("http://{addr}"),
        None,
        ", grpc_service: orders.v1.Orders",
        None,
    );
    reporter
        .set_service_status("orders.v1.Orders", ServingStatus::Serving)
        .await;
    assert_ok(&run(&check).await);
    reporter
        .set_service_status("orders.v1.Orders", ServingStatus::NotServing)
        .await;
    let result = run(&check).await;
    assert_eq!(result.status, Status::Crit);
    assert_contains(&result.message, "NOT_SERVING");
    reporter
        .set_service_status("orders.v1.Orders", ServingStatus::Serving)
        .await;
    assert_ok(&run(&check).await);
}

#[tokio::test]
async fn tls_trusts_a_private_ca_by_ca_file() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let leaf = ca.leaf(30);
    let (addr, _reporter) = health_server(Some(&leaf)).await;
    let url = format!("https://{addr}");

    let (_rules, check) = grpc_rules(&url, Some("{ ca_file: ca.pem }"), "", Some(&ca));
    assert_ok(&run(&check).await);

    // The same server without the CA: the chain leads nowhere trusted.
    let (_rules, untrusted) = grpc_rules(&url, None, "", None);
    let result = run(&untrusted).await;
    assert_eq!(result.status, Status::Error);
    assert_starts_with(&result.message, &format!("connect to {addr} failed: "));
    assert_contains(
        &result.message,
        "UnknownIssuer (the certificate chain does not lead to a trusted CA",
    );
}

#[tokio::test]
async fn tls_without_verification_still_needs_a_handshake() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let (addr, _reporter) = health_server(Some(&ca.leaf(30))).await;
    let (_rules, check) = grpc_rules(
        &format!("https://{addr}"),
        Some("{ insecure_skip_verify: true }"),
        "",
        None,
    );
    assert_ok(&run(&check).await);

    // Plaintext to a TLS server is no health check either.
    let (_rules, plaintext) = grpc_rules(&format!("http://{addr}"), None, "", None);
    let result = run(&plaintext).await;
    assert_eq!(result.status, Status::Error, "{}", result.message);
}

#[tokio::test]
async fn tls_to_a_plaintext_server_says_so() {
    patrol::install_crypto_provider();
    let (addr, _reporter) = health_server(None).await;
    let result = run_lone("c", &format!("kind: grpc, url: \"https://{addr}\"")).await;
    assert_eq!(result.status, Status::Error);
    assert_starts_with(&result.message, &format!("connect to {addr} failed: "));
    assert_contains(
        &result.message,
        "(the server does not speak TLS: use http:// for plaintext)",
    );
}

/// A plaintext health server behind a check of the `authorization` metadata, as an
/// authenticating proxy in front of a gRPC service would do.
async fn guarded_health_server(token: &'static str) -> SocketAddr {
    let (_reporter, service) = tonic_health::server::health_reporter();
    let guarded =
        InterceptedService::new(service, move |request: tonic::Request<()>| {
            match request.metadata().get("authorization") {
                Some(v) if v == token => Ok(request),
                _ => Err(tonic::Status::unauthenticated("a bearer token is required")),
            }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = Server::builder()
        .add_service(guarded)
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(async move { serving.await.unwrap() });
    addr
}

#[tokio::test]
async fn an_http_target_s_headers_are_sent_as_metadata() {
    let addr = guarded_health_server("Bearer grpc-t0k3n").await;
    let yaml = format!(
        "targets:\n  proxy:\n    kind: http\n    url: \"http://{addr}\"\n    headers: {{ Authorization: \"Bearer grpc-t0k3n\" }}\n\
         checks:\n  - {{ name: c, kind: grpc, target: proxy }}\n  \
         - {{ name: anonymous, kind: grpc, url: \"http://{addr}\" }}\n"
    );
    let rules = Rules::new().file("rules.yaml", &yaml);
    assert_ok(&run(&rules.check("c")).await);
    let result = run(&rules.check("anonymous")).await;
    assert_eq!(result.status, Status::Error);
    assert_eq!(
        result.message,
        format!("health check of {addr} failed: UNAUTHENTICATED: a bearer token is required")
    );
}

#[tokio::test]
async fn inline_url_and_address_reach_the_server() {
    let (addr, _reporter) = health_server(None).await;
    assert_ok(&run_lone("c", &format!("kind: grpc, url: \"http://{addr}\"")).await);
    assert_ok(&run_lone("c", &format!("kind: grpc, address: \"{addr}\"")).await);
}

#[tokio::test]
async fn a_refused_port_is_an_error() {
    let port = closed_port().await;
    let started = Instant::now();
    let result = run_lone("c", &format!("kind: grpc, address: \"127.0.0.1:{port}\"")).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(result.status, Status::Error);
    assert_starts_with(
        &result.message,
        &format!("connect to 127.0.0.1:{port} failed: "),
    );
    assert_contains(&result.message.to_lowercase(), "refused");
}

#[tokio::test]
async fn a_silent_server_is_an_error_within_the_timeout() {
    // Accepts connections and never answers a byte.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (_rules, check) = net_support::lone_check(
        "c",
        &format!("kind: grpc, address: \"{addr}\", timeout: 300ms"),
    );
    let started = Instant::now();
    let err = measure(&check).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_contains(&err.0, "timed out after 300ms");
}

#[tokio::test]
async fn a_server_without_the_health_service_is_an_error() {
    // An HTTP/2-capable server that is no gRPC health server: every path is 404.
    let addr = net_support::serve_http(axum::Router::new()).await;
    let result = run_lone("c", &format!("kind: grpc, url: \"http://{addr}\"")).await;
    assert_eq!(result.status, Status::Error, "{}", result.message);
    assert_starts_with(
        &result.message,
        &format!("{addr} does not implement grpc.health.v1.Health (UNIMPLEMENTED"),
    );
}

#[test]
fn bad_urls_and_tls_settings_are_named_at_their_place() {
    let target = |fields: &str| {
        load_error_lines(&format!(
            "targets:\n  g:\n    kind: grpc\n{fields}checks:\n  - {{ name: c, kind: grpc, target: g }}\n"
        ))
    };
    assert_contains(
        &target("    url: \"grpc://orders:50051\"\n"),
        "r.yaml:4:10: a gRPC URL starts with http:// or https://, not grpc://; write \
         http://host:port (plaintext) or https://host:port (TLS)",
    );
    assert_contains(
        &target("    url: \"http://orders:50051\"\n    tls: { insecure_skip_verify: true }\n"),
        "r.yaml:5:5: `tls` applies to https:// URLs; this one is plaintext http://",
    );
    assert_contains(
        &target("    url: \"https://orders:50051\"\n    tls: { ca_file: \"\" }\n"),
        "r.yaml:5:21: ca_file is empty",
    );
    assert_contains(
        &load_error_lines(
            "checks:\n  - name: c\n    kind: grpc\n    url: \"http://orders:50051/health\"\n",
        ),
        "r.yaml:4:10: a gRPC URL names a server, not a path or query",
    );
    assert_contains(
        &load_error_lines(
            "checks:\n  - name: c\n    kind: grpc\n    address: \"orders:50051\"\n    grpc_service: \" orders\"\n",
        ),
        "r.yaml:5:19: grpc_service has leading or trailing spaces",
    );
    assert_contains(
        &load_error_lines("checks:\n  - name: c\n    kind: grpc\n"),
        "a grpc check needs a `target` (or an inline url/address)",
    );
}
