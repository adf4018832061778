use std::path::Path;

use super::*;
use crate::config::ProcessEnv;

fn no_rules() -> RuleSet {
    crate::config::load(&[]).expect("no files, no problems")
}

fn load(text: &str) -> Result<Playbook, Vec<String>> {
    let root = parse_yaml(text).expect("valid YAML");
    load_playbook(Path::new("pb.yaml"), root, &no_rules(), &ProcessEnv)
        .map_err(|d| d.iter().map(ToString::to_string).collect())
}

fn problems(text: &str) -> Vec<String> {
    load(text).expect_err("the playbook is invalid")
}

#[test]
fn a_valid_playbook_keeps_its_steps_in_order_with_defaults() {
    let pb = load(
        "kind: playbook\nname: p\ntimeout: 1m\nlock: \"{{ params.svc }}\"\nrate_limit: 3/h\nsteps:\n  - { wait: 1s, rollback: [{ wait: 2s }] }\n  - { name: pause, wait: 2s, on_error: continue, approve: true }\nrollback:\n  - { name: undo, wait: 1s }\n",
    )
    .expect("valid");
    let names: Vec<&str> = pb.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["wait_1", "pause"]);
    assert_eq!(pb.steps[0].rollback[0].name, "wait_1_rollback_wait_1");
    assert_eq!(pb.lock.as_deref(), Some("{{ params.svc }}"));
    assert_eq!(
        pb.rate_limit,
        Some(RateLimit {
            count: 3,
            per: std::time::Duration::from_secs(3600)
        })
    );
    assert_eq!(pb.steps[0].on_error, OnError::Rollback);
    assert_eq!(pb.steps[1].on_error, OnError::Continue);
    assert_eq!(pb.timeout, std::time::Duration::from_secs(60));
    assert_eq!(pb.needing_approval().len(), 1);
    assert_eq!(pb.rollback[0].kind, "wait");
}

#[test]
fn a_step_needs_exactly_one_kind() {
    let p =
        problems("kind: playbook\nname: p\nsteps:\n  - { wait: 1s, check: c }\n  - { name: x }\n");
    assert!(
        p.iter().any(
            |m| m.starts_with("pb.yaml:4:5: error: a step needs exactly one step kind")
                && m.ends_with("found 2")
        ),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("pb.yaml:5:5:") && m.ends_with("found 0")),
        "{p:?}"
    );
}

#[test]
fn kubernetes_steps_need_a_kubernetes_target_of_the_rules() {
    let p = problems(
        "kind: playbook\nname: p\nsteps:\n  - kubernetes: { target: k8s, action: scale, name: orders, namespace: prod, replicas: 3 }\n",
    );
    assert!(
        p.iter()
            .any(|m| m.contains("pb.yaml:4:27: error: unknown target `k8s`")),
        "{p:?}"
    );
}

#[test]
fn top_level_and_step_fields_are_checked() {
    let p = problems(
        "kind: playbook\nname: bad name\nsteps:\n  - http: { url: x, methd: GET }\n  - { name: a, wait: 1s }\n  - { name: a, wait: 0s, on_error: retry }\nlocks: x\nrate_limit: 3/fortnight\n",
    );
    for want in [
        "pb.yaml:2:7: error: playbook name \"bad name\"",
        "pb.yaml:4:21: error: unknown field `methd`",
        "pb.yaml:6:13: error: two steps are named `a`",
        "pb.yaml:6:36: error: unknown variant `retry`",
        "pb.yaml:7:1: error: unknown field `locks` for a playbook",
        "pb.yaml:8:13: error: rate_limit \"3/fortnight\": expected COUNT/PERIOD",
    ] {
        assert!(p.iter().any(|m| m.contains(want)), "want {want}: {p:?}");
    }
}

#[test]
fn params_resolve_over_defaults_and_refuse_unknown_or_missing_ones() {
    let pb = load(
        "kind: playbook\nname: p\nparams:\n  svc: { required: true }\n  mode: { default: diagnose }\nsteps:\n  - wait: 1s\n",
    )
    .expect("valid");
    let given = [("svc".to_string(), "orders".to_string())];
    let params = pb.resolve_params(&given).expect("resolved");
    assert_eq!(params["svc"], "orders");
    assert_eq!(params["mode"], "diagnose");
    let missing = pb.resolve_params(&[]).expect_err("svc is required");
    assert!(missing.contains("`svc` is required"), "{missing}");
    let unknown = pb
        .resolve_params(&[("nope".to_string(), "1".to_string())])
        .expect_err("unknown");
    assert!(
        unknown.contains("unknown parameter `nope`; parameters of p: mode, svc"),
        "{unknown}"
    );
}
