//! `kind: redis` against the real redis-server: PING, DBSIZE, list lengths, INFO fields (and
//! missing ones), nil replies, numeric strings, write commands refused at load and at run time, and
//! refused connections.

mod common;
mod net_support;

use std::time::Duration;

use net_support::{
    assert_refused_connection, check, check_item, closed_port, judged_error, load_with_url,
    measure, quick_error, single, verdict,
};
use patrol::config::{Diagnostic, RuleSet};
use patrol::probe::ProbeSpec;
use patrol::probe::redis::RedisProbe;
use patrol::result::{Status, Value};

/// A key only this test uses, deleted when the test ends (also when it fails).
struct Key(String);

impl Key {
    fn new() -> Key {
        Key(common::unique_name("patrol_t"))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let Ok(mut c) = redis::Client::open(common::REDIS_URL).and_then(|c| c.get_connection()) {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&self.0).query(&mut c);
        }
    }
}

fn redis_exec(args: &[&str]) -> redis::Value {
    let mut c = redis::Client::open(common::REDIS_URL)
        .unwrap()
        .get_connection()
        .unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c).unwrap()
}

/// Rules with one redis check per `(name, command, extra YAML)` against `url`.
fn redis_rules(url: &str, checks: &[(&str, &str, &str)]) -> Result<RuleSet, Vec<Diagnostic>> {
    let mut yaml =
        String::from("targets:\n  cache: { kind: redis, url: \"${env:URL}\" }\nchecks:\n");
    for (name, command, extra) in checks {
        yaml.push_str(&check_item(&format!(
            "name: {name}\nkind: redis\ntarget: cache\ntimeout: 2s\ncommand: {command:?}\n{extra}"
        )));
    }
    load_with_url(&yaml, url)
}

#[tokio::test]
async fn redis_ping_dbsize_and_list_length() {
    let key = Key::new();
    redis_exec(&["RPUSH", &key.0, "a", "b", "c"]);
    let llen = format!("LLEN {}", key.0);
    let rules = redis_rules(
        common::REDIS_URL,
        &[
            ("ping", "PING", ""),
            ("dbsize", "DBSIZE", ""),
            ("llen", &llen, ""),
        ],
    )
    .unwrap();
    let m = measure(check(&rules, "ping")).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Text("PONG".into())));
    match measure(check(&rules, "dbsize")).await.unwrap().samples[0].value {
        Value::Num(n) => assert!(n >= 1.0, "our list is a key: {n}"),
        ref other => panic!("DBSIZE gave {other:?}"),
    }
    let m = measure(check(&rules, "llen")).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Num(3.0)));
}

#[tokio::test]
async fn redis_info_fields_and_missing_ones() {
    let rules = redis_rules(
        common::REDIS_URL,
        &[
            (
                "role",
                "INFO replication",
                "field: role\ncrit: ne(\"master\")",
            ),
            ("clients", "INFO clients", "field: connected_clients"),
            ("absent", "INFO replication", "field: no_such_field"),
        ],
    )
    .unwrap();
    let role = check(&rules, "role");
    let m = measure(role).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Text("master".into())));
    assert_eq!(verdict(role, Ok(m)).0, Status::Ok);
    match measure(check(&rules, "clients")).await.unwrap().samples[0].value {
        Value::Num(n) => assert!(n >= 1.0, "{n}"),
        ref other => panic!("connected_clients gave {other:?}"),
    }
    let absent = check(&rules, "absent");
    let m = measure(absent).await.unwrap();
    assert_eq!(
        m.failures,
        vec!["field no_such_field is not in the reply".to_string()]
    );
    assert_eq!(
        verdict(absent, Ok(m)),
        (
            Status::Crit,
            "field no_such_field is not in the reply".to_string()
        )
    );
}

#[tokio::test]
async fn redis_cluster_info_on_a_plain_server_is_an_error() {
    let rules = redis_rules(
        common::REDIS_URL,
        &[("cluster", "CLUSTER INFO", "field: cluster_state")],
    )
    .unwrap();
    assert_eq!(
        judged_error(check(&rules, "cluster")).await,
        "CLUSTER: ERR This instance has cluster support disabled"
    );
}

#[tokio::test]
async fn redis_nil_is_a_failure_and_numeric_strings_are_numbers() {
    let key = Key::new();
    redis_exec(&["SET", &key.0, "42"]);
    let get = format!("GET {}", key.0);
    let missing = format!("GET {}_missing", key.0);
    let rules = redis_rules(
        common::REDIS_URL,
        &[("get", &get, ""), ("nil", &missing, "")],
    )
    .unwrap();
    let m = measure(check(&rules, "get")).await.unwrap();
    assert_eq!(single(&m), Some(&Value::Num(42.0)));
    let nil = check(&rules, "nil");
    let m = measure(nil).await.unwrap();
    assert_eq!(m.failures, vec!["nil reply".to_string()]);
    assert_eq!(verdict(nil, Ok(m)).0, Status::Crit);
}

#[tokio::test]
async fn redis_write_commands_are_rejected_by_validation() {
    let diags = redis_rules(
        common::REDIS_URL,
        &[("w", "SET k v", ""), ("x", "config set maxmemory 1", "")],
    )
    .unwrap_err();
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!((diags[0].line, diags[0].column), (8, 14), "{}", diags[0]);
    assert!(
        diags[0].message.starts_with("command SET is refused"),
        "{}",
        diags[0]
    );
    assert!(diags[0].message.contains("writes"), "{}", diags[0]);
    assert_eq!(diags[1].line, 13, "{}", diags[1]);
    assert!(
        diags[1]
            .message
            .starts_with("command CONFIG SET is refused"),
        "{}",
        diags[1]
    );
}

#[tokio::test]
async fn redis_write_commands_are_refused_at_run_time_too() {
    let key = Key::new();
    redis_exec(&["SET", &key.0, "kept"]);
    let rules = redis_rules(common::REDIS_URL, &[("ping", "PING", "")]).unwrap();
    let mut sneaky = check(&rules, "ping").clone();
    sneaky.probe = ProbeSpec::Redis(RedisProbe {
        command: format!("DEL {}", key.0),
        field: None,
    });
    let err = measure(&sneaky).await.unwrap_err();
    assert!(err.0.starts_with("command DEL is refused"), "{err}");
    assert_eq!(redis_exec(&["EXISTS", &key.0]), redis::Value::Int(1));
}

#[tokio::test]
async fn redis_refused_connection_is_a_quick_error() {
    let port = closed_port().await;
    let rules = redis_rules(
        &format!("redis://127.0.0.1:{port}"),
        &[("ping", "PING", "")],
    )
    .unwrap();
    let err = quick_error(check(&rules, "ping"), Duration::from_secs(2), "redis").await;
    assert_refused_connection(&err, port, "redis");
}
