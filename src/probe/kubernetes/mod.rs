//! `kind: kubernetes` — reads the API server directly (no pod per check): replica ratios of
//! workloads, pod restarts, crash loops and pending pods, NotReady nodes, Warning events, PVC
//! binding, failed jobs, cronjob success, ages, counts, or a JSONPath on any object of any kind.
//!
//! `client` (target → cached kube client) and `resources` (resource names, the dynamic API,
//! selectors, listing) are shared with actions and drill faults; `values` and the files it
//! dispatches to (`workloads`, `pods`, `objects`) compute the measured values.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Measurement, Probe, ProbeContext, ProbeError};
use crate::config::{CheckCommon, Issues, Target};

pub mod access;
pub mod client;
mod objects;
mod pods;
pub mod resources;
pub mod values;
mod workloads;

pub use client::{client_for, config_for, describe_error};
pub use resources::{BuiltIn, DynamicRef, Namespaces, Resolved, ResourceRef, Selection};
pub use values::ValueSpec;

/// Default `window` of warning_events.
const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesProbe {
    /// deployment, statefulset, daemonset, replicaset, pod, node, pvc, job, cronjob, event, or
    /// `{api_version, kind}` for any other kind.
    pub resource: ResourceRef,
    /// Namespace to look in, or `all` (default: the target's, else the context's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector, as `kubectl -l` takes it (`app=web,tier!=cache`).
    #[serde(default)]
    pub selector: Option<String>,
    /// Field selector, as `kubectl --field-selector` takes it (`status.phase=Running`).
    #[serde(default)]
    pub field_selector: Option<String>,
    /// One object by name (missing = `error`).
    #[serde(default)]
    pub object_name: Option<String>,
    /// What to measure: available_ratio, ready_ratio, unavailable, restarts, restarts_increase,
    /// not_ready, pending, crashloop, warning_events, age_seconds, pvc_bound, job_failed,
    /// cronjob_last_success_age, count, or `jsonpath:<path>` on each object.
    #[schemars(with = "String")]
    pub value: ValueSpec,
    /// How far back warning_events looks (default 1h).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<crate::config::duration::DurationSchema>")]
    pub window: Option<Duration>,
}

impl Probe for KubernetesProbe {
    const TARGET_KINDS: &'static [&'static str] = &["kubernetes"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        let builtin = match self.resource.builtin() {
            Ok(b) => b,
            Err(e) => {
                issues.at(&["resource"], e);
                return;
            }
        };
        for (field, msg) in self.resource.problems() {
            issues.at(&["resource", field], msg);
        }
        if let Err(e) = self.value.applies_to(builtin) {
            issues.at(&["value"], e);
        }
        self.validate_namespace(builtin, issues);
        for (field, text) in [
            ("selector", &self.selector),
            ("field_selector", &self.field_selector),
            ("object_name", &self.object_name),
        ] {
            if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                issues.at(&[field], format!("{field} is empty"));
            }
        }
        match self.window {
            Some(_) if self.value != ValueSpec::WarningEvents => {
                issues.at_key(&["window"], "`window` applies to value warning_events only")
            }
            Some(w) if w.is_zero() => issues.at(&["window"], "window must be longer than zero"),
            _ => {}
        }
    }

    /// restarts_increase compares with the counts the previous run saw.
    fn remembers(&self) -> bool {
        self.value == ValueSpec::RestartsIncrease
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let target = ctx.target().ok_or_else(|| {
            ProbeError::new("a kubernetes check needs a `target` of kind kubernetes")
        })?;
        let objects = self.fetch(target).await.map_err(ProbeError)?;
        let inputs = values::Inputs {
            resource: self.resource.builtin().map_err(ProbeError)?,
            now: Timestamp::now(),
            window: self.window.unwrap_or(DEFAULT_WINDOW),
            memory: ctx.memory,
        };
        let computed = values::compute(&self.value, &objects, &inputs).map_err(ProbeError)?;
        Ok(Measurement {
            samples: computed.samples,
            unit: self.value.unit().to_string(),
            failures: computed.failures,
            ..Default::default()
        })
    }
}

impl KubernetesProbe {
    fn validate_namespace(&self, builtin: Option<BuiltIn>, issues: &mut Issues) {
        let Some(ns) = &self.namespace else {
            return;
        };
        if builtin.is_some_and(|b| b.scope() == kube::discovery::Scope::Cluster) {
            issues.at_key(
                &["namespace"],
                format!(
                    "{}s are not namespaced; remove `namespace`",
                    self.resource.describe()
                ),
            );
        } else if ns != "all"
            && let Err(e) = crate::config::check_namespace_name(ns)
        {
            issues.at(
                &["namespace"],
                format!("{e} (or `all` for every namespace)"),
            );
        }
    }

    /// The objects the check is about, each with its series key.
    pub async fn fetch(&self, target: &Target) -> Result<Vec<values::Obj>, String> {
        let client = client_for(target).await?;
        let resolved = resources::resolve(&client, &self.resource).await?;
        let ns = self.namespaces(target, &client)?;
        let api = resources::api(&client, &resolved, &ns);
        let listed = resources::list(&api, &resolved, &ns, &self.selection()).await?;
        if let Some(name) = &self.object_name
            && listed.is_empty()
        {
            return Err(format!(
                "{} {name} not found ({})",
                resolved.api.kind,
                resources::describe_place(&resolved, &ns)
            ));
        }
        let across = resolved.namespaced() && ns == Namespaces::All;
        Ok(listed
            .into_iter()
            .map(|json| values::Obj {
                series: series_key(&json, across),
                json,
            })
            .collect())
    }

    /// Which objects the check lists: its selectors as sent, and its `object_name`.
    pub fn selection(&self) -> Selection {
        Selection {
            label_selector: self.selector.clone(),
            field_selector: self.field_selector_sent(),
            object_name: self.object_name.clone(),
        }
    }

    /// Where the check looks, on `client`: its namespace, the target's, or the context's.
    pub fn namespaces(&self, target: &Target, client: &kube::Client) -> Result<Namespaces, String> {
        let spec = client::kubernetes_target(Some(target))?;
        Ok(Namespaces::choose(
            self.namespace.as_deref(),
            spec.namespace.as_deref(),
            client,
        ))
    }

    /// The check's field selector; for warning_events narrowed to Warning events on the server.
    fn field_selector_sent(&self) -> Option<String> {
        let own = self.field_selector.clone().filter(|s| !s.trim().is_empty());
        if self.value != ValueSpec::WarningEvents {
            return own;
        }
        Some(match own {
            Some(s) => format!("{s},type=Warning"),
            None => "type=Warning".into(),
        })
    }
}

/// An object's series: its name, or `namespace/name` when the check spans namespaces.
fn series_key(obj: &serde_json::Value, across_namespaces: bool) -> String {
    let meta = &obj["metadata"];
    let name = meta["name"].as_str().unwrap_or_default();
    match meta["namespace"].as_str() {
        Some(ns) if across_namespaces => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// `validate --online`: the target's API server answers `/version` with these credentials.
pub async fn ping(target: &Target) -> Result<(), String> {
    let client = client_for(target).await?;
    client
        .apiserver_version()
        .await
        .map(drop)
        .map_err(|e| describe_error(&e, "read", "the API server's version"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn series_are_names_or_namespaced_names() {
        let obj = json!({"metadata": {"name": "web", "namespace": "shop"}});
        assert_eq!(series_key(&obj, false), "web");
        assert_eq!(series_key(&obj, true), "shop/web");
        assert_eq!(series_key(&json!({"metadata": {"name": "n1"}}), true), "n1");
    }
}
