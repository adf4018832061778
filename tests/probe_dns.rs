//! `kind: dns` against an in-process DNS server on 127.0.0.1 (a random UDP port): records found
//! and counted, `contains`, each record type, NXDOMAIN and empty answers judged through
//! `expect.answers`, and a server that never answers reported as `error`.
//!
//! Each check here is named after the name it resolves (`query_name`), for readable failures.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record};
use patrol::config::{Check, RuleSet, load_with_env};
use patrol::engine::{RunFacts, judge};
use patrol::probe::{Measurement, ProbeContext, ProbeError};
use patrol::result::{Status, Value};
use tokio::net::UdpSocket;

/// The zone the test server knows; any other name is NXDOMAIN.
fn zone() -> Vec<Record> {
    let name = |n: &str| Name::from_str(n).unwrap();
    let record = |n: &str, data: RData| Record::from_rdata(name(n), 60, data);
    vec![
        record("app.patrol.test.", RData::A(A("10.0.0.1".parse().unwrap()))),
        record("app.patrol.test.", RData::A(A("10.0.0.2".parse().unwrap()))),
        record(
            "missing.patrol.test.",
            RData::A(A("10.0.0.3".parse().unwrap())),
        ),
        record(
            "nope.patrol.test.",
            RData::A(A("10.0.0.4".parse().unwrap())),
        ),
        record(
            "v6.patrol.test.",
            RData::AAAA(AAAA("fd00::7".parse().unwrap())),
        ),
        record(
            "v4only.patrol.test.",
            RData::A(A("10.0.0.5".parse().unwrap())),
        ),
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
        yaml.push_str(&format!(
            "  - name: {name}\n    query_name: {name}\n    kind: dns\n    nameserver: \"{server}\"\n    timeout: {timeout}\n"
        ));
        for line in extra.lines() {
            yaml.push_str(&format!("    {line}\n"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dns.yaml"), yaml).unwrap();
    load_with_env(
        &[dir.path().to_path_buf()],
        &BTreeMap::<String, String>::new(),
    )
    .unwrap_or_else(|d| panic!("{d:?}"))
}

async fn measure<'a>(
    rules: &'a RuleSet,
    name: &str,
) -> (&'a Check, Result<Measurement, ProbeError>) {
    let check = rules.check(name).unwrap();
    let ctx = ProbeContext {
        check,
        timeout: check.common.timeout,
    };
    (check, check.probe.measure(&ctx).await)
}

fn verdict(check: &Check, outcome: Result<Measurement, ProbeError>) -> (Status, String) {
    let facts = RunFacts {
        run_id: "test",
        revision: "test",
        started_at: chrono::Utc::now(),
        duration_ms: 0.0,
    };
    let judged = judge(check, outcome, &HashMap::new(), &facts);
    (judged.results[0].status, judged.results[0].message.clone())
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
    let server = dns_server(zone()).await;
    let rules = rules(
        server,
        "2s",
        &[
            (
                "app.patrol.test",
                "record_type: A\nexpect: { answers: eq(2), contains: \"10.0.0.2\" }",
            ),
            (
                "missing.patrol.test",
                "expect: { answers: ge(1), contains: \"10.9.9.9\" }",
            ),
        ],
    );
    let (check, outcome) = measure(&rules, "app.patrol.test").await;
    let m = outcome.unwrap();
    resolve_ms(&m);
    assert!(m.failures.is_empty(), "{:?}", m.failures);
    assert_eq!(verdict(check, Ok(m)).0, Status::Ok);

    let (check, outcome) = measure(&rules, "missing.patrol.test").await;
    let m = outcome.unwrap();
    resolve_ms(&m);
    assert_eq!(
        m.failures,
        vec!["contains: no answer contains \"10.9.9.9\" (got 10.0.0.3)".to_string()]
    );
    assert_eq!(verdict(check, Ok(m)).0, Status::Crit);
}

#[tokio::test]
async fn nxdomain_is_zero_answers_and_fails_the_expectation_as_crit() {
    let server = dns_server(zone()).await;
    let rules = rules(
        server,
        "2s",
        &[
            ("ghost.patrol.test", "expect: { answers: ge(1) }"),
            ("gone.patrol.test", ""),
        ],
    );
    let (check, outcome) = measure(&rules, "ghost.patrol.test").await;
    let m = outcome.unwrap();
    resolve_ms(&m);
    assert_eq!(
        m.failures,
        vec!["answers: 0 answers, expected ge(1) (NXDOMAIN)".to_string()]
    );
    let (status, message) = verdict(check, Ok(m));
    assert_eq!(status, Status::Crit);
    assert!(
        message.contains("answers: 0 answers, expected ge(1) (NXDOMAIN)"),
        "{message}"
    );

    // Without expectations the name's absence is just a fast answer.
    let (check, outcome) = measure(&rules, "gone.patrol.test").await;
    assert_eq!(verdict(check, outcome).0, Status::Ok);
}

#[tokio::test]
async fn a_name_without_records_of_the_type_has_zero_answers() {
    let server = dns_server(zone()).await;
    let rules = rules(
        server,
        "2s",
        &[(
            "v4only.patrol.test",
            "record_type: AAAA\nexpect: { answers: ge(1) }",
        )],
    );
    let (check, outcome) = measure(&rules, "v4only.patrol.test").await;
    let m = outcome.unwrap();
    assert_eq!(
        m.failures,
        vec!["answers: 0 answers, expected ge(1) (no AAAA records)".to_string()]
    );
    assert_eq!(verdict(check, Ok(m)).0, Status::Crit);
}

#[tokio::test]
async fn every_record_type_is_read() {
    let server = dns_server(zone()).await;
    let rules = rules(
        server,
        "2s",
        &[
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
        ],
    );
    for name in [
        "v6.patrol.test",
        "alias.patrol.test",
        "txt.patrol.test",
        "mx.patrol.test",
    ] {
        let (check, outcome) = measure(&rules, name).await;
        let m = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        resolve_ms(&m);
        assert!(m.failures.is_empty(), "{name}: {:?}", m.failures);
        assert_eq!(verdict(check, Ok(m)).0, Status::Ok, "{name}");
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
    let started = Instant::now();
    let (check, outcome) = measure(&rules, "app.patrol.test").await;
    let took = started.elapsed();
    let err = outcome.unwrap_err();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        err.0.contains(&server.to_string()),
        "the message names the server: {err}"
    );
    assert_eq!(verdict(check, Err(err)).0, Status::Error);
}
