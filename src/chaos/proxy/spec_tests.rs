use super::*;
use crate::config::{Issues, PathSeg, from_node, parse_yaml};

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let node = parse_yaml(text).map_err(|e| e.message)?;
    from_node(&node, None).map_err(|e| e.describe())
}

/// (path, message) of every issue, the path written `a.b`.
fn issues_of(spec: &ToxicSpec) -> Vec<(String, String)> {
    let mut issues = Issues::default();
    spec.validate(&mut issues);
    issues
        .items
        .into_iter()
        .map(|(path, msg)| {
            let path: Vec<String> = path
                .iter()
                .map(|seg| match seg {
                    PathSeg::Key(k) | PathSeg::KeyName(k) => k.clone(),
                    PathSeg::Index(i) => i.to_string(),
                })
                .collect();
            (path.join("."), msg)
        })
        .collect()
}

fn toxic(text: &str) -> ToxicSpec {
    yaml(text).unwrap()
}

#[test]
fn proxy_spec_takes_one_upstream_or_a_list() {
    let one: ProxySpec =
        yaml("{name: lb, listen: '127.0.0.1:0', upstream: '127.0.0.1:81'}").unwrap();
    assert_eq!(one.upstream, vec!["127.0.0.1:81"]);
    let many: ProxySpec =
        yaml("{name: lb, listen: '127.0.0.1:0', upstream: ['127.0.0.1:81', 'localhost:82']}")
            .unwrap();
    assert_eq!(many.upstream, vec!["127.0.0.1:81", "localhost:82"]);
    let err = yaml::<ProxySpec>("{name: lb, listen: '127.0.0.1:0', upstream: {a: 1}}").unwrap_err();
    assert!(err.contains("upstream must be one"), "{err}");
}

#[test]
fn proxy_spec_validation_names_the_field() {
    let spec = ProxySpec {
        name: String::new(),
        listen: "127.0.0.1".into(),
        upstream: vec!["127.0.0.1:80".into(), "host:http".into()],
    };
    let mut issues = Issues::default();
    spec.validate(&mut issues);
    let text: Vec<String> = issues.items.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text[0].starts_with("name:"));
    assert!(text[1].contains("listen: \"127.0.0.1\" is not host:port"));
    assert!(text[2].contains("port \"http\" is not a number"));
    assert_eq!(
        issues.items[2].0,
        vec![PathSeg::key("upstream"), PathSeg::key("1")]
    );
}

#[test]
fn toxic_spec_parses_every_field() {
    let t = toxic(
        "{proxy: lb, latency: 300ms, jitter: 50ms, bandwidth: 1000, reset: true, blackhole: true,
          down: true, slicer: {size: 10, delay: 5ms}, cut_after: {bytes: 100, after: 2s},
          stall: true, direction: downstream, probability: 0.25}",
    );
    assert_eq!(t.latency, Some(Duration::from_millis(300)));
    assert_eq!(t.jitter, Some(Duration::from_millis(50)));
    assert_eq!(t.bandwidth, Some(1000));
    assert!(t.reset && t.blackhole && t.down && t.stall);
    assert_eq!(
        t.slicer,
        Some(SlicerSpec {
            size: 10,
            delay: Duration::from_millis(5)
        })
    );
    assert_eq!(
        t.cut_after,
        Some(CutAfterSpec {
            bytes: Some(100),
            after: Some(Duration::from_secs(2))
        })
    );
    assert_eq!(t.direction, Direction::Downstream);
    assert_eq!(t.probability, Some(0.25));
    assert!(issues_of(&t).is_empty());
}

#[test]
fn toxic_spec_defaults_and_name_alias() {
    let t = toxic("{name: lb, stall: true}");
    assert_eq!(t.proxy, "lb");
    assert_eq!(t.direction, Direction::Both);
    assert_eq!(t.probability, None);
    let err = yaml::<ToxicSpec>("{proxy: lb, stal: true}").unwrap_err();
    assert!(err.contains("stal"), "{err}");
    let err = yaml::<ToxicSpec>("{proxy: lb, stall: true, direction: sideways}").unwrap_err();
    assert!(err.contains("direction"), "{err}");
}

#[test]
fn toxic_validation_reports_each_problem_at_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("{proxy: lb}", "", "no toxic set"),
        (
            "{proxy: '', stall: true}",
            "proxy",
            "proxy: the name of a proxy",
        ),
        (
            "{proxy: lb, jitter: 10ms}",
            "jitter",
            "jitter needs latency",
        ),
        (
            "{proxy: lb, bandwidth: 0}",
            "bandwidth",
            "at least 1 byte/s",
        ),
        (
            "{proxy: lb, stall: true, probability: 1.5}",
            "probability",
            "between 0 and 1, got 1.5",
        ),
        (
            "{proxy: lb, stall: true, probability: -0.1}",
            "probability",
            "between 0 and 1",
        ),
        (
            "{proxy: lb, slicer: {size: 0}}",
            "slicer.size",
            "at least 1 byte",
        ),
        (
            "{proxy: lb, cut_after: {}}",
            "cut_after",
            "needs bytes, after or both",
        ),
        (
            "{proxy: lb, cut_after: {bytes: 0}}",
            "cut_after.bytes",
            "at least 1",
        ),
        (
            "{proxy: lb, cut_after: {after: 0s}}",
            "cut_after.after",
            "longer than 0s",
        ),
    ];
    for (text, path, message) in cases {
        let found = issues_of(&toxic(text));
        assert!(
            found.iter().any(|(p, m)| p == path && m.contains(message)),
            "{text}: expected {path:?} {message:?}, got {found:?}"
        );
    }
    // jitter alone is not a toxic.
    let found = issues_of(&toxic("{proxy: lb, jitter: 10ms}"));
    assert!(found.iter().any(|(p, _)| p.is_empty()), "{found:?}");
}

#[test]
fn toxic_probability_bounds_are_inclusive() {
    for p in [0.0, 1.0] {
        let mut t = toxic("{proxy: lb, stall: true}");
        t.probability = Some(p);
        assert!(issues_of(&t).is_empty(), "{p}");
    }
    let mut t = toxic("{proxy: lb, stall: true}");
    t.probability = Some(f64::NAN);
    assert_eq!(issues_of(&t).len(), 1);
}

#[test]
fn describe_is_one_readable_line() {
    let t =
        toxic("{proxy: lb, latency: 300ms, jitter: 50ms, direction: downstream, probability: 0.5}");
    assert_eq!(
        t.describe(),
        "proxy lb: latency 300ms ±50ms (downstream, p=0.5)"
    );
    let t = toxic("{proxy: lb, cut_after: {bytes: 10, after: 30s}, stall: true}");
    assert_eq!(
        t.describe(),
        "proxy lb: stall, cut_after 10 B or 30s (both directions)"
    );
    assert_eq!(t.toxic_names(), vec!["cut_after", "stall"]);
}

#[test]
fn schema_accepts_upstream_string_or_list() {
    let schema = schemars::schema_for!(ProxySpec);
    let json = serde_json::to_string(&schema).unwrap();
    assert!(json.contains("\"Upstream\""), "{json}");
    let schema = serde_json::to_string(&schemars::schema_for!(ToxicSpec)).unwrap();
    for field in ["latency", "cut_after", "slicer", "direction", "probability"] {
        assert!(schema.contains(field), "{field} missing from {schema}");
    }
}
