//! Which objects a check (or an action) is about: a resource name (`deployment`, `pod`, …) or any
//! `api_version` + `kind` through the dynamic API, the namespace(s), and the selectors. Objects
//! are fetched as dynamic objects (JSON), page by page; values read them through the k8s-openapi
//! types where those exist.

use kube::api::{Api, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{ApiResource, Scope};
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::describe_error;

/// Objects asked for per page; large clusters answer in pages rather than one huge list.
const PAGE_SIZE: u32 = 500;
/// At most this many pages (`PAGE_SIZE` objects each) per list: a bound, not an expectation.
const MAX_PAGES: usize = 400;

/// The verbs the probe uses on the objects it reads: it only lists (a check's `object_name` is
/// a field selector on the list). The inspection role (deploy/kubernetes/rbac-inspect.yaml)
/// grants exactly these on every [`BuiltIn`] resource, which tests/deploy.rs checks, and
/// `validate --online` names them when the API server refuses.
pub const PROBE_VERBS: &[&str] = &[LIST];

/// The verb of [`list`].
pub const LIST: &str = "list";

/// The built-in resources a check names by word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltIn {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Pod,
    Node,
    Pvc,
    Job,
    CronJob,
    Event,
}

impl BuiltIn {
    /// Each resource with the words that name it (singular, plural, kubectl's short name).
    pub const NAMES: &'static [(BuiltIn, &'static [&'static str])] = &[
        (
            BuiltIn::Deployment,
            &["deployment", "deployments", "deploy"],
        ),
        (
            BuiltIn::StatefulSet,
            &["statefulset", "statefulsets", "sts"],
        ),
        (BuiltIn::DaemonSet, &["daemonset", "daemonsets", "ds"]),
        (BuiltIn::ReplicaSet, &["replicaset", "replicasets", "rs"]),
        (BuiltIn::Pod, &["pod", "pods", "po"]),
        (BuiltIn::Node, &["node", "nodes", "no"]),
        (
            BuiltIn::Pvc,
            &[
                "pvc",
                "pvcs",
                "persistentvolumeclaim",
                "persistentvolumeclaims",
            ],
        ),
        (BuiltIn::Job, &["job", "jobs"]),
        (BuiltIn::CronJob, &["cronjob", "cronjobs", "cj"]),
        (BuiltIn::Event, &["event", "events", "ev"]),
    ];

    pub fn parse(word: &str) -> Option<BuiltIn> {
        let word = word.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(_, names)| names.contains(&word.as_str()))
            .map(|(b, _)| *b)
    }

    /// The word messages use (the first of its names).
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(b, _)| *b == self)
            .map(|(_, names)| names[0])
            .unwrap_or("?")
    }

    pub fn api_resource(self) -> ApiResource {
        use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
        match self {
            BuiltIn::Deployment => ApiResource::erase::<apps::Deployment>(&()),
            BuiltIn::StatefulSet => ApiResource::erase::<apps::StatefulSet>(&()),
            BuiltIn::DaemonSet => ApiResource::erase::<apps::DaemonSet>(&()),
            BuiltIn::ReplicaSet => ApiResource::erase::<apps::ReplicaSet>(&()),
            BuiltIn::Pod => ApiResource::erase::<core::Pod>(&()),
            BuiltIn::Node => ApiResource::erase::<core::Node>(&()),
            BuiltIn::Pvc => ApiResource::erase::<core::PersistentVolumeClaim>(&()),
            BuiltIn::Job => ApiResource::erase::<batch::Job>(&()),
            BuiltIn::CronJob => ApiResource::erase::<batch::CronJob>(&()),
            BuiltIn::Event => ApiResource::erase::<core::Event>(&()),
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            BuiltIn::Node => Scope::Cluster,
            _ => Scope::Namespaced,
        }
    }

    /// Deployments, statefulsets, daemonsets and replicasets: things with desired replicas.
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            BuiltIn::Deployment | BuiltIn::StatefulSet | BuiltIn::DaemonSet | BuiltIn::ReplicaSet
        )
    }

    fn all_names() -> String {
        Self::NAMES
            .iter()
            .map(|(b, _)| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `resource:` — a built-in resource by word, or any kind through the dynamic API.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum ResourceRef {
    /// deployment, statefulset, daemonset, replicaset, pod, node, pvc, job, cronjob or event.
    Named(String),
    /// Any kind: `{api_version: chaos-mesh.org/v1alpha1, kind: PodChaos}`.
    Dynamic(DynamicRef),
}

/// A word or a mapping, each deserialized as itself, so a mistake in the mapping is reported as
/// that (a missing `kind`, an unknown field) rather than as "matches no variant".
impl<'de> Deserialize<'de> for ResourceRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ResourceRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a resource name (deployment, pod, …) or {api_version, kind}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ResourceRef, E> {
                Ok(ResourceRef::Named(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ResourceRef, A::Error> {
                DynamicRef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ResourceRef::Dynamic)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A kind reached through the dynamic API. Its plural and scope are looked up on the API server
/// (discovery) unless both `plural` and `namespaced` are given.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicRef {
    /// `group/version`, or `v1` for the core group.
    pub api_version: String,
    /// The kind, as in the objects' `kind:` (`PodChaos`, `ConfigMap`).
    pub kind: String,
    /// The resource's plural name in URLs (`podchaos`); looked up when absent.
    #[serde(default)]
    pub plural: Option<String>,
    /// Whether objects live in namespaces; looked up when absent.
    #[serde(default)]
    pub namespaced: Option<bool>,
}

impl ResourceRef {
    /// The built-in resource named, `Ok(None)` for a dynamic one, or what is wrong.
    pub fn builtin(&self) -> Result<Option<BuiltIn>, String> {
        match self {
            ResourceRef::Named(word) => BuiltIn::parse(word).map(Some).ok_or_else(|| {
                format!(
                    "unknown resource {word:?}; use one of: {}, or {{api_version, kind}} for any other kind",
                    BuiltIn::all_names()
                )
            }),
            ResourceRef::Dynamic(_) => Ok(None),
        }
    }

    /// Problems in a dynamic reference (the named one is checked by [`ResourceRef::builtin`]).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let ResourceRef::Dynamic(d) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if d.api_version.trim().is_empty() || d.api_version.split('/').count() > 2 {
            out.push((
                "api_version",
                format!(
                    "api_version {:?} must be `group/version` or `v1`",
                    d.api_version
                ),
            ));
        }
        if d.kind.trim().is_empty() {
            out.push(("kind", "kind is empty".to_string()));
        }
        if d.plural.as_deref().is_some_and(|p| p.trim().is_empty()) {
            out.push(("plural", "plural is empty".to_string()));
        }
        out
    }

    /// How messages name the resource.
    pub fn describe(&self) -> String {
        match self {
            ResourceRef::Named(word) => word.clone(),
            ResourceRef::Dynamic(d) => format!("{} {}", d.api_version, d.kind),
        }
    }
}

/// A resource ready for requests.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub api: ApiResource,
    pub scope: Scope,
    pub builtin: Option<BuiltIn>,
}

impl Resolved {
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The plural in messages: "deployments", "podchaos".
    pub fn plural(&self) -> &str {
        &self.api.plural
    }
}

/// The resource `r` names; a dynamic one without `plural` and `namespaced` is looked up on the
/// API server.
pub async fn resolve(client: &kube::Client, r: &ResourceRef) -> Result<Resolved, String> {
    if let Some(b) = r.builtin()? {
        return Ok(Resolved {
            api: b.api_resource(),
            scope: b.scope(),
            builtin: Some(b),
        });
    }
    let ResourceRef::Dynamic(d) = r else {
        unreachable!("a named resource is built in")
    };
    let (group, version) = match d.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), d.api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &d.kind);
    if let (Some(plural), Some(namespaced)) = (&d.plural, d.namespaced) {
        return Ok(Resolved {
            api: ApiResource::from_gvk_with_plural(&gvk, plural),
            scope: if namespaced {
                Scope::Namespaced
            } else {
                Scope::Cluster
            },
            builtin: None,
        });
    }
    let (mut api, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| not_served(&e, d))?;
    if let Some(plural) = &d.plural {
        api.plural = plural.clone();
    }
    let scope = match d.namespaced {
        Some(true) => Scope::Namespaced,
        Some(false) => Scope::Cluster,
        None => caps.scope,
    };
    Ok(Resolved {
        api,
        scope,
        builtin: None,
    })
}

/// Why discovery did not find a kind: one the API server does not serve (its group version
/// missing or without that kind) is most often a CustomResourceDefinition not installed.
fn not_served(e: &kube::Error, d: &DynamicRef) -> String {
    let what = format!("kind {} in {}", d.kind, d.api_version);
    match e {
        kube::Error::Discovery(_) => format!(
            "cannot discover {what}: the API server does not serve it (is its \
             CustomResourceDefinition installed?)"
        ),
        kube::Error::Api(status) if status.code == 404 => format!(
            "cannot discover {what}: the API server does not serve {} (is its \
             CustomResourceDefinition installed?)",
            d.api_version
        ),
        other => describe_error(other, "discover", &what),
    }
}

/// Where to look: one namespace, or all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Namespaces {
    One(String),
    All,
}

impl Namespaces {
    /// A check's `namespace:` (`all` for every namespace) over the target's, over the client's
    /// default (the context's namespace, or `default`).
    pub fn choose(check: Option<&str>, target: Option<&str>, client: &kube::Client) -> Namespaces {
        match check.or(target) {
            Some("all") => Namespaces::All,
            Some(ns) => Namespaces::One(ns.to_string()),
            None => Namespaces::One(client.default_namespace().to_string()),
        }
    }
}

/// The dynamic API of `r` in `ns` (cluster-scoped resources ignore the namespace).
pub fn api(client: &kube::Client, r: &Resolved, ns: &Namespaces) -> Api<DynamicObject> {
    match (r.namespaced(), ns) {
        (true, Namespaces::One(ns)) => Api::namespaced_with(client.clone(), ns, &r.api),
        _ => Api::all_with(client.clone(), &r.api),
    }
}

/// Which objects: selectors as kubectl takes them, and optionally one object's name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub object_name: Option<String>,
}

impl Selection {
    /// The field selector sent: the check's, plus the object's name when one is named.
    pub fn fields(&self) -> Option<String> {
        let name = self
            .object_name
            .as_ref()
            .map(|n| format!("metadata.name={n}"));
        let parts: Vec<String> = self
            .field_selector
            .iter()
            .cloned()
            .chain(name)
            .filter(|s| !s.trim().is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// "deployments in namespace shop", "nodes", "pods in all namespaces".
pub fn describe_place(r: &Resolved, ns: &Namespaces) -> String {
    match (r.namespaced(), ns) {
        (false, _) => r.plural().to_string(),
        (true, Namespaces::All) => format!("{} in all namespaces", r.plural()),
        (true, Namespaces::One(n)) => format!("{} in namespace {n}", r.plural()),
    }
}

/// The parameters of a list of what `sel` selects, `limit` objects a page.
pub fn list_params(sel: &Selection, limit: u32) -> ListParams {
    let mut params = ListParams::default().limit(limit);
    if let Some(labels) = &sel.label_selector {
        params = params.labels(labels);
    }
    if let Some(fields) = sel.fields() {
        params = params.fields(&fields);
    }
    params
}

/// Every object matching `sel`, each as JSON with its `apiVersion` and `kind` filled in (list
/// items come without them). Pages are followed up to [`MAX_PAGES`].
pub async fn list(
    api: &Api<DynamicObject>,
    r: &Resolved,
    ns: &Namespaces,
    sel: &Selection,
) -> Result<Vec<serde_json::Value>, String> {
    let place = describe_place(r, ns);
    let mut params = list_params(sel, PAGE_SIZE);
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = api
            .list(&params)
            .await
            .map_err(|e| describe_error(&e, LIST, &place))?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for item in page.items {
            out.push(with_type(item, &r.api)?);
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
    Err(format!(
        "cannot list {place}: more than {} objects; narrow the check with a selector",
        PAGE_SIZE as usize * MAX_PAGES
    ))
}

fn with_type(mut obj: DynamicObject, api: &ApiResource) -> Result<serde_json::Value, String> {
    obj.types.get_or_insert_with(|| kube::api::TypeMeta {
        api_version: api.api_version.clone(),
        kind: api.kind.clone(),
    });
    serde_json::to_value(&obj).map_err(|e| format!("cannot read a {}: {e}", api.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_words_and_short_names() {
        assert_eq!(BuiltIn::parse("Deployments"), Some(BuiltIn::Deployment));
        assert_eq!(BuiltIn::parse("sts"), Some(BuiltIn::StatefulSet));
        assert_eq!(BuiltIn::parse("persistentvolumeclaim"), Some(BuiltIn::Pvc));
        assert_eq!(BuiltIn::parse("service"), None);
        assert_eq!(BuiltIn::Pvc.name(), "pvc");
        let ar = BuiltIn::CronJob.api_resource();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            ("batch/v1", "cronjobs")
        );
        assert_eq!(BuiltIn::Node.scope(), Scope::Cluster);
    }

    #[test]
    fn unknown_words_list_the_known_ones() {
        let err = ResourceRef::Named("svc".into()).builtin().unwrap_err();
        assert!(err.starts_with("unknown resource \"svc\""), "{err}");
        assert!(err.contains("deployment, statefulset"), "{err}");
        assert!(err.contains("{api_version, kind}"), "{err}");
    }

    #[test]
    fn dynamic_references_are_checked_by_field() {
        let r = ResourceRef::Dynamic(DynamicRef {
            api_version: "a/b/c".into(),
            kind: " ".into(),
            plural: None,
            namespaced: None,
        });
        let fields: Vec<&str> = r.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["api_version", "kind"]);
    }

    #[test]
    fn the_object_name_joins_the_field_selector() {
        let sel = Selection {
            field_selector: Some("status.phase=Running".into()),
            object_name: Some("web-0".into()),
            ..Default::default()
        };
        assert_eq!(
            sel.fields().as_deref(),
            Some("status.phase=Running,metadata.name=web-0")
        );
        assert_eq!(Selection::default().fields(), None);
    }
}
