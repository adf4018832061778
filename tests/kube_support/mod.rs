//! A Kubernetes API for the tests. No API server can be installed on the machines these tests
//! run on, so by default this is an **in-process server, not a real cluster**: an axum server on
//! `127.0.0.1:0` (plain HTTP, bearer token) that speaks the real REST paths and object JSON
//! (k8s-openapi types): list and get with `labelSelector` / `fieldSelector` / `limit` +
//! `continue`, create, replace, patch (merge, strategic merge treated as merge, JSON patch,
//! server-side apply treated as merge), delete and delete-collection, the `/status`
//! subresource, discovery and `/version`; every write honours `dryRun=All`. Its objects are
//! readable and writable by the tests ([`Cluster::store`]), so tests of actions and drills can
//! assert on what changed, and 403s can be configured ([`ObjectStore::forbidden`]).
//!
//! When `PATROL_TEST_KUBECONFIG` names a kubeconfig (a kind or k3d cluster), the same tests run
//! against that cluster instead: each creates a fresh namespace, creates its seed objects there
//! (statuses through the `/status` subresource) and deletes the namespace at the end. On a real
//! cluster, controllers and kubelets own most statuses and nodes cannot be invented, so tests
//! whose expectations need the seeded statuses call [`Cluster::skip_on_real_cluster`] and are
//! skipped there (saying so); the others run unchanged.

#![allow(dead_code)] // each test file uses a part

pub mod checks;
pub mod controller;
pub mod discovery;
pub mod patch;
pub mod seed;
pub mod selectors;
pub mod server;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[allow(unused_imports)] // not every test file names both
pub use store::{ObjectStore, Resource};

/// The environment variable that switches the tests to a real cluster.
pub const REAL_CLUSTER_ENV: &str = "PATROL_TEST_KUBECONFIG";

/// The in-process API server.
pub struct KubeServer {
    pub addr: SocketAddr,
    pub store: server::Shared,
    task: tokio::task::JoinHandle<()>,
}

impl KubeServer {
    /// Starts an empty server on a free loopback port.
    pub async fn start() -> KubeServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store: server::Shared = Arc::new(Mutex::new(ObjectStore::default()));
        let app = server::router(store.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KubeServer { addr, store, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A kubeconfig with one context `patrol-test` for the server at `url` and a token user.
pub fn kubeconfig_text(url: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: patrol-test\n\
         clusters:\n- name: patrol-test\n  cluster:\n    server: {url}\n\
         users:\n- name: patrol\n  user:\n    token: {}\n\
         contexts:\n- name: patrol-test\n  context:\n    cluster: patrol-test\n    user: patrol\n    namespace: {namespace}\n",
        server::TOKEN
    )
}

/// The API the tests run against: the in-process server, or a real cluster.
pub struct Cluster {
    /// The namespace the seed objects are in.
    pub namespace: String,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    server: Option<KubeServer>,
    real: bool,
}

impl Cluster {
    /// A seeded API: the in-process server, or the cluster `PATROL_TEST_KUBECONFIG` names.
    pub async fn start() -> Cluster {
        patrol::install_crypto_provider();
        match std::env::var_os(REAL_CLUSTER_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Self::real(PathBuf::from(path)).await,
            None => Self::in_process().await,
        }
    }

    async fn in_process() -> Cluster {
        let server = KubeServer::start().await;
        let namespace = "shop".to_string();
        {
            let mut s = server.store.lock().unwrap();
            s.insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": namespace}}));
            for obj in seed::objects(&namespace) {
                s.insert(obj);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(&server.url(), &namespace)).unwrap();
        Cluster {
            namespace,
            kubeconfig,
            dir,
            server: Some(server),
            real: false,
        }
    }

    async fn real(kubeconfig: PathBuf) -> Cluster {
        let namespace = format!(
            "patrol-test-{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let client = real_client(&kubeconfig).await;
        real::create_namespace(&client, &namespace).await;
        for obj in seed::objects(&namespace) {
            real::apply_seed(&client, &namespace, obj).await;
        }
        Cluster {
            namespace,
            kubeconfig,
            dir: tempfile::tempdir().unwrap(),
            server: None,
            real: true,
        }
    }

    pub fn is_real(&self) -> bool {
        self.real
    }

    /// True (and says why on stderr) when on a real cluster, where `why` does not hold.
    pub fn skip_on_real_cluster(&self, why: &str) -> bool {
        if self.real {
            eprintln!("skipped on a real cluster: {why}");
        }
        self.real
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A directory that lives as long as the cluster (rule files, stores).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The in-process server's objects (panics on a real cluster: guard with `is_real`).
    pub fn store(&self) -> MutexGuard<'_, ObjectStore> {
        self.server
            .as_ref()
            .expect("the object store exists for the in-process server only")
            .store
            .lock()
            .unwrap()
    }

    pub fn server(&self) -> Option<&KubeServer> {
        self.server.as_ref()
    }

    /// A `targets:` section with a kubernetes target `name` for this cluster.
    pub fn targets_yaml(&self, name: &str) -> String {
        format!(
            "targets:\n  {name}:\n    kind: kubernetes\n    kubeconfig: {}\n    namespace: {}\n",
            self.kubeconfig.display(),
            self.namespace
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.real {
            let (kubeconfig, ns) = (self.kubeconfig.clone(), self.namespace.clone());
            // Drop cannot await: delete the namespace on a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let client = real_client(&kubeconfig).await;
                    real::delete_namespace(&client, &ns).await;
                });
            })
            .join();
        }
    }
}

async fn real_client(kubeconfig: &Path) -> kube::Client {
    let config =
        kube::config::Kubeconfig::read_from(kubeconfig).expect("PATROL_TEST_KUBECONFIG reads");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("PATROL_TEST_KUBECONFIG is a usable kubeconfig");
    kube::Client::try_from(config).expect("a client for PATROL_TEST_KUBECONFIG")
}

/// Seeding a real cluster through its API.
mod real {
    use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
    use kube::discovery::ApiResource;
    use serde_json::{Value, json};

    pub async fn create_namespace(client: &kube::Client, ns: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let obj = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        api.create(&PostParams::default(), &obj)
            .await
            .expect("creating the test namespace");
    }

    pub async fn delete_namespace(client: &kube::Client, ns: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let _ = api.delete(ns, &Default::default()).await;
    }

    /// Creates `obj` (cluster-scoped ones are left out: a test must not invent nodes) and sets
    /// its status through the `/status` subresource.
    pub async fn apply_seed(client: &kube::Client, ns: &str, obj: Value) {
        let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, obj["kind"].as_str().unwrap());
        if gvk.kind == "Node" {
            return;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk));
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let dynamic: DynamicObject = serde_json::from_value(obj.clone()).unwrap();
        api.create(&PostParams::default(), &dynamic)
            .await
            .unwrap_or_else(|e| panic!("creating {} {name}: {e}", gvk.kind));
        if let Some(status) = obj.get("status") {
            let patch = Patch::Merge(json!({"status": status}));
            // Some kinds have no /status (events, configmaps); a refused status is not fatal.
            let _ = api
                .patch_status(&name, &PatchParams::default(), &patch)
                .await;
        }
    }
}
