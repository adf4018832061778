use super::*;

fn from_json(v: serde_json::Value) -> Result<SseWorkloadSpec, String> {
    serde_json::from_value(v).map_err(|e| e.to_string())
}

#[test]
fn a_minimal_spec_gets_browser_like_defaults() {
    let s =
        from_json(serde_json::json!({"url": "http://127.0.0.1:1/sub", "subscribers": 10})).unwrap();
    assert_eq!(s.sequence, "json:$.seq");
    assert_eq!(s.reconnect.initial, Duration::from_secs(1));
    assert_eq!(s.reconnect.jitter, Duration::ZERO);
    assert!(s.check().is_ok());
}

#[test]
fn durations_and_publish_read_like_the_drill_files() {
    let s = from_json(serde_json::json!({
        "url": "http://127.0.0.1:1/sub",
        "subscribers": 2000,
        "connect_rate": 500,
        "publish": {"url": "http://127.0.0.1:2/pub", "rate": "50/s", "body": "{\"seq\": {{seq}}}"},
        "reconnect": {"initial": "200ms", "max": "5s", "jitter": "100ms"}
    }))
    .unwrap();
    assert_eq!(s.reconnect.max, Duration::from_secs(5));
    assert_eq!(s.publish.as_ref().unwrap().method, "POST");
    assert!(s.check().is_ok());
}

#[test]
fn unknown_fields_are_rejected() {
    let e = from_json(serde_json::json!({"url": "http://x/", "subscribers": 1, "subscriber": 2}))
        .unwrap_err();
    assert!(e.contains("subscriber"), "{e}");
}

#[test]
fn every_problem_is_reported_at_its_field() {
    let s = from_json(serde_json::json!({
        "url": "ftp://127.0.0.1/sub",
        "subscribers": 0,
        "connect_rate": -1.0,
        "sequence": "regex:(a)(b)",
        "publish": {"url": "http://127.0.0.1:2/pub", "rate": "lots"},
        "reconnect": {"initial": "10s", "max": "1s"}
    }))
    .unwrap();
    let mut issues = Issues::default();
    s.validate(&mut issues);
    let paths: Vec<String> = issues
        .items
        .iter()
        .map(|(p, _)| crate::config::path_text(p))
        .collect();
    for want in [
        "url",
        "subscribers",
        "connect_rate",
        "sequence",
        "publish.rate",
        "reconnect.initial",
    ] {
        assert!(
            paths.iter().any(|p| p == want),
            "{want} missing from {paths:?}"
        );
    }
}
