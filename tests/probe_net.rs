//! `kind: tls` and `kind: tcp` against real servers on loopback: certificate days left, invalid
//! chains reported as `crit` with their reason, a CA file that makes them valid, connect times and
//! banners.

mod net_support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use net_support::{Rules, TestCa, check_from, closed_port, judged, measure, run, serve_https};
use patrol::result::{Status, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

fn number(value: &Option<Value>) -> f64 {
    match value {
        Some(Value::Num(d)) => *d,
        other => panic!("expected a number, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_untrusted_chain_is_crit_but_still_reports_days() {
    patrol::install_crypto_provider();
    let leaf = TestCa::new().leaf(30);
    let addr = serve_https(hello(), &leaf).await;
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tls, address: \"{addr}\" }}\n"),
        "t",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(r.unit, "days");
    assert!(
        (number(&r.value) - leaf.days_left()).abs() < 0.01,
        "{:?} vs {}",
        r.value,
        leaf.days_left()
    );
    assert!(
        r.message.starts_with("certificate chain invalid: "),
        "{}",
        r.message
    );
    assert!(
        r.message.to_lowercase().contains("unknown issuer"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tls_with_ca_file_verifies_and_reports_the_validity() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let leaf = ca.leaf(45);
    let addr = serve_https(hello(), &leaf).await;
    let rules = Rules::new()
        .file("ca.pem", &ca.pem())
        .file("r.yaml", &format!("checks:\n  - {{ name: t, kind: tls, address: \"{addr}\", ca_file: ca.pem, warn: lt(30) }}\n"));
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    let days = number(&r.value);
    assert!(
        (days - leaf.days_left()).abs() < 0.01,
        "{days} vs {}",
        leaf.days_left()
    );
    assert!(days > 43.0 && days <= 45.0, "{days}");
}

#[tokio::test]
async fn tls_wrong_server_name_is_crit() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let addr = serve_https(hello(), &ca.leaf(30)).await;
    let rules = Rules::new().file("ca.pem", &ca.pem()).file(
        "r.yaml",
        &format!(
            "checks:\n  - {{ name: wrong, kind: tls, address: \"{addr}\", ca_file: ca.pem, server_name: api.example.com }}\n  \
             - {{ name: right, kind: tls, address: \"{addr}\", ca_file: ca.pem, server_name: localhost }}\n"
        ),
    );
    let r = run(&rules.check("wrong")).await;
    assert_eq!(r.status, Status::Crit);
    assert!(
        r.message.starts_with("certificate chain invalid: "),
        "{}",
        r.message
    );
    assert!(r.message.contains("api.example.com"), "{}", r.message);
    assert_eq!(run(&rules.check("right")).await.status, Status::Ok);
}

#[tokio::test]
async fn tls_expired_certificate_has_negative_days_and_is_crit() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let leaf = ca.leaf(-3);
    let addr = serve_https(hello(), &leaf).await;
    let rules = Rules::new().file("ca.pem", &ca.pem()).file(
        "r.yaml",
        &format!("checks:\n  - {{ name: t, kind: tls, address: \"{addr}\", ca_file: ca.pem }}\n"),
    );
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Crit);
    let days = number(&r.value);
    assert!(
        days < -2.0 && (days - leaf.days_left()).abs() < 0.01,
        "{days} vs {}",
        leaf.days_left()
    );
    assert!(
        r.message
            .starts_with("certificate chain invalid: certificate expired at "),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tls_takes_its_address_from_an_http_target() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let leaf = ca.leaf(20);
    let addr = serve_https(hello(), &leaf).await;
    let rules = Rules::new().file("ca.pem", &ca.pem()).file(
        "r.yaml",
        &format!("targets:\n  site: {{ kind: http, url: \"https://{addr}/health\" }}\nchecks:\n  - {{ name: t, kind: tls, target: site, ca_file: ca.pem }}\n"),
    );
    let r = run(&rules.check("t")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert!((number(&r.value) - leaf.days_left()).abs() < 0.01);
}

#[tokio::test]
async fn tls_connection_refused_is_an_error() {
    let port = closed_port().await;
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tls, address: \"127.0.0.1:{port}\" }}\n"),
        "t",
    );
    let err = measure(&check).await.unwrap_err();
    assert!(
        err.0
            .starts_with(&format!("connect to 127.0.0.1:{port} failed")),
        "{err}"
    );
    assert_eq!(judged(&check, Err(err)).status, Status::Error);
}

#[tokio::test]
async fn tls_against_a_plain_tcp_server_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    });
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tls, address: \"{addr}\" }}\n"),
        "t",
    );
    let err = measure(&check).await.unwrap_err();
    assert!(
        err.0
            .starts_with(&format!("TLS handshake with {addr} failed")),
        "{err}"
    );
}

#[tokio::test]
async fn tls_missing_ca_file_is_an_error_naming_it() {
    let (_r, check) = check_from(
        "checks:\n  - { name: t, kind: tls, address: \"127.0.0.1:1\", ca_file: nope.pem }\n",
        "t",
    );
    let err = measure(&check).await.unwrap_err();
    assert!(
        err.0.starts_with("ca_file ") && err.0.contains("nope.pem"),
        "{err}"
    );
}

/// A TCP server that, per connection, sends `greeting`, then answers `PING\r\n` with `+PONG\r\n`.
async fn tcp_server(greeting: &'static [u8]) -> std::net::SocketAddr {
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
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tcp, address: \"{addr}\", crit: gt(1000) }}\n"),
        "t",
    );
    let r = run(&check).await;
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
    let yaml = format!(
        "checks:\n  - {{ name: t, kind: tcp, address: \"{addr}\", timeout: 1s, expect: SSH- }}\n"
    );
    let (_r, check) = check_from(&yaml, "t");
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
    assert!(
        r.message
            .starts_with(r#"expect: "SSH-" not received within "#),
        "{}",
        r.message
    );
    assert!(
        r.message.ends_with(r#"; got "220 smtp ready\r\n""#),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tcp_peer_closing_without_banner_is_crit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        drop(s);
    });
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tcp, address: \"{addr}\", expect: \"+OK\" }}\n"),
        "t",
    );
    let r = run(&check).await;
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
    let (_r, check) = check_from(
        &format!("checks:\n  - {{ name: t, kind: tcp, address: \"127.0.0.1:{port}\" }}\n"),
        "t",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Error);
    assert!(
        r.message
            .starts_with(&format!("connect to 127.0.0.1:{port} failed")),
        "{}",
        r.message
    );
    assert!(
        r.message.to_lowercase().contains("refused"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn tcp_malformed_escape_is_rejected_when_loading() {
    let rules = Rules::new().file(
        "r.yaml",
        "checks:\n  - { name: t, kind: tcp, address: \"127.0.0.1:1\", send: 'A\\q' }\n",
    );
    let diags =
        patrol::config::load_with_env(&[rules.path().to_path_buf()], &rules.env).unwrap_err();
    let text = format!("{diags:?}");
    assert!(text.contains("unknown escape"), "{text}");
}
