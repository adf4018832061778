//! The in-process Kubernetes API server of `kube_support` (not a real cluster; see its module
//! docs) behaves as the real one where patrol's actions will rely on it: writes through kube's
//! client (create, merge / JSON / apply patches, `/status`, delete, delete-collection) change
//! the stored objects, `dryRun=All` changes nothing, and set-based label selectors select.
//! These run against the in-process server only: they assert on its object store.

mod common;
mod kube_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_support::{Cluster, KubeServer, kubeconfig_text};
use serde_json::json;

async fn client_for(k: &Cluster) -> Option<kube::Client> {
    if k.skip_on_real_cluster("these tests assert on the in-process server's store") {
        return None;
    }
    let config = kube::config::Kubeconfig::read_from(k.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap();
    Some(kube::Client::try_from(config).unwrap())
}

fn dry_run_patch() -> PatchParams {
    PatchParams {
        dry_run: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn patches_change_the_object_and_dry_runs_do_not() {
    let k = Cluster::start().await;
    let Some(client) = client_for(&k).await else {
        return;
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &k.namespace);
    let scale = Patch::Merge(json!({"spec": {"replicas": 5}}));
    let answered = deployments
        .patch("checkout", &dry_run_patch(), &scale)
        .await
        .unwrap();
    assert_eq!(
        answered.spec.replicas,
        Some(5),
        "a dry run answers the result"
    );
    let stored = k
        .store()
        .get("apps", "deployments", &k.namespace, "checkout")
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 3, "and stores nothing");

    let restart = Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations":
        {"kubectl.kubernetes.io/restartedAt": "2026-11-21T12:00:00Z"}}}}}));
    deployments
        .patch("checkout", &PatchParams::default(), &restart)
        .await
        .unwrap();
    // kube sends JSON patches only with its `jsonpatch` feature: sent by hand here.
    let request = axum::http::Request::patch(format!(
        "/apis/apps/v1/namespaces/{}/deployments/checkout",
        k.namespace
    ))
    .header("content-type", "application/json-patch+json")
    .body(
        serde_json::to_vec(&json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]))
            .unwrap(),
    )
    .unwrap();
    client.request::<Deployment>(request).await.unwrap();
    let stored = k
        .store()
        .get("apps", "deployments", &k.namespace, "checkout")
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 4);
    assert_eq!(
        stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2026-11-21T12:00:00Z"
    );
    assert_eq!(
        stored["status"]["availableReplicas"], 2,
        "a spec write leaves the status"
    );
    assert_eq!(stored["metadata"]["generation"], 3);

    let status = Patch::Merge(json!({"status": {"availableReplicas": 3}}));
    deployments
        .patch_status("checkout", &PatchParams::default(), &status)
        .await
        .unwrap();
    let stored = k
        .store()
        .get("apps", "deployments", &k.namespace, "checkout")
        .unwrap();
    assert_eq!(stored["status"]["availableReplicas"], 3);
}

#[tokio::test]
async fn create_and_delete_honour_dry_run() {
    let k = Cluster::start().await;
    let Some(client) = client_for(&k).await else {
        return;
    };
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &k.namespace);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "flags"}, "data": {"x": "1"}
    }))
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answered = maps.create(&dry, &cm).await.unwrap();
    assert!(answered.metadata.uid.is_some());
    assert!(
        k.store()
            .get("", "configmaps", &k.namespace, "flags")
            .is_none()
    );
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let err = maps.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    let pods: Api<Pod> = Api::namespaced(client, &k.namespace);
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    pods.delete("checkout-7d9f-c", &dry_delete).await.unwrap();
    assert!(
        k.store()
            .get("", "pods", &k.namespace, "checkout-7d9f-c")
            .is_some()
    );
    pods.delete("checkout-7d9f-c", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        k.store()
            .get("", "pods", &k.namespace, "checkout-7d9f-c")
            .is_none()
    );
    let gone = pods.get("checkout-7d9f-c").await.unwrap_err();
    assert!(gone.to_string().contains("not found"), "{gone}");

    let catalog = ListParams::default().labels("app in (catalog)");
    pods.delete_collection(&dry_delete, &catalog).await.unwrap();
    assert_eq!(pods.list(&catalog).await.unwrap().items.len(), 2);
    pods.delete_collection(&DeleteParams::default(), &catalog)
        .await
        .unwrap();
    assert_eq!(pods.list(&catalog).await.unwrap().items.len(), 0);
    let left: Vec<String> = pods
        .list(&ListParams::default().labels("tier=web,app!=migrate"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["checkout-7d9f-a", "checkout-7d9f-b"]);
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    patrol::install_crypto_provider();
    let server = KubeServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let text = kubeconfig_text(&server.url(), "default").replace("patrol-test-token", "wrong");
    std::fs::write(&path, text).unwrap();
    let config = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let err = client.apiserver_version().await.unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 401),
        other => panic!("{other}"),
    }
}
