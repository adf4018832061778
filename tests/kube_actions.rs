//! Kubernetes actions (`patrol::actions::kubernetes`) against the **in-process Kubernetes API
//! server** of `tests/kube_support` — not a real cluster: no API server can be installed on the
//! machines these tests run on. The server speaks the real REST paths and object JSON, so each
//! action's requests are the ones a cluster would get; the tests then assert on the server's
//! object store (annotation set, replicas changed, pods deleted per mode, node unschedulable,
//! manifest created or patched) and its request log (`dryRun=All`), and that a dry run changes
//! nothing. Because they read that store, they are skipped (saying so) when
//! `PATROL_TEST_KUBECONFIG` points the kube tests at a real cluster.
//!
//! Drills with `kubernetes` faults are in `kube_drill.rs`.

mod kube_support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use kube_support::{Cluster, Resource};
use patrol::actions::kubernetes::object::restore;
use patrol::actions::kubernetes::{KubeAction, KubeContext, REVERT_ANNOTATION, Restore};
use patrol::config::{KubernetesTarget, Target, TargetSpec, from_node, parse_yaml};
use serde_json::{Value, json};

/// The in-process cluster, or None (skipped) on a real one.
async fn cluster() -> Option<Cluster> {
    let k = Cluster::start().await;
    (!k.skip_on_real_cluster("these tests assert on the in-process server's store")).then_some(k)
}

async fn context(k: &Cluster) -> KubeContext {
    let target = Target {
        name: "k8s".into(),
        spec: TargetSpec::Kubernetes(KubernetesTarget {
            kubeconfig: Some(k.kubeconfig().to_path_buf()),
            namespace: Some(k.namespace.clone()),
            ..Default::default()
        }),
        base_dir: k.dir().to_path_buf(),
        origin: None,
    };
    KubeContext::for_target(&target).await.unwrap()
}

fn action(yaml: &str) -> KubeAction {
    from_node(&parse_yaml(yaml).unwrap(), None).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

/// Runs `yaml` (an action) and returns its outcome's JSON.
async fn run(k: &Cluster, yaml: &str, dry_run: bool) -> Result<Value, String> {
    action(yaml)
        .run(&context(k).await, dry_run)
        .await
        .map(|o| o.0)
}

fn stored(k: &Cluster, group: &str, plural: &str, name: &str) -> Option<Value> {
    let ns = if plural == "nodes" { "" } else { &k.namespace };
    k.store().get(group, plural, ns, name)
}

fn pod_names(k: &Cluster, app: &str) -> BTreeSet<String> {
    k.store()
        .list("", "pods", Some(&k.namespace))
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Writes sent with `dryRun=All` (in the query; DELETE carries it in its body, not logged).
fn dry_run_writes(k: &Cluster) -> usize {
    k.store()
        .requests
        .iter()
        .filter(|r| r.method != "GET" && r.query.contains("dryRun=All"))
        .count()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn rollout_restart_sets_the_template_annotation_like_kubectl() {
    let Some(k) = cluster().await else { return };
    let restart = "{ action: rollout_restart, name: checkout }";
    let before = stored(&k, "apps", "deployments", "checkout").unwrap();
    let out = run(&k, restart, true).await.unwrap();
    assert_eq!(out["dry_run"], true);
    assert_eq!(
        stored(&k, "apps", "deployments", "checkout").unwrap(),
        before
    );
    assert_eq!(dry_run_writes(&k), 1);

    let out = run(&k, restart, false).await.unwrap();
    let after = stored(&k, "apps", "deployments", "checkout").unwrap();
    let at =
        after["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap();
    assert_eq!(at, out["restarted_at"]);
    chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert_eq!(
        after["metadata"]["generation"], 2,
        "a template change is a new generation"
    );
    assert!(
        out["summary"]
            .as_str()
            .unwrap()
            .starts_with("restarted Deployment shop/checkout")
    );

    let err = run(&k, "{ action: rollout_restart, name: nope }", false)
        .await
        .unwrap_err();
    assert_eq!(err, "Deployment shop/nope not found");
}

#[tokio::test]
async fn scale_remembers_the_previous_count_and_scales_back() {
    let Some(k) = cluster().await else { return };
    let scale = "{ action: scale, name: checkout, replicas: 1 }";
    let out = run(&k, scale, true).await.unwrap();
    assert_eq!(out["previous"], 3);
    assert_eq!(
        stored(&k, "apps", "deployments", "checkout").unwrap()["spec"]["replicas"],
        3
    );

    let out = run(&k, scale, false).await.unwrap();
    assert_eq!(
        (out["previous"].clone(), out["replicas"].clone()),
        (json!(3), json!(1))
    );
    let after = stored(&k, "apps", "deployments", "checkout").unwrap();
    assert_eq!(after["spec"]["replicas"], 1);
    assert!(
        after["metadata"]["annotations"][REVERT_ANNOTATION].is_null(),
        "a playbook action leaves no revert mark"
    );
    let undo: Restore = serde_json::from_value(out["revert"].clone()).unwrap();
    let object = serde_json::from_value(out["object"].clone()).unwrap();
    let ctx = context(&k).await;
    restore(&ctx.client, &object, &undo).await.unwrap();
    assert_eq!(
        stored(&k, "apps", "deployments", "checkout").unwrap()["spec"]["replicas"],
        3
    );
}

/// delete_pod with `mode` and seed 7 on a fresh cluster: (deleted, matched) names.
async fn delete_with(mode: &str, seed: &str) -> (Vec<String>, Vec<String>, Value) {
    let k = cluster().await.unwrap();
    let before = pod_names(&k, "checkout");
    let out = run(
        &k,
        &format!("{{ action: delete_pod, selector: app=checkout, mode: '{mode}'{seed} }}"),
        false,
    )
    .await
    .unwrap();
    let deleted = strings(&out["deleted"]);
    let left = pod_names(&k, "checkout");
    let expected_left: BTreeSet<String> = before
        .iter()
        .filter(|n| !deleted.contains(n))
        .cloned()
        .collect();
    assert_eq!(left, expected_left, "exactly the reported pods are gone");
    assert_eq!(
        pod_names(&k, "catalog").len(),
        2,
        "other pods are untouched"
    );
    (deleted, strings(&out["matched"]), out)
}

#[tokio::test]
async fn delete_pod_deletes_per_mode_with_a_seeded_choice() {
    if cluster().await.is_none() {
        return;
    }
    for (mode, count) in [
        ("one", 1),
        ("all", 3),
        ("fixed:2", 2),
        ("fixed:9", 3),
        ("percent:50", 2),
    ] {
        let (deleted, matched, out) = delete_with(mode, ", seed: 7").await;
        assert_eq!(deleted.len(), count, "{mode}: {out:#}");
        assert_eq!(matched.len(), 3, "{mode}");
        assert_eq!(out["seed"], 7);
        assert_eq!(out["ready_before"], 2, "the crashlooping pod was not Ready");
        let (again, _, _) = delete_with(mode, ", seed: 7").await;
        assert_eq!(
            again, deleted,
            "{mode}: the same seed chooses the same pods"
        );
    }
    let runs = (1..=8).map(|s| async move { delete_with("one", &format!(", seed: {s}")).await.0 });
    let choices: BTreeSet<Vec<String>> =
        futures::future::join_all(runs).await.into_iter().collect();
    assert!(choices.len() > 1, "the seed drives the choice: {choices:?}");
    let (deleted, _, out) = delete_with("one", "").await;
    assert_eq!(deleted.len(), 1);
    let seed = out["seed"].as_u64().expect("a drawn seed is reported");
    assert!(
        out["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("(seed {seed})"))
    );
}

#[tokio::test]
async fn delete_pod_dry_run_deletes_nothing_and_reports_the_choice() {
    let Some(k) = cluster().await else { return };
    let before = pod_names(&k, "checkout");
    let out = run(
        &k,
        "{ action: delete_pod, selector: app=checkout, mode: all }",
        true,
    )
    .await
    .unwrap();
    assert_eq!(strings(&out["deleted"]).len(), 3);
    assert_eq!(pod_names(&k, "checkout"), before, "nothing deleted");
    let deletes = k
        .store()
        .requests
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 3, "each pod was sent a dry-run delete");

    let err = run(&k, "{ action: delete_pod, selector: app=nothing }", false)
        .await
        .unwrap_err();
    assert_eq!(err, "no pod matches `app=nothing` in namespace shop");
    k.store().forbidden.push(("delete".into(), "pods".into()));
    let err = run(&k, "{ action: delete_pod, selector: app=checkout }", true)
        .await
        .unwrap_err();
    assert!(
        err.contains("forbidden: patrol may not delete pod shop/"),
        "{err}"
    );
}

#[tokio::test]
async fn delete_pod_reports_the_owning_deployment() {
    let Some(k) = cluster().await else { return };
    kube_support::controller::web_deployment(&mut k.store(), &k.namespace, 3);
    let out = run(
        &k,
        "{ action: delete_pod, selector: app=web, seed: 1 }",
        false,
    )
    .await
    .unwrap();
    let controllers = out["controllers"].as_array().unwrap();
    assert_eq!(controllers.len(), 1, "{out:#}");
    assert_eq!(controllers[0]["object"]["kind"], "Deployment");
    assert_eq!(controllers[0]["object"]["name"], "web");
    assert_eq!(
        (
            controllers[0]["ready"].clone(),
            controllers[0]["desired"].clone()
        ),
        (json!(3), json!(3))
    );
    assert_eq!(pod_names(&k, "web").len(), 2);
}

#[tokio::test]
async fn cordon_and_uncordon_set_unschedulable() {
    let Some(k) = cluster().await else { return };
    let node = || stored(&k, "", "nodes", "node-a").unwrap();
    let out = run(&k, "{ action: cordon, node: node-a }", true)
        .await
        .unwrap();
    assert_eq!(out["changed"], true);
    assert!(node()["spec"]["unschedulable"].is_null(), "dry run");

    let out = run(&k, "{ action: cordon, node: node-a }", false)
        .await
        .unwrap();
    assert_eq!(node()["spec"]["unschedulable"], true);
    assert_eq!(
        out["revert"],
        json!({"patch": {"spec": {"unschedulable": null}}})
    );
    let out = run(&k, "{ action: cordon, node: node-a }", false)
        .await
        .unwrap();
    assert_eq!(
        (out["changed"].clone(), out["revert"].clone()),
        (json!(false), json!("nothing"))
    );

    run(&k, "{ action: uncordon, node: node-a }", false)
        .await
        .unwrap();
    assert!(node()["spec"]["unschedulable"].is_null());
    let err = run(&k, "{ action: cordon, node: node-z }", false)
        .await
        .unwrap_err();
    assert_eq!(err, "Node node-z not found");
}

#[tokio::test]
async fn annotate_sets_and_removes_and_returns_what_it_replaced() {
    let Some(k) = cluster().await else { return };
    let annotate = "{ action: annotate, resource: configmap-less, name: x, annotations: {a: b} }";
    assert!(
        run(&k, annotate, false)
            .await
            .unwrap_err()
            .contains("unknown resource")
    );
    let dynamic = "{ action: annotate, resource: { api_version: v1, kind: ConfigMap }, \
                   name: checkout-settings, annotations: { owner: sre, note: null } }";
    run(&k, dynamic, true).await.unwrap();
    let cm = || stored(&k, "", "configmaps", "checkout-settings").unwrap();
    assert!(cm()["metadata"]["annotations"].is_null(), "dry run");
    let out = run(&k, dynamic, false).await.unwrap();
    assert_eq!(cm()["metadata"]["annotations"], json!({"owner": "sre"}));
    assert_eq!(out["previous"], json!({"note": null, "owner": null}));
    let out = run(
        &k,
        "{ action: annotate, resource: deployment, name: catalog, annotations: { owner: web } }",
        false,
    )
    .await
    .unwrap();
    let d = stored(&k, "apps", "deployments", "catalog").unwrap();
    assert_eq!(d["metadata"]["annotations"]["owner"], "web");
    assert_eq!(out["object"]["kind"], "Deployment");
}

const CONFIG_MAP: &str = "{ apiVersion: v1, kind: ConfigMap, metadata: { name: flags }, \
                          data: { checkout: 'on' } }";

#[tokio::test]
async fn apply_creates_then_patches_and_its_undo_puts_things_back() {
    let Some(k) = cluster().await else { return };
    let create = format!("{{ action: apply, manifest: {CONFIG_MAP} }}");
    let out = run(&k, &create, true).await.unwrap();
    assert_eq!(out["created"], true);
    assert!(stored(&k, "", "configmaps", "flags").is_none(), "dry run");

    let out = run(&k, &create, false).await.unwrap();
    assert_eq!(
        (out["created"].clone(), out["revert"].clone()),
        (json!(true), json!("delete"))
    );
    let cm = stored(&k, "", "configmaps", "flags").unwrap();
    assert_eq!(cm["data"], json!({"checkout": "on"}));
    assert_eq!(cm["metadata"]["namespace"], "shop");

    // The manifest as JSON text this time.
    let change = r#"{ action: apply, manifest: '{"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "flags"}, "data": {"checkout": "off", "search": "on"}}' }"#;
    let out = run(&k, change, false).await.unwrap();
    assert_eq!(out["created"], false);
    let cm = stored(&k, "", "configmaps", "flags").unwrap();
    assert_eq!(cm["data"], json!({"checkout": "off", "search": "on"}));
    let ctx = context(&k).await;
    let object = serde_json::from_value(out["object"].clone()).unwrap();
    let undo: Restore = serde_json::from_value(out["revert"].clone()).unwrap();
    restore(&ctx.client, &object, &undo).await.unwrap();
    let cm = stored(&k, "", "configmaps", "flags").unwrap();
    assert_eq!(cm["data"], json!({"checkout": "on"}), "the patch is undone");
    restore(&ctx.client, &object, &Restore::Delete)
        .await
        .unwrap();
    assert!(stored(&k, "", "configmaps", "flags").is_none());
}

/// A Chaos Mesh NetworkChaos, as a file next to the rules.
fn network_chaos_file(k: &Cluster) -> PathBuf {
    let path = k.dir().join("network-delay.yaml");
    std::fs::write(
        &path,
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: NetworkChaos\nmetadata:\n  name: checkout-delay\n\
         spec:\n  action: delay\n  mode: all\n  selector:\n    labelSelectors: {app: checkout}\n\
         \x20 delay: {latency: 200ms}\n  duration: 30s\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn apply_reaches_any_kind_through_discovery() {
    let Some(k) = cluster().await else { return };
    k.store().register(Resource::new(
        "chaos-mesh.org/v1alpha1",
        "NetworkChaos",
        "networkchaos",
        true,
    ));
    network_chaos_file(&k);
    let out = run(&k, "{ action: apply, file: network-delay.yaml }", false)
        .await
        .unwrap();
    assert_eq!(out["object"]["plural"], "networkchaos");
    let chaos = k
        .store()
        .get("chaos-mesh.org", "networkchaos", "shop", "checkout-delay")
        .unwrap();
    assert_eq!(chaos["spec"]["delay"]["latency"], "200ms");
    let err = run(&k, "{ action: apply, file: missing.yaml }", false)
        .await
        .unwrap_err();
    assert!(err.starts_with("cannot read the manifest "), "{err}");
    let err = run(
        &k,
        "{ action: apply, manifest: { apiVersion: example.com/v1, kind: Nope, metadata: { name: x } } }",
        false,
    )
    .await
    .unwrap_err();
    assert!(err.contains("Nope"), "{err}");
}
