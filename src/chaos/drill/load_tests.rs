use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::chaos::drill::spec::{AbortRule, Metric, RecoveryFrom, Tolerance};
use crate::chaos::fault::FaultSpec;
use crate::config::parse_yaml;

const RULES: &str = "
targets:
  api: { kind: http, url: 'http://127.0.0.1:9' }
checks:
  - { name: api-health, kind: http, target: api, service: orders }
  - { name: api-latency, kind: http, target: api }
";

fn rules(dir: &Path) -> RuleSet {
    let file = dir.join("rules.yaml");
    std::fs::write(&file, RULES).unwrap();
    crate::config::load(&[file]).unwrap()
}

/// Loads `text` as `drill.yaml` against the test rules: the drill or the problems as
/// `line:col message`.
fn load(text: &str) -> Result<Drill, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(dir.path());
    let file = dir.path().join("drill.yaml");
    let root = parse_yaml(text).unwrap();
    let env: BTreeMap<String, String> = [("PORT".to_string(), "4242".to_string())].into();
    load_drill(&file, root, Some(&rules), &env).map_err(|d| {
        d.into_iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect()
    })
}

fn problems(text: &str) -> Vec<String> {
    load(text).err().unwrap_or_default()
}

const FULL: &str = r#"kind: drill
name: api-latency-drill
description: latency on the API proxy
steady_state:
  - { check: api-health }
  - { check: api-latency, tolerance: warn }
  - { name: inline-tcp, kind: tcp, address: "127.0.0.1:${env:PORT}", tolerance: warn }
proxies:
  - { name: lb, listen: "127.0.0.1:0", upstream: "127.0.0.1:9" }
faults:
  - { at: 2s, for: 5s, proxy: { proxy: lb, latency: 300ms } }
  - at: 10s
    for: 1s
    exec: { inject: [touch, /tmp/x], revert: [rm, -f, /tmp/x] }
abort_when:
  - { check: api-health, failures: 3 }
  - { score: { service: orders, below: 40 } }
  - { wall_time: { above: 10m } }
verify:
  recovery: lt(30s)
  checks: { api-latency: ok }
recovery: from_inject
rollback:
  - { command: [true], timeout: 5s }
drain: 3s
probe_interval: 1s
"#;

#[test]
fn a_full_drill_loads() {
    let d = load(FULL).unwrap();
    assert_eq!(d.name, "api-latency-drill");
    assert_eq!(d.steady_state.len(), 3);
    assert_eq!(d.steady_state[1].tolerance, Tolerance::Warn);
    let inline = &d.steady_state[2];
    assert!(inline.inline);
    assert_eq!(inline.check.name(), "inline-tcp");
    assert_eq!(
        inline.check.common.address.as_deref(),
        Some("127.0.0.1:4242"),
        "${{env:…}} is substituted"
    );
    assert_eq!(d.proxies[0].upstream, ["127.0.0.1:9"]);
    assert_eq!(d.faults.len(), 2);
    assert!(matches!(d.faults[0].spec, FaultSpec::Proxy(_)));
    assert_eq!(d.faults[1].at, Duration::from_secs(10));
    assert_eq!(d.fault_phase(), Duration::from_secs(11));
    assert_eq!(
        d.abort_when[0],
        AbortRule::CheckFailures {
            check: "api-health".into(),
            failures: 3
        }
    );
    assert_eq!(d.verify.metrics[0].0, Metric::Recovery);
    assert!(d.verify.metrics[0].1.holds(29_000.0));
    assert_eq!(d.verify.checks["api-latency"], Tolerance::Ok);
    assert_eq!(d.recovery, RecoveryFrom::FromInject);
    assert_eq!(d.rollback.len(), 1);
    assert_eq!(d.drain, Duration::from_secs(3));
    assert_eq!(d.probe_interval, Duration::from_secs(1));
    // The score rule probes every check of its service.
    let probed: Vec<String> = d
        .probed_checks()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(probed, ["api-health", "api-latency", "inline-tcp"]);
}

#[test]
fn defaults_apply() {
    let d = load("kind: drill\nname: x\n").unwrap();
    assert_eq!(d.drain, crate::chaos::drill::spec::DEFAULT_DRAIN);
    assert_eq!(
        d.probe_interval,
        crate::chaos::drill::spec::DEFAULT_PROBE_INTERVAL
    );
    assert_eq!(d.recovery, RecoveryFrom::FromRevert);
    assert!(d.faults.is_empty() && d.steady_state.is_empty());
}

#[test]
fn each_mistake_is_located() {
    let cases: &[(&str, &str)] = &[
        (
            "kind: drill\nname: x\ncolour: red\n",
            "3:1 unknown field `colour` for a drill",
        ),
        ("kind: drill\n", "1:1 a drill needs a `name`"),
        ("kind: drill\nname: a/b\n", "2:7 drill name \"a/b\""),
        (
            "kind: drill\nname: x\nsteady_state: [ { check: nope } ]\n",
            "3:26 unknown check `nope`; checks of the rules: api-health, api-latency",
        ),
        (
            "kind: drill\nname: x\nsteady_state: [ { check: api-health, tolerance: crit } ]\n",
            "3:49 `tolerance`: unknown variant `crit`",
        ),
        (
            "kind: drill\nname: x\nsteady_state: [ { check: api-health }, { check: api-health } ]\n",
            "3:49 check `api-health` is in the steady state twice",
        ),
        (
            "kind: drill\nname: x\nsteady_state: [ { name: t, kind: tcp } ]\n",
            "3:34 a tcp check needs a `target`",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s, proxy: { proxy: lb, latency: 1s } }\n",
            "4:40 unknown proxy `lb`; proxies declared under `proxies:`: none",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { for: 2s, exec: { inject: [a], revert: [b] } }\n",
            "4:5 a fault needs `at`",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 0s, exec: { inject: [a], revert: [b] } }\n",
            "4:20 `for` must be longer than zero",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s }\n",
            "4:5 a fault needs one kind: proxy, process, exec, stress, redis, kubernetes",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s, exec: { inject: [a], revert: [b] }, redis: {} }\n",
            "4:60 a fault has one kind; this one also sets `exec`",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s, nuke: {} }\n",
            "4:24 unknown field `nuke` for a fault",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s, exec: { inject: [a], revert: [b], timout: 1s } }\n",
            "4:58 unknown field `timout` for the exec fault",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 2s, redis: { target: api } }\n",
            "4:41 unknown redis target `api`; redis targets of the rules: none",
        ),
        (
            "kind: drill\nname: x\nfaults:\n  - { at: 1s, for: 7h, exec: { inject: [a], revert: [b] } }\n",
            "4:20 this fault ends 7h 1s after the faults start",
        ),
        (
            "kind: drill\nname: x\nabort_when: [ { wall_time: { above: 5s } } ]\nfaults:\n  - { at: 6s, for: 2s, exec: { inject: [a], revert: [b] } }\n",
            "5:11 this fault starts at 6s, after the wall-time abort at 5s",
        ),
        (
            "kind: drill\nname: x\nabort_when: [ { check: api-health, score: { service: orders, below: 5 } } ]\n",
            "3:15 an abort_when entry has exactly one of check, score, lost, wall_time; found check, score",
        ),
        (
            "kind: drill\nname: x\nabort_when: [ { score: { service: payments, below: 5 } } ]\n",
            "3:35 unknown service `payments`; services of the rules: orders",
        ),
        (
            "kind: drill\nname: x\nabort_when: [ { lost: { above: 5 } } ]\n",
            "3:23 abort on `lost` needs an `sse` workload",
        ),
        (
            "kind: drill\nname: x\nverify: { recovery: lt(5) }\n",
            "3:11 `verify.recovery` is measured after the last fault",
        ),
        (
            "kind: drill\nname: x\nsteady_state: [ { check: api-health } ]\nfaults: [ { at: 1s, for: 1s, exec: { inject: [a], revert: [b] } } ]\nverify: { recovery: lt(soon) }\n",
            "5:21 condition \"lt(soon)\": invalid duration",
        ),
        (
            "kind: drill\nname: x\nverify: { lost: eq(0) }\n",
            "3:11 `verify.lost` needs an `sse` workload",
        ),
        (
            "kind: drill\nname: x\nverify: { checks: { ghost: ok } }\n",
            "3:21 unknown check `ghost`",
        ),
        (
            "kind: drill\nname: x\nrollback: [ { command: 'echo a > b' } ]\n",
            "3:24 `>` is shell syntax",
        ),
        (
            "kind: drill\nname: x\ndrain: soon\n",
            "3:8 invalid duration \"soon\"",
        ),
        (
            "kind: drill\nname: x\nprobe_interval: 0s\n",
            "3:17 `probe_interval` must be longer than zero",
        ),
        (
            "kind: drill\nname: x\nsteady_state: [ { check: api-health } ]\nrecovery: whenever\n",
            "4:11 unknown variant `whenever`",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = problems(text);
        if got.len() != 1 || !got[0].starts_with(want) {
            failures.push(format!("{text}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_rules_references_are_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    let root =
        parse_yaml("kind: drill\nname: x\nsteady_state: [ { check: elsewhere } ]\n").unwrap();
    let env: BTreeMap<String, String> = BTreeMap::new();
    let file = PathBuf::from(dir.path()).join("d.yaml");
    assert!(load_drill(&file, root, None, &env).is_ok());
}
