use super::*;
use crate::chaos::fault::test_support::spec_of;

#[test]
fn every_kind_has_fields_and_a_schema() {
    assert_eq!(
        FaultSpec::KINDS,
        ["proxy", "process", "exec", "stress", "redis", "kubernetes"]
    );
    for kind in FaultSpec::KINDS {
        assert!(!FaultSpec::fields(kind).unwrap().is_empty(), "{kind}");
    }
    assert_eq!(FaultSpec::fields("helm"), None);
    let node = crate::config::parse_yaml("{ x: 1 }").unwrap();
    assert!(FaultSpec::from_node("helm", &node).is_none());
    let mut generator = schemars::SchemaGenerator::default();
    let schemas = FaultSpec::schemas(&mut generator);
    let kinds: Vec<&str> = schemas.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, FaultSpec::KINDS);
}

#[test]
fn process_fields_hide_nothing_a_user_may_write() {
    let fields = FaultSpec::fields("process").unwrap();
    for f in [
        "pidfile",
        "pid",
        "action",
        "start",
        "shell",
        "ready",
        "ready_timeout",
        "log",
        "env",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    // `name` is read only to be refused with a reason.
    assert!(fields.contains(&"name"));
}

#[test]
fn the_journal_form_reads_back_as_the_same_fault() {
    for (kind, yaml) in [
        ("proxy", "{ proxy: lb, latency: 300ms, jitter: 50ms }"),
        (
            "process",
            "{ pidfile: /run/x.pid, action: kill, start: [x, -p, '1'], ready: 'tcp://127.0.0.1:1' }",
        ),
        (
            "exec",
            "{ inject: 'a b', revert: [c, d], timeout: 5s, env: {K: v} }",
        ),
        (
            "stress",
            "{ cpu: { workers: 2 }, memory: { bytes: 64MiB } }",
        ),
        ("redis", "{ target: cache, mode: write }"),
    ] {
        let spec = spec_of(kind, yaml);
        let json = spec.to_json();
        let back = FaultSpec::from_json(kind, &json).unwrap();
        assert_eq!(back.kind(), kind);
        assert_eq!(back.to_json(), json, "{kind}");
        assert_eq!(back.describe(), spec.describe(), "{kind}");
    }
    assert!(
        FaultSpec::from_json("nope", &serde_json::json!({}))
            .unwrap_err()
            .contains("unknown fault kind")
    );
    assert!(
        FaultSpec::from_json("redis", &serde_json::json!({"mode": "all"}))
            .unwrap_err()
            .contains("target")
    );
}
