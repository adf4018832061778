//! `kind: dns` against an in-process DNS server on 127.0.0.1 (a random UDP port): records found
//! and counted, `contains`, each record type, NXDOMAIN and empty answers judged through
//! `expect.answers`, and a server that never answers reported as `error`.
//!
//! Each check here is named after the name it resolves (`query_name`), for readable failures.

mod net_support;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record};
use net_support::{Rules, check, check_item, measure, verdict};
use patrol::config::RuleSet;
use patrol::probe::Measurement;
use patrol::result::{Status, Value};
use tokio::net::UdpSocket;

/// The zone the test server knows; any other name is NXDOMAIN.
fn zone() -> Vec<Record> {
    let name = |n: &str| Name::from_str(n).unwrap();
    let record = |n: &str, data: RData| Record::from_rdata(name(n), 60, data);
    let a = |n: &str, ip: &str| record(n, RData::A(A(ip.parse().unwrap())));
    vec![
        a("app.patrol.test.", "10.0.0.1"),
        a("app.patrol.test.", "10.0.0.2"),
        a("missing.patrol.test.", "10.0.0.3"),
        a("nope.patrol.test.", "10.0.0.4"),
        record(
            "v6.patrol.test.",
            RData::AAAA(AAAA("fd00::7".parse().unwrap())),
        ),
        a("v4only.patrol.test.", "10.0.0.5"),
        record(
            "alias.patrol.test.",
            RData::CNAME(CNAME(name("app.patrol.test."))),
        ),
        record(
            "txt.patrol.test.",
            RData::TXT(TXT::new(vec!["v=patrol1 ok".into()])),
        ),
        record(
            "mx.patrol.test.",
            RData::MX(MX::new(10, name("mail.patrol.test."))),
        ),
    ]
}

/// Starts the test server on a fresh UDP port (bound before the task starts, so it is ready).
async fn dns_server(records: Vec<Record>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = answer(&buf[..len], &records) {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    });
    addr
}

/// The reply to one query: the records of the asked name and type, NOERROR with none when the
/// name exists with other types, NXDOMAIN when it does not exist.
fn answer(query: &[u8], records: &[Record]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let q = request.queries.first()?.clone();
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    let same_name: Vec<&Record> = records.iter().filter(|r| r.name == q.name).collect();
    if same_name.is_empty() {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    for r in same_name
        .into_iter()
        .filter(|r| r.record_type() == q.query_type)
    {
        reply.add_answer(r.clone());
    }
    reply.add_query(q);
    reply.to_vec().ok()
}

/// A UDP port that receives queries and never answers them (held open until the test ends).
async fn silent_server() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Rules with one dns check per `(name, extra YAML lines)`, all asking `server`.
fn rules(server: SocketAddr, timeout: &str, checks: &[(&str, &str)]) -> RuleSet {
    let mut yaml = String::from("checks:\n");
    for (name, extra) in checks {
        yaml.push_str(&check_item(&format!(
            "name: {name}\nquery_name: {name}\nkind: dns\nnameserver: \"{server}\"\ntimeout: {timeout}\n{extra}"
        )));
    }
    Rules::new()
        .file("dns.yaml", &yaml)
        .try_load()
        .unwrap_or_else(|d| panic!("{d:?}"))
}

/// Rules with one dns check per `(name, extra YAML lines)`, all asking a fresh server of [`zone`]
/// (2 s timeout).
async fn zone_rules(checks: &[(&str, &str)]) -> RuleSet {
    rules(dns_server(zone()).await, "2s", checks)
}

/// Measures check `name`, which must resolve in a plausible time, and judges it: its expectation
/// failures, and the status and message the engine gives it.
async fn answered(rules: &RuleSet, name: &str) -> (Vec<String>, Status, String) {
    let check = check(rules, name);
    let m = measure(check)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    resolve_ms(&m);
    let failures = m.failures.clone();
    let (status, message) = verdict(check, Ok(m));
    (failures, status, message)
}

/// Asserts that check `name` met its expectations and is `ok`.
async fn assert_answered_ok(rules: &RuleSet, name: &str) {
    let (failures, status, _) = answered(rules, name).await;
    assert!(failures.is_empty(), "{name}: {failures:?}");
    assert_eq!(status, Status::Ok, "{name}");
}

/// Asserts that check `name` failed with exactly `failure` and is `crit`; the engine's message.
async fn assert_answered_crit(rules: &RuleSet, name: &str, failure: &str) -> String {
    let (failures, status, message) = answered(rules, name).await;
    assert_eq!(failures, [failure], "{name}");
    assert_eq!(status, Status::Crit, "{name}");
    message
}

/// The resolve time of a measurement, checked to be a plausible number of milliseconds.
fn resolve_ms(m: &Measurement) -> f64 {
    assert_eq!(m.unit, "ms");
    assert_eq!(m.samples.len(), 1, "{m:?}");
    match m.samples[0].value {
        Value::Num(ms) => {
            assert!((0.0..2000.0).contains(&ms), "{ms}");
            ms
        }
        ref other => panic!("resolve time {other:?}"),
    }
}

#[tokio::test]
async fn a_records_are_counted_and_searched() {
    let rules = zone_rules(&[
        (
            "app.patrol.test",
            "record_type: A\nexpect: { answers: eq(2), contains: \"10.0.0.2\" }",
        ),
        (
            "missing.patrol.test",
            "expect: { answers: ge(1), contains: \"10.9.9.9\" }",
        ),
    ])
    .await;
    assert_answered_ok(&rules, "app.patrol.test").await;
    let not_contained = "contains: no answer contains \"10.9.9.9\" (got 10.0.0.3)";
    assert_answered_crit(&rules, "missing.patrol.test", not_contained).await;
}

#[tokio::test]
async fn nxdomain_is_zero_answers_and_fails_the_expectation_as_crit() {
    let rules = zone_rules(&[
        ("ghost.patrol.test", "expect: { answers: ge(1) }"),
        ("gone.patrol.test", ""),
    ])
    .await;
    let nxdomain = "answers: 0 answers, expected ge(1) (NXDOMAIN)";
    let message = assert_answered_crit(&rules, "ghost.patrol.test", nxdomain).await;
    assert!(message.contains(nxdomain), "{message}");

    // Without expectations the name's absence is just a fast answer.
    let gone = check(&rules, "gone.patrol.test");
    assert_eq!(verdict(gone, measure(gone).await).0, Status::Ok);
}

#[tokio::test]
async fn a_name_without_records_of_the_type_has_zero_answers() {
    let rules = zone_rules(&[(
        "v4only.patrol.test",
        "record_type: AAAA\nexpect: { answers: ge(1) }",
    )])
    .await;
    let no_aaaa = "answers: 0 answers, expected ge(1) (no AAAA records)";
    assert_answered_crit(&rules, "v4only.patrol.test", no_aaaa).await;
}

#[tokio::test]
async fn every_record_type_is_read() {
    let rules = zone_rules(&[
        (
            "v6.patrol.test",
            "record_type: AAAA\nexpect: { answers: eq(1), contains: \"fd00::7\" }",
        ),
        (
            "alias.patrol.test",
            "record_type: CNAME\nexpect: { answers: eq(1), contains: \"app.patrol.test\" }",
        ),
        (
            "txt.patrol.test",
            "record_type: TXT\nexpect: { answers: eq(1), contains: \"v=patrol1\" }",
        ),
        (
            "mx.patrol.test",
            "record_type: MX\nexpect: { answers: eq(1), contains: \"mail.patrol.test\" }",
        ),
    ])
    .await;
    for name in [
        "v6.patrol.test",
        "alias.patrol.test",
        "txt.patrol.test",
        "mx.patrol.test",
    ] {
        assert_answered_ok(&rules, name).await;
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error() {
    let (_socket, server) = silent_server().await;
    let rules = rules(
        server,
        "1s",
        &[("app.patrol.test", "expect: { answers: ge(1) }")],
    );
    let app = check(&rules, "app.patrol.test");
    let started = Instant::now();
    let outcome = measure(app).await;
    let took = started.elapsed();
    let err = outcome.unwrap_err();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        err.0.contains(&server.to_string()),
        "the message names the server: {err}"
    );
    assert_eq!(verdict(app, Err(err)).0, Status::Error);
}
