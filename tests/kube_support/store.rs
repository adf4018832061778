//! The in-process API server's objects: a registry of resources (group, version, plural, kind,
//! scope) and every stored object as JSON, keyed by resource, namespace and name. Tests read and
//! change it directly to set up a case and to assert on what actions did.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A resource the server serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
}

impl Resource {
    pub fn new(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Resource {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Resource {
            group,
            version,
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// How the server names the resource in messages: `deployments.apps`, `pods`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The built-in resources patrol uses, and a few it may touch through the dynamic API.
fn builtin_resources() -> Vec<Resource> {
    [
        ("v1", "Pod", "pods", true),
        ("v1", "Node", "nodes", false),
        (
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
        ),
        ("v1", "Event", "events", true),
        ("v1", "Namespace", "namespaces", false),
        ("v1", "ConfigMap", "configmaps", true),
        ("v1", "Service", "services", true),
        ("apps/v1", "Deployment", "deployments", true),
        ("apps/v1", "StatefulSet", "statefulsets", true),
        ("apps/v1", "DaemonSet", "daemonsets", true),
        ("apps/v1", "ReplicaSet", "replicasets", true),
        ("batch/v1", "Job", "jobs", true),
        ("batch/v1", "CronJob", "cronjobs", true),
    ]
    .into_iter()
    .map(|(av, kind, plural, ns)| Resource::new(av, kind, plural, ns))
    .collect()
}

/// (group, plural, namespace or "", name)
type Key = (String, String, String, String);

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub query: String,
}

/// Everything the server holds.
#[derive(Debug)]
pub struct ObjectStore {
    resources: Vec<Resource>,
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    /// Every request, in order (for asserting on selectors and `dryRun`).
    pub requests: Vec<SeenRequest>,
    /// (verb, plural) pairs answered 403, as RBAC would.
    pub forbidden: Vec<(String, String)>,
}

impl Default for ObjectStore {
    fn default() -> Self {
        ObjectStore {
            resources: builtin_resources(),
            objects: BTreeMap::new(),
            resource_version: 1000,
            requests: Vec::new(),
            forbidden: Vec::new(),
        }
    }
}

impl ObjectStore {
    /// Serves another kind (a CRD such as Chaos Mesh's PodChaos).
    pub fn register(&mut self, r: Resource) {
        self.resources
            .retain(|x| !(x.group == r.group && x.plural == r.plural));
        self.resources.push(r);
    }

    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    fn resource_of(&self, obj: &Value) -> Result<Resource, String> {
        let av = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        self.resources
            .iter()
            .find(|r| r.api_version() == av && r.kind == kind)
            .cloned()
            .ok_or_else(|| format!("no resource for apiVersion {av:?} kind {kind:?}"))
    }

    /// The store's current resourceVersion (as lists report it).
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    pub fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Stores `obj` as the server would on create: uid, resourceVersion, creationTimestamp and
    /// generation filled in unless set. Replaces an object of the same name.
    pub fn insert(&mut self, mut obj: Value) -> Value {
        let r = self
            .resource_of(&obj)
            .unwrap_or_else(|e| panic!("cannot store {obj}: {e}"));
        let rv = self.next_resource_version();
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("an object has metadata");
        meta.entry("uid")
            .or_insert_with(|| json!(uuid::Uuid::now_v7().to_string()));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.entry("creationTimestamp")
            .or_insert_with(|| json!(now_text()));
        meta.entry("generation").or_insert(json!(1));
        if !r.namespaced {
            meta.remove("namespace");
        }
        let key = key_of(&r, &obj);
        self.objects.insert(key, obj.clone());
        obj
    }

    /// The object of `plural` (in `group`) named `name` in `namespace` ("" when cluster-scoped).
    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(group.into(), plural.into(), namespace.into(), name.into()))
            .cloned()
    }

    /// Objects of `plural` in `group`, in `namespace` (all namespaces when `None`), by name.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                g == group && p == plural && namespace.is_none_or(|want| want == ns)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn put(&mut self, r: &Resource, obj: Value) {
        self.objects.insert(key_of(r, &obj), obj);
    }

    pub fn remove(
        &mut self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let removed =
            self.objects
                .remove(&(group.into(), plural.into(), namespace.into(), name.into()));
        if removed.is_some() && group.is_empty() && plural == "namespaces" {
            // Deleting a namespace deletes what is in it.
            self.objects.retain(|(_, _, ns, _), _| ns != name);
        }
        removed
    }

    /// Whether RBAC (as configured by the test) refuses `verb` on `plural`.
    pub fn is_forbidden(&self, verb: &str, plural: &str) -> bool {
        self.forbidden
            .iter()
            .any(|(v, p)| v == verb && (p == plural || p == "*"))
    }
}

fn key_of(r: &Resource, obj: &Value) -> Key {
    let meta = &obj["metadata"];
    let ns = if r.namespaced {
        meta["namespace"].as_str().unwrap_or("default").to_string()
    } else {
        String::new()
    };
    let name = meta["name"].as_str().unwrap_or_default().to_string();
    (r.group.clone(), r.plural.clone(), ns, name)
}

/// Now as the API server writes times (RFC 3339, seconds, UTC).
pub fn now_text() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .expect("rounding to seconds")
        .to_string()
}
