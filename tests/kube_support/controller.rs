//! A stand-in for the controllers of a real cluster, for the in-process server (which has none):
//! a task that, every few milliseconds, makes each ReplicaSet's pods match its `spec.replicas`
//! (creating missing pods not Ready, marking them Ready after `ready_after` — like a container
//! starting — and deleting surplus ones), propagates a Deployment's `spec.replicas` to its
//! ReplicaSet, and keeps both statuses (`replicas`, `readyReplicas`, `availableReplicas`,
//! `observedGeneration`) current. It records when each pod it created became Ready, so tests can
//! tell that something waited for readiness.
//!
//! [`web_deployment`] seeds what it reconciles: a Deployment `web`, its ReplicaSet and its pods,
//! with owner references as the real controllers write them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::server::Shared;
use super::store::ObjectStore;

/// How often the controller looks.
const TICK: Duration = Duration::from_millis(20);
/// A bound on its life, whatever the test does: 10 minutes of ticks.
const MAX_TICKS: u32 = 30_000;

/// The running controller; stops when dropped.
pub struct FakeController {
    task: tokio::task::JoinHandle<()>,
    /// Pods the controller created → when it marked them Ready.
    pub ready_at: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
}

impl FakeController {
    /// Starts reconciling `store`; new pods become Ready `ready_after` after they are created.
    pub fn start(store: Shared, ready_after: Duration) -> FakeController {
        let ready_at: Arc<Mutex<HashMap<String, DateTime<Utc>>>> = Arc::default();
        let recorded = ready_at.clone();
        let task = tokio::spawn(async move {
            let mut born: HashMap<String, Instant> = HashMap::new();
            for _ in 0..MAX_TICKS {
                {
                    let mut s = store.lock().unwrap();
                    reconcile(&mut s, &mut born, ready_after, &recorded);
                }
                tokio::time::sleep(TICK).await;
            }
        });
        FakeController { task, ready_at }
    }

    /// When the pods the controller created became Ready (the latest of them), if any did.
    pub fn last_ready(&self) -> Option<DateTime<Utc>> {
        self.ready_at.lock().unwrap().values().max().copied()
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reconcile(
    s: &mut ObjectStore,
    born: &mut HashMap<String, Instant>,
    ready_after: Duration,
    ready_at: &Mutex<HashMap<String, DateTime<Utc>>>,
) {
    for deployment in s.list("apps", "deployments", None) {
        sync_deployment_to_replicaset(s, &deployment);
    }
    for rs in s.list("apps", "replicasets", None) {
        let ns = rs["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let uid = rs["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1) as usize;
        let mut pods: Vec<Value> = s
            .list("", "pods", Some(&ns))
            .into_iter()
            .filter(|p| owner_uid(p).as_deref() == Some(uid.as_str()))
            .collect();
        while pods.len() < desired {
            let pod = s.insert(new_pod(&rs));
            born.insert(name(&pod), Instant::now());
            pods.push(pod);
        }
        for extra in pods.split_off(desired) {
            s.remove("", "pods", &ns, &name(&extra));
        }
        for pod in &mut pods {
            let started = born
                .get(&name(pod))
                .is_some_and(|t| t.elapsed() >= ready_after);
            if started && !is_ready(pod) {
                set_ready(s, pod);
                ready_at.lock().unwrap().insert(name(pod), Utc::now());
            }
        }
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        let status = json!({"replicas": pods.len(), "readyReplicas": ready,
            "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]});
        update_status(s, "replicasets", &rs, status.clone());
        if let Some(deployment) =
            owner_name(&rs).and_then(|d| s.get("apps", "deployments", &ns, &d))
        {
            let mut status = status;
            status["updatedReplicas"] = json!(pods.len());
            status["observedGeneration"] = deployment["metadata"]["generation"].clone();
            update_status(s, "deployments", &deployment, status);
        }
    }
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn controller_owner(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

fn owner_uid(obj: &Value) -> Option<String> {
    controller_owner(obj).and_then(|r| r["uid"].as_str().map(String::from))
}

fn owner_name(obj: &Value) -> Option<String> {
    controller_owner(obj).and_then(|r| r["name"].as_str().map(String::from))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// A Deployment's replicas flow to its ReplicaSets (one per deployment here).
fn sync_deployment_to_replicaset(s: &mut ObjectStore, deployment: &Value) {
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let uid = &deployment["metadata"]["uid"];
    let desired = &deployment["spec"]["replicas"];
    for mut rs in s.list("apps", "replicasets", Some(ns)) {
        if controller_owner(&rs).map(|r| &r["uid"]) == Some(uid)
            && rs["spec"]["replicas"] != *desired
        {
            rs["spec"]["replicas"] = desired.clone();
            rs["metadata"]["resourceVersion"] = json!(s.next_resource_version());
            let r = s.resource("apps", "v1", "replicasets").unwrap().clone();
            s.put(&r, rs);
        }
    }
}

fn update_status(s: &mut ObjectStore, plural: &str, obj: &Value, status: Value) {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let Some(mut current) = s.get("apps", plural, ns, &name(obj)) else {
        return;
    };
    let mut merged = current["status"].clone();
    if !merged.is_object() {
        merged = json!({});
    }
    for (k, v) in status.as_object().unwrap() {
        merged[k] = v.clone();
    }
    if current["status"] == merged {
        return;
    }
    current["status"] = merged;
    current["metadata"]["resourceVersion"] = json!(s.next_resource_version());
    let r = s.resource("apps", "v1", plural).unwrap().clone();
    s.put(&r, current);
}

fn set_ready(s: &mut ObjectStore, pod: &mut Value) {
    pod["status"] = pod_status(true);
    pod["metadata"]["resourceVersion"] = json!(s.next_resource_version());
    let r = s.resource("", "v1", "pods").unwrap().clone();
    s.put(&r, pod.clone());
}

fn pod_status(ready: bool) -> Value {
    let flag = if ready { "True" } else { "False" };
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "ContainersReady", "status": flag},
            {"type": "Ready", "status": flag}
        ],
        "containerStatuses": [{
            "name": "app", "image": "registry.k8s.io/pause:3.10", "imageID": "",
            "ready": ready, "restartCount": 0,
            "state": if ready { json!({"running": {"startedAt": super::store::now_text()}}) }
                     else { json!({"waiting": {"reason": "ContainerCreating"}}) }
        }]
    })
}

/// A pod of `rs`: its template's labels and spec, owned by it, not Ready yet.
fn new_pod(rs: &Value) -> Value {
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[27..];
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{}-{suffix}", name(rs)),
            "namespace": rs["metadata"]["namespace"],
            "labels": rs["spec"]["template"]["metadata"]["labels"],
            "ownerReferences": [owner_reference("ReplicaSet", rs)]
        },
        "spec": rs["spec"]["template"]["spec"],
        "status": pod_status(false)
    });
    pod["spec"]["nodeName"] = json!("node-a");
    pod
}

fn owner_reference(kind: &str, owner: &Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true})
}

/// Seeds Deployment `web` (`replicas` pods, label `app=web`) with its ReplicaSet `web-6d4f` and
/// its pods, all Ready.
pub fn web_deployment(s: &mut ObjectStore, ns: &str, replicas: usize) {
    let template = json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    });
    let deployment = s.insert(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": template},
        "status": {"replicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "updatedReplicas": replicas,
                   "observedGeneration": 1}
    }));
    let rs = s.insert(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-6d4f", "namespace": ns, "labels": {"app": "web"},
                     "ownerReferences": [owner_reference("Deployment", &deployment)]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": template},
        "status": {"replicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "observedGeneration": 1}
    }));
    for _ in 0..replicas {
        let mut pod = new_pod(&rs);
        pod["status"] = pod_status(true);
        s.insert(pod);
    }
}
