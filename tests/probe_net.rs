//! `kind: tls` and `kind: tcp` against real servers on loopback: certificate days left, invalid
//! chains reported as `crit` with their reason, a CA file that makes them valid, connect times and
//! banners.

mod net_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use net_support::{
    Leaf, Rules, TestCa, assert_contains, assert_starts_with, check_from, closed_port,
    judged_error, load_errors_of, lone_check, lone_check_yaml, measure_lone, number, run, run_lone,
    serve_https_for,
};
use patrol::result::{CheckResult, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

/// An HTTPS server whose leaf (valid `days`) comes from a fresh CA, and rules that trust that CA
/// (as `ca.pem`), their rule file written by `rule_file` for the server's address.
async fn trusted_https(days: i64, rule_file: impl FnOnce(SocketAddr) -> String) -> (Rules, Leaf) {
    let ca = TestCa::new();
    let (addr, leaf) = serve_https_for(hello(), &ca, days).await;
    let rules = Rules::new()
        .file("ca.pem", &ca.pem())
        .file("r.yaml", &rule_file(addr));
    (rules, leaf)
}

/// A rule file whose only check is the tls check `t` of `addr` with `ca_file: ca.pem`; `more`
/// adds to its YAML flow mapping.
fn tls_trusting_ca_file(addr: SocketAddr, more: &str) -> String {
    lone_check_yaml(
        "t",
        &format!("kind: tls, address: \"{addr}\", ca_file: ca.pem{more}"),
    )
}

#[tokio::test]
async fn tls_untrusted_chain_is_crit_but_still_reports_days() {
    let (addr, leaf) = serve_https_for(hello(), &TestCa::new(), 30).await;
    let r = run_lone("t", &format!("kind: tls, address: \"{addr}\"")).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(r.unit, "days");
    leaf.assert_days_left(number(&r.value));
    assert_starts_with(&r.message, "certificate chain invalid: ");
    assert_contains(&r.message.to_lowercase(), "unknown issuer");
}

#[tokio::test]
async fn tls_with_ca_file_verifies_and_reports_the_validity() {
    let (rules, leaf) =
        trusted_https(45, |addr| tls_trusting_ca_file(addr, ", warn: lt(30)")).await;
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let days = number(&r.value);
    leaf.assert_days_left(days);
    assert!(days > 43.0 && days <= 45.0, "{days}");
}

#[tokio::test]
async fn tls_wrong_server_name_is_crit() {
    let (rules, _leaf) = trusted_https(30, |addr| {
        format!(
            "checks:\n  - {{ name: wrong, kind: tls, address: \"{addr}\", ca_file: ca.pem, server_name: api.example.com }}\n  \
             - {{ name: right, kind: tls, address: \"{addr}\", ca_file: ca.pem, server_name: localhost }}\n"
        )
    })
    .await;
    let r = run(&rules.check("wrong")).await;
    assert_eq!(r.status, Status::Crit);
    assert_starts_with(&r.message, "certificate chain invalid: ");
    assert_contains(&r.message, "api.example.com");
    assert_eq!(run(&rules.check("right")).await.status, Status::Ok);
}

#[tokio::test]
async fn tls_expired_certificate_has_negative_days_and_is_crit() {
    let (rules, leaf) = trusted_https(-3, |addr| tls_trusting_ca_file(addr, "")).await;
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Crit);
    let days = number(&r.value);
    assert!(days < -2.0, "{days}");
    leaf.assert_days_left(days);
    assert_starts_with(
        &r.message,
        "certificate chain invalid: certificate expired at ",
    );
}

#[tokio::test]
async fn tls_takes_its_address_from_an_http_target() {
    let (rules, leaf) = trusted_https(20, |addr| {
        format!(
            "targets:\n  site: {{ kind: http, url: \"https://{addr}/health\" }}\nchecks:\n  - {{ name: t, kind: tls, target: site, ca_file: ca.pem }}\n"
        )
    })
    .await;
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    leaf.assert_days_left(number(&r.value));
}

#[tokio::test]
async fn tls_connection_refused_is_an_error() {
    let port = closed_port().await;
    let (_r, check) = lone_check("t", &format!("kind: tls, address: \"127.0.0.1:{port}\""));
    let message = judged_error(&check).await;
    assert_starts_with(&message, &format!("connect to 127.0.0.1:{port} failed"));
}

#[tokio::test]
async fn tls_against_a_plain_tcp_server_is_an_error() {
    let addr = one_reply_server(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let err = measure_lone("t", &format!("kind: tls, address: \"{addr}\""))
        .await
        .unwrap_err();
    assert_starts_with(&err.0, &format!("TLS handshake with {addr} failed"));
}

#[tokio::test]
async fn tls_missing_ca_file_is_an_error_naming_it() {
    let err = measure_lone(
        "t",
        "kind: tls, address: \"127.0.0.1:1\", ca_file: nope.pem",
    )
    .await
    .unwrap_err();
    assert!(
        err.0.starts_with("ca_file ") && err.0.contains("nope.pem"),
        "{err}"
    );
}

/// Measures and judges the tcp check `t` of `address`; `more` adds to its YAML flow mapping.
async fn run_tcp(address: impl std::fmt::Display, more: &str) -> CheckResult {
    run_lone("t", &format!("kind: tcp, address: \"{address}\"{more}")).await
}

/// A TCP server that accepts one connection, sends `reply` (if any) and closes it.
async fn one_reply_server(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = s.write_all(reply).await;
    });
    addr
}

/// A TCP server that, per connection, sends `greeting`, then answers `PING\r\n` with `+PONG\r\n`.
async fn tcp_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(greeting).await;
                let mut buf = [0u8; 64];
                let mut got = Vec::new();
                while got.len() < 64 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    if got.ends_with(b"PING\r\n") {
                        let _ = s.write_all(b"+PONG\r\n").await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tcp_connect_time_is_measured() {
    let addr = tcp_server(b"").await;
    let r = run_tcp(addr, ", crit: gt(1000)").await;
    assert_eq!(
        (r.status, r.unit.as_str()),
        (Status::Ok, "ms"),
        "{}",
        r.message
    );
    let ms = number(&r.value);
    assert!((0.0..1000.0).contains(&ms), "{ms}");
}

#[tokio::test]
async fn tcp_banner_present_and_send_expect_exchange() {
    let addr = tcp_server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let yaml = format!(
        "targets:\n  box: {{ kind: tcp, address: \"{addr}\" }}\nchecks:\n  - {{ name: banner, kind: tcp, target: box, expect: SSH-2.0 }}\n  \
         - {{ name: ping, kind: tcp, target: box, send: 'PING\\r\\n', expect: '+PONG\\r\\n' }}\n"
    );
    let (rules, banner) = check_from(&yaml, "banner");
    let r = run(&banner).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let r = run(&rules.check("ping")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
}

#[tokio::test]
async fn tcp_missing_banner_is_crit_naming_what_was_received() {
    let addr = tcp_server(b"220 smtp ready\r\n").await;
    let (_r, check) = lone_check(
        "t",
        &format!("kind: tcp, address: \"{addr}\", timeout: 1s, expect: SSH-"),
    );
    let t0 = Instant::now();
    let r = run(&check).await;
    // It waits for the banner most of the timeout, but ends before the runner would cut it off.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1000),
        "waited {waited:?}"
    );
    assert_eq!(r.status, Status::Crit);
    assert!(r.value.is_some(), "the connect time is still reported");
    assert_starts_with(&r.message, r#"expect: "SSH-" not received within "#);
    assert!(
        r.message.ends_with(r#"; got "220 smtp ready\r\n""#),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tcp_peer_closing_without_banner_is_crit() {
    let addr = one_reply_server(b"").await;
    let r = run_tcp(addr, ", expect: \"+OK\"").await;
    assert_eq!(r.status, Status::Crit);
    assert!(
        r.message.contains(r#"expect: "+OK" not received"#) && r.message.ends_with("got nothing"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tcp_connection_refused_is_an_error() {
    let port = closed_port().await;
    let r = run_tcp(format!("127.0.0.1:{port}"), "").await;
    assert_eq!(r.status, Status::Error);
    assert_starts_with(&r.message, &format!("connect to 127.0.0.1:{port} failed"));
    assert_contains(&r.message.to_lowercase(), "refused");
}

#[tokio::test]
async fn tcp_malformed_escape_is_rejected_when_loading() {
    let text = load_errors_of(&lone_check_yaml(
        "t",
        "kind: tcp, address: \"127.0.0.1:1\", send: 'A\\q'",
    ));
    assert_contains(&text, "unknown escape");
}
