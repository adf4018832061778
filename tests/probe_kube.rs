//! `kind: kubernetes` checks against the Kubernetes API in `kube_support`: an in-process server
//! speaking the real REST paths and object JSON, not a real cluster (none can be installed
//! here). With `PATROL_TEST_KUBECONFIG` set the same tests run against that cluster in a fresh
//! namespace; tests that need statuses only the in-process server can hold are skipped there.
//!
//! Seed (see `kube_support::seed`): deployment checkout 2 of 3 available, catalog 2 of 2; pods
//! checkout a/b/c (c crashlooping, 7 restarts), catalog a/b, migrate pending; node-a Ready,
//! node-b NotReady; Warning events 5 and 10 minutes old and one 3 hours old; PVC data-db-0
//! bound, uploads not; job nightly-report failed, backfill complete; cronjob backup last
//! succeeded 26 h ago.

mod kube_support;

use std::collections::BTreeMap;

use kube_support::checks::{by_series, check, num, rules, run_fields, single};
use kube_support::{Cluster, seed};
use patrol::result::Status;
use patrol::result::Value;

#[tokio::test]
async fn deployments_report_ratios_per_deployment() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("deployment statuses are the controller's") {
        return;
    }
    let r = run_fields(
        &k,
        "    resource: deployment\n    value: available_ratio\n    crit: lt(1)\n",
    )
    .await;
    assert_eq!(r.len(), 2, "{r:#?}");
    assert!((num(&r, "checkout") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(num(&r, "catalog"), 1.0);
    let checkout = r.iter().find(|x| x.series == "checkout").unwrap();
    assert_eq!(checkout.status, Status::Crit, "{}", checkout.message);
    assert_eq!(
        r.iter().find(|x| x.series == "catalog").unwrap().status,
        Status::Ok
    );

    let r = run_fields(
        &k,
        "    resource: deployments\n    selector: app=checkout\n    value: unavailable\n",
    )
    .await;
    assert_eq!(
        by_series(&r),
        BTreeMap::from([("checkout".into(), Value::Num(1.0))])
    );
    let r = run_fields(
        &k,
        "    resource: deploy\n    object_name: catalog\n    value: not_ready\n",
    )
    .await;
    assert_eq!(
        by_series(&r),
        BTreeMap::from([("catalog".into(), Value::Num(0.0))])
    );
}

#[tokio::test]
async fn pods_report_restarts_crashloops_and_pending() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("pod statuses are the kubelet's") {
        return;
    }
    let r = run_fields(
        &k,
        "    resource: pod\n    selector: app=checkout\n    value: restarts\n    warn: gt(5)\n",
    )
    .await;
    let restarts = by_series(&r);
    assert_eq!(restarts.len(), 3, "{r:#?}");
    assert_eq!(restarts["checkout-7d9f-b"], Value::Num(1.0));
    assert_eq!(
        restarts["checkout-7d9f-c"],
        Value::Num(f64::from(seed::CRASHLOOP_RESTARTS))
    );
    let c = r.iter().find(|x| x.series == "checkout-7d9f-c").unwrap();
    assert_eq!(c.status, Status::Warn);

    let crashloop = run_fields(
        &k,
        "    resource: pod\n    value: crashloop\n    crit: gt(0)\n",
    )
    .await;
    assert_eq!(single(&crashloop), 1.0);
    assert_eq!(crashloop[0].status, Status::Crit);
    assert_eq!(
        single(&run_fields(&k, "    resource: pod\n    value: pending\n").await),
        1.0
    );
    // The crashlooping pod and the pending one.
    assert_eq!(
        single(&run_fields(&k, "    resource: pod\n    value: not_ready\n").await),
        2.0
    );
    let ratio = single(&run_fields(&k, "    resource: pod\n    value: ready_ratio\n").await);
    assert!((ratio - 4.0 / 6.0).abs() < 1e-9, "{ratio}");
}

#[tokio::test]
async fn restarts_increase_counts_since_the_previous_run() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("restart counts are the kubelet's") {
        return;
    }
    let rules = rules(
        &k,
        &check(
            "    resource: pod\n    selector: app=checkout\n    value: restarts_increase\n    crit: gt(0)\n",
        ),
    );
    // The engine hands each run the memory the previous one left (the store keeps it between
    // processes: tests/kube_memory.rs).
    let c = rules.check("c").unwrap();
    let no_baselines = patrol::engine::Known::default();
    let first_run =
        patrol::engine::execute_check_remembering(c, &no_baselines, None, "run-1", "rev").await;
    let first = first_run.results;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(
        first[0].value, None,
        "nothing to compare with on the first run"
    );
    assert_eq!(first[0].status, Status::Ok);

    {
        let mut store = k.store();
        let mut pod = store
            .get("", "pods", &k.namespace, "checkout-7d9f-c")
            .unwrap();
        pod["status"]["containerStatuses"][0]["restartCount"] = serde_json::json!(9);
        store.insert(pod);
    }
    let second = patrol::engine::execute_check_remembering(
        c,
        &no_baselines,
        first_run.memory,
        "run-2",
        "rev",
    )
    .await
    .results;
    let increases = by_series(&second);
    assert_eq!(increases["checkout-7d9f-c"], Value::Num(2.0));
    assert_eq!(increases["checkout-7d9f-a"], Value::Num(0.0));
    assert_eq!(increases["checkout-7d9f-b"], Value::Num(0.0));
    let c = second
        .iter()
        .find(|r| r.series == "checkout-7d9f-c")
        .unwrap();
    assert_eq!(c.status, Status::Crit, "{}", c.message);
}

#[tokio::test]
async fn nodes_report_not_ready() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("a test must not invent nodes on a real cluster") {
        return;
    }
    let r = run_fields(
        &k,
        "    resource: node\n    value: not_ready\n    crit: gt(0)\n",
    )
    .await;
    assert_eq!(single(&r), 1.0);
    assert_eq!(r[0].status, Status::Crit);
    assert_eq!(
        single(&run_fields(&k, "    resource: nodes\n    value: ready_ratio\n").await),
        0.5
    );
}

#[tokio::test]
async fn warning_events_within_the_window() {
    let k = Cluster::start().await;
    let hour = run_fields(&k, "    resource: event\n    value: warning_events\n").await;
    assert_eq!(
        single(&hour),
        2.0,
        "the two recent Warnings, not the old one nor the Normal one"
    );
    let four_hours = run_fields(
        &k,
        "    resource: event\n    value: warning_events\n    window: 4h\n",
    )
    .await;
    assert_eq!(single(&four_hours), 3.0);
    if !k.is_real() {
        let store = k.store();
        let lists: Vec<&str> = store
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/events"))
            .map(|r| r.query.as_str())
            .collect();
        assert!(
            lists
                .iter()
                .all(|q| q.contains("fieldSelector=type%3DWarning")),
            "Warning events are selected by the server: {lists:?}"
        );
    }
}

#[tokio::test]
async fn storage_jobs_and_cronjobs() {
    let k = Cluster::start().await;
    let unbound = run_fields(
        &k,
        "    resource: pvc\n    object_name: uploads\n    value: pvc_bound\n    crit: lt(1)\n",
    )
    .await;
    assert_eq!(
        by_series(&unbound),
        BTreeMap::from([("uploads".into(), Value::Num(0.0))])
    );
    assert_eq!(unbound[0].status, Status::Crit);
    if k.skip_on_real_cluster("binding, job and cronjob statuses are the controllers'") {
        return;
    }
    let pvcs = run_fields(
        &k,
        "    resource: persistentvolumeclaims\n    value: pvc_bound\n",
    )
    .await;
    assert_eq!(num(&pvcs, "data-db-0"), 1.0);
    let jobs = run_fields(
        &k,
        "    resource: job\n    value: job_failed\n    crit: eq(1)\n",
    )
    .await;
    assert_eq!(
        (num(&jobs, "nightly-report"), num(&jobs, "backfill")),
        (1.0, 0.0)
    );
    let cron = run_fields(
        &k,
        "    resource: cronjob\n    value: cronjob_last_success_age\n    warn: gt(90000)\n",
    )
    .await;
    let backup = num(&cron, "backup");
    let expected = seed::BACKUP_SUCCESS_AGO_SECS as f64;
    // Seed times are rounded to whole seconds: a second either way.
    assert!(
        (expected - 1.0..expected + 30.0).contains(&backup),
        "{backup}"
    );
    assert!((599.0..630.0).contains(&num(&cron, "cleanup")));
    let late = cron.iter().find(|r| r.series == "backup").unwrap();
    assert_eq!((late.status, late.unit.as_str()), (Status::Warn, "s"));
}

#[tokio::test]
async fn counts_jsonpath_and_ages_per_object() {
    let k = Cluster::start().await;
    let migrate = run_fields(&k, "    resource: pod\n    selector: app=migrate\n    field_selector: status.phase=Pending\n    value: count\n").await;
    assert_eq!(single(&migrate), 1.0);
    let none = run_fields(
        &k,
        "    resource: pod\n    selector: app in (nothing)\n    value: count\n",
    )
    .await;
    assert_eq!(single(&none), 0.0);

    let replicas = run_fields(
        &k,
        "    resource: deployment\n    value: \"jsonpath:{.spec.replicas}\"\n",
    )
    .await;
    assert_eq!(
        by_series(&replicas),
        BTreeMap::from([
            ("catalog".into(), Value::Num(2.0)),
            ("checkout".into(), Value::Num(3.0))
        ])
    );
    let missing = run_fields(&k, "    resource: deployment\n    object_name: checkout\n    value: \"jsonpath:$.spec.paused\"\n").await;
    assert_eq!(missing[0].status, Status::Crit);
    assert!(
        missing[0]
            .message
            .contains("jsonpath $.spec.paused: no match in checkout"),
        "{}",
        missing[0].message
    );
    if k.skip_on_real_cluster("creation times are the server's") {
        return;
    }
    let age = run_fields(
        &k,
        "    resource: deployment\n    object_name: checkout\n    value: age_seconds\n",
    )
    .await;
    let age = num(&age, "checkout");
    let expected = seed::CHECKOUT_AGE_SECS as f64;
    assert!((expected - 1.0..expected + 30.0).contains(&age), "{age}");
}

#[tokio::test]
async fn any_kind_through_the_dynamic_api() {
    let k = Cluster::start().await;
    let fields = "    resource: {api_version: v1, kind: ConfigMap}\n    object_name: checkout-settings\n    value: \"jsonpath:$.data.max_connections\"\n";
    let r = run_fields(&k, fields).await;
    assert_eq!(
        by_series(&r),
        BTreeMap::from([("checkout-settings".into(), Value::Text("250".into()))])
    );
    if k.skip_on_real_cluster("Chaos Mesh is not installed") {
        return;
    }
    k.store().register(kube_support::Resource::new(
        "chaos-mesh.org/v1alpha1",
        "PodChaos",
        "podchaos",
        true,
    ));
    k.store().insert(serde_json::json!({
        "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
        "metadata": {"name": "kill-one", "namespace": k.namespace},
        "spec": {"action": "pod-kill", "mode": "one"}
    }));
    let chaos = "    resource: {api_version: chaos-mesh.org/v1alpha1, kind: PodChaos}\n    value: \"jsonpath:$.spec.action\"\n";
    let r = run_fields(&k, chaos).await;
    assert_eq!(
        by_series(&r),
        BTreeMap::from([("kill-one".into(), Value::Text("pod-kill".into()))])
    );
    let discovered = k
        .store()
        .requests
        .iter()
        .any(|r| r.path == "/apis/chaos-mesh.org/v1alpha1");
    assert!(discovered, "plural and scope come from discovery");
}

#[tokio::test]
async fn all_namespaces_key_series_by_namespace() {
    let k = Cluster::start().await;
    let r = run_fields(
        &k,
        "    resource: cronjob\n    namespace: all\n    selector: app=ops\n    value: count\n",
    )
    .await;
    assert!(single(&r) >= 2.0);
    let r = run_fields(&k, "    resource: pvc\n    namespace: all\n    field_selector: metadata.name=uploads\n    value: pvc_bound\n").await;
    let key = format!("{}/uploads", k.namespace);
    assert!(by_series(&r).contains_key(&key), "{r:#?}");
}

#[tokio::test]
async fn large_lists_are_read_page_by_page() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("1200 objects are too many for a shared cluster") {
        return;
    }
    {
        let mut store = k.store();
        for i in 0..1200 {
            store.insert(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("bulk-{i:04}"), "namespace": k.namespace,
                             "labels": {"bulk": "yes"}}
            }));
        }
    }
    let r = run_fields(&k, "    resource: {api_version: v1, kind: ConfigMap, plural: configmaps, namespaced: true}\n    selector: bulk=yes\n    value: count\n").await;
    assert_eq!(single(&r), 1200.0);
    let store = k.store();
    let pages: Vec<&str> = store
        .requests
        .iter()
        .filter(|r| r.path.ends_with("/configmaps"))
        .map(|r| r.query.as_str())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1].contains("continue=500") && pages[2].contains("continue=1000"),
        "{pages:?}"
    );
    assert!(
        !store.requests.iter().any(|r| r.path == "/api/v1"),
        "plural and scope given: no discovery"
    );
}
