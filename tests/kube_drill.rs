//! Drills with `kubernetes` faults, run by the real `patrol drill` binary against the
//! **in-process Kubernetes API server** of `tests/kube_support` (not a real cluster: none can be
//! installed on the machines these tests run on). That server has no controllers, so the tests
//! run `kube_support::controller::FakeController` beside it: it recreates deleted pods (Ready only
//! after a delay, like starting containers), follows a Deployment's replicas and keeps statuses
//! current — which is what lets a test see that a revert waited for readiness. The tests assert
//! on the server's object store, so they are skipped (saying so) on a real cluster
//! (`PATROL_TEST_KUBECONFIG`).

mod drill_support;
mod kube_support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use drill_support::{World, report_of, signal, streams};
use kube_support::controller::{FakeController, web_deployment};
use kube_support::{Cluster, Resource};
use patrol::actions::kubernetes::{KubeContext, REVERT_ANNOTATION, Write};
use patrol::chaos::fault::{FaultContext, FaultSpec, JournalStatus};
use patrol::config::parse_yaml;
use serde_json::Value;

/// How long a pod the fake controller creates takes to become Ready.
const POD_START: Duration = Duration::from_millis(1500);

/// A cluster with Deployment `web` (3 Ready pods) and its controller; None on a real cluster.
async fn web_cluster() -> Option<(Cluster, FakeController)> {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("these drills assert on the in-process server's store") {
        return None;
    }
    web_deployment(&mut k.store(), &k.namespace, 3);
    let controller = FakeController::start(k.server().unwrap().store.clone(), POD_START);
    Some((k, controller))
}

/// rules.yaml in the world: target `k8s` for the cluster, checks `web-ready` (every replica of
/// web ready) and `web-exists`.
fn write_rules(w: &World, k: &Cluster) -> String {
    let check = |name: &str, value: &str| {
        format!(
            "  - name: {name}\n    kind: kubernetes\n    target: k8s\n    resource: deployment\n    \
             object_name: web\n    value: {value}\n    crit: lt(1)\n"
        )
    };
    let rules = format!(
        "{}checks:\n{}{}",
        k.targets_yaml("k8s"),
        check("web-ready", "ready_ratio"),
        check("web-exists", "count")
    );
    w.write("rules.yaml", &rules).display().to_string()
}

/// A drill file with `faults` (YAML list items) and the check `steady` as its steady state.
fn write_drill(w: &World, name: &str, steady: &str, faults: &str) -> String {
    let text = format!(
        "kind: drill\nname: {name}\nsteady_state: [ {{ check: {steady} }} ]\nfaults:\n{faults}\
         verify: {{ checks: {{ {steady}: ok }} }}\ndrain: 100ms\nprobe_interval: 300ms\n"
    );
    w.write("drill.yaml", &text).display().to_string()
}

fn web(k: &Cluster) -> Value {
    k.store()
        .get("apps", "deployments", &k.namespace, "web")
        .unwrap()
}

/// Names of web's pods → Ready.
fn web_pods(k: &Cluster) -> BTreeMap<String, bool> {
    k.store()
        .list("", "pods", Some(&k.namespace))
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (p["metadata"]["name"].as_str().unwrap().to_string(), ready)
        })
        .collect()
}

#[tokio::test]
async fn a_pod_kill_drill_deletes_pods_and_its_revert_waits_until_they_are_ready() {
    let Some((k, controller)) = web_cluster().await else {
        return;
    };
    let w = World::new();
    let rules = write_rules(&w, &k);
    let before = web_pods(&k);
    let drill = write_drill(
        &w,
        "web-pod-kill",
        "web-ready",
        "  - { at: 0s, for: 300ms, kubernetes: { target: k8s, action: delete_pod, selector: app=web, \
         mode: fixed:2, seed: 7, ready_timeout: 30s } }\n",
    );
    let out = w
        .drill(&[&drill, "--rules", &rules, "--format", "json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "passed", "{report:#}");
    let fault = &report["faults"][0];
    assert_eq!(fault["outcome"], "reverted", "{fault:#}");
    assert!(
        fault["description"]
            .as_str()
            .unwrap()
            .contains("delete 2 pods matching `app=web`")
    );

    let entries = w
        .journal()
        .await
        .of_run(report["run_id"].as_str().unwrap())
        .await
        .unwrap();
    let entry = &entries[0];
    assert_eq!(entry.status, JournalStatus::Reverted);
    let pods = &entry.state.as_ref().unwrap()["undo"]["ready_again"]["pods"];
    assert_eq!(pods["seed"], 7);
    let deleted: Vec<&str> = pods["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 2);
    assert!(
        deleted.iter().all(|d| before.contains_key(*d)),
        "{deleted:?}"
    );
    assert_eq!(pods["controllers"][0]["object"]["name"], "web");
    let revert = entry.outcome.as_deref().unwrap();
    assert!(
        revert.starts_with("pods of Deployment shop/web ready again after"),
        "{revert}"
    );

    let now = web_pods(&k);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now.values().all(|ready| *ready), "{now:?}");
    assert!(deleted.iter().all(|d| !now.contains_key(*d)), "replaced");
    // The revert ended only once the replacements were Ready, which took them POD_START.
    let ready_at = controller
        .last_ready()
        .expect("replacement pods became Ready");
    let reverted_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(fault["reverted_at"].clone()).unwrap();
    assert!(
        reverted_at >= ready_at,
        "reverted at {reverted_at}, pods ready at {ready_at}"
    );
    let injected_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(fault["injected_at"].clone()).unwrap();
    assert!((reverted_at - injected_at).to_std().unwrap() >= POD_START);
}

/// Polls the store (bounded) until `done` holds.
async fn wait_for(k: &Cluster, what: &str, done: impl Fn(&Cluster) -> bool) {
    for _ in 0..400 {
        if done(k) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never happened: {what}");
}

const SCALE_FAULT: &str = "  - { at: 0s, for: 30s, kubernetes: { target: k8s, action: scale, \
                           name: web, replicas: 1 } }\n";

#[tokio::test]
async fn a_scale_fault_is_scaled_back_after_the_drill() {
    let Some((k, _controller)) = web_cluster().await else {
        return;
    };
    let w = World::new();
    let rules = write_rules(&w, &k);
    let drill = write_drill(
        &w,
        "web-scale",
        // Its revert does not wait for the scaled-up pods to be ready: steady is "web exists".
        "web-exists",
        &SCALE_FAULT.replace("for: 30s", "for: 1s"),
    );
    let args = [drill.as_str(), "--rules", &rules, "--format", "json"];
    let run = w.drill(&args);
    let scaled_down = wait_for(&k, "web scaled to 1 with its revert mark", |k| {
        let d = web(k);
        d["spec"]["replicas"] == 1 && d["metadata"]["annotations"][REVERT_ANNOTATION].is_string()
    });
    let (out, ()) = tokio::join!(run, scaled_down);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["faults"][0]["outcome"], "reverted", "{report:#}");
    let d = web(&k);
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(
        d["metadata"]["annotations"][REVERT_ANNOTATION].is_null(),
        "the mark is removed: {d:#}"
    );
    let patches: Vec<String> = k
        .store()
        .requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/deployments/web"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(patches.len(), 3, "preflight, inject, revert: {patches:?}");
    assert!(
        patches[0].contains("dryRun=All"),
        "the preflight is a dry run"
    );
    assert!(!patches[1].contains("dryRun") && !patches[2].contains("dryRun"));
}

#[tokio::test]
async fn after_kill_9_recover_scales_back_from_the_journal_alone() {
    let Some((k, _controller)) = web_cluster().await else {
        return;
    };
    let w = World::new();
    let rules = write_rules(&w, &k);
    let drill = write_drill(&w, "web-scale-killed", "web-exists", SCALE_FAULT);
    let child = w
        .drill_command(&[&drill, "--rules", &rules])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&k, "web scaled to 1", |k| web(k)["spec"]["replicas"] == 1).await;
    // The state is journaled right after the inject returns.
    let mut journaled = None;
    for _ in 0..400 {
        let active = w.active_faults().await;
        journaled = active
            .into_iter()
            .find(|e| e.status == JournalStatus::Injected);
        if journaled.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let state = journaled
        .expect("the scale fault is journaled as injected")
        .state
        .unwrap();
    assert_eq!(
        state["cluster"]["kubeconfig"],
        k.kubeconfig().display().to_string()
    );
    assert_eq!(
        state["undo"]["restore"]["restore"]["patch"]["spec"]["replicas"],
        3
    );
    signal(child.id().unwrap(), libc::SIGKILL);
    let killed = child.wait_with_output().await.unwrap();
    assert_eq!(killed.status.code(), None);
    assert_eq!(web(&k)["spec"]["replicas"], 1, "nothing was reverted");

    // No rules: the cluster comes from the journal.
    let out = w.drill(&["--recover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("kubernetes fault #0"), "{stdout}");
    assert!(stdout.contains("restored Deployment shop/web"), "{stdout}");
    assert_eq!(web(&k)["spec"]["replicas"], 3);
    assert!(w.active_faults().await.is_empty());
}

#[tokio::test]
async fn cordon_and_apply_faults_are_undone_and_preflight_checks_permissions() {
    let Some((k, _controller)) = web_cluster().await else {
        return;
    };
    k.store().register(Resource::new(
        "chaos-mesh.org/v1alpha1",
        "NetworkChaos",
        "networkchaos",
        true,
    ));
    let w = World::new();
    let rules = write_rules(&w, &k);
    w.write(
        "delay.yaml",
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: NetworkChaos\nmetadata: {name: web-delay}\n\
         spec: {action: delay, mode: all, selector: {labelSelectors: {app: web}}, delay: {latency: 100ms}}\n",
    );
    let drill = write_drill(
        &w,
        "web-node-and-network",
        "web-ready",
        "  - { at: 0s, for: 1s, kubernetes: { target: k8s, action: cordon, node: node-a } }\n  \
         - { at: 0s, for: 1s, kubernetes: { target: k8s, action: apply, file: delay.yaml } }\n",
    );
    let chaos = |k: &Cluster| {
        k.store()
            .get("chaos-mesh.org", "networkchaos", "shop", "web-delay")
    };
    let args = [drill.as_str(), "--rules", &rules, "--format", "json"];
    let run = w.drill(&args);
    let injected = wait_for(&k, "node cordoned and chaos applied", |k| {
        let node = k.store().get("", "nodes", "", "node-a").unwrap();
        node["spec"]["unschedulable"] == true && chaos(k).is_some()
    });
    let (out, ()) = tokio::join!(run, injected);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let node = k.store().get("", "nodes", "", "node-a").unwrap();
    assert!(node["spec"]["unschedulable"].is_null(), "{node:#}");
    assert!(
        node["metadata"]["annotations"][REVERT_ANNOTATION].is_null(),
        "{node:#}"
    );
    assert!(chaos(&k).is_none(), "what was applied is deleted");

    k.store()
        .forbidden
        .push(("patch".into(), "deployments".into()));
    let drill = write_drill(&w, "forbidden", "web-exists", SCALE_FAULT);
    let out = w.drill(&[&drill, "--rules", &rules]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("preflight failed"), "{stderr}");
    assert!(
        stderr.contains("forbidden: patrol may not patch Deployment shop/web"),
        "{stderr}"
    );
    assert_eq!(web(&k)["spec"]["replicas"], 3, "nothing injected");
}

/// The fault of `yaml` with a context whose rules hold target `k8s` for `k`.
fn fault_and_context(k: &Cluster, w: &World, yaml: &str) -> (FaultSpec, FaultContext) {
    let rules =
        kube_support::checks::rules(k, "  - { name: c, kind: tcp, address: '127.0.0.1:1' }\n");
    let spec = FaultSpec::from_node("kubernetes", &parse_yaml(yaml).unwrap())
        .unwrap()
        .unwrap();
    let ctx = FaultContext {
        rules: Arc::new(rules),
        proxies: Default::default(),
        base_dir: w.dir.path().to_path_buf(),
    };
    (spec, ctx)
}

#[tokio::test]
async fn an_inject_that_never_reported_is_undone_from_the_mark_it_left() {
    let Some((k, _controller)) = web_cluster().await else {
        return;
    };
    let w = World::new();
    let (spec, ctx) = fault_and_context(
        &k,
        &w,
        "{ target: k8s, action: scale, name: web, replicas: 0 }",
    );
    spec.preflight(&ctx).await.unwrap();
    // As if patrol died between the change and the journal: the action alone, with its mark.
    let FaultSpec::Kubernetes(fault) = &spec else {
        unreachable!()
    };
    let target = ctx.rules.targets.get("k8s").unwrap();
    let kctx = KubeContext::for_target(target).await.unwrap();
    let write = Write {
        dry_run: false,
        mark_revert: true,
    };
    fault.action.run_with(&kctx, write).await.unwrap();
    assert_eq!(web(&k)["spec"]["replicas"], 0);

    let done = spec.revert_unconfirmed(&ctx).await.unwrap();
    assert!(done.starts_with("restored Deployment shop/web"), "{done}");
    assert_eq!(web(&k)["spec"]["replicas"], 3);
    let again = spec.revert_unconfirmed(&ctx).await.unwrap();
    assert!(
        again.contains("carries no patrol/drill-revert annotation"),
        "{again}"
    );
    assert_eq!(
        web(&k)["spec"]["replicas"],
        3,
        "reverting twice is harmless"
    );

    let (missing, ctx) =
        fault_and_context(&k, &w, "{ target: nope, action: cordon, node: node-a }");
    let err = missing.preflight(&ctx).await.unwrap_err();
    assert_eq!(err, "no target `nope` in the rules");
}
