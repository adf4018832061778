//! The workloads actions name (`resource: deployment | statefulset | daemonset | replicaset`)
//! and how ready one is.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::object::ObjectRef;
use crate::probe::kubernetes::{BuiltIn, Resolved};

/// A workload kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
}

impl Workload {
    pub fn builtin(self) -> BuiltIn {
        match self {
            Workload::Deployment => BuiltIn::Deployment,
            Workload::StatefulSet => BuiltIn::StatefulSet,
            Workload::DaemonSet => BuiltIn::DaemonSet,
            Workload::ReplicaSet => BuiltIn::ReplicaSet,
        }
    }

    /// The workload of an object's `kind` (`Deployment`), if it is one.
    pub fn of_kind(kind: &str) -> Option<Workload> {
        match kind {
            "Deployment" => Some(Workload::Deployment),
            "StatefulSet" => Some(Workload::StatefulSet),
            "DaemonSet" => Some(Workload::DaemonSet),
            "ReplicaSet" => Some(Workload::ReplicaSet),
            _ => None,
        }
    }

    /// The object `name` of this kind in `namespace`.
    pub fn object(self, namespace: &str, name: &str) -> ObjectRef {
        let b = self.builtin();
        let resolved = Resolved {
            api: b.api_resource(),
            scope: b.scope(),
            builtin: Some(b),
        };
        ObjectRef::new(&resolved, namespace, name)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.builtin().name())
    }
}

/// Ready and desired pods of a workload object, from its spec and status.
pub fn readiness(kind: Workload, obj: &Value) -> (i64, i64) {
    let status = &obj["status"];
    let num = |v: &Value| v.as_i64().unwrap_or(0);
    match kind {
        Workload::DaemonSet => (
            num(&status["numberReady"]),
            num(&status["desiredNumberScheduled"]),
        ),
        _ => (
            num(&status["readyReplicas"]),
            // Kubernetes defaults an absent spec.replicas to 1.
            obj["spec"]["replicas"].as_i64().unwrap_or(1),
        ),
    }
}

/// Whether the controller has seen the object's latest spec (a status from before a change says
/// nothing about it).
pub fn status_is_current(obj: &Value) -> bool {
    match obj["status"]["observedGeneration"].as_i64() {
        Some(observed) => observed >= obj["metadata"]["generation"].as_i64().unwrap_or(0),
        // Kinds (and test servers) that do not report it: take the status as it is.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readiness_reads_replicas_or_daemon_counts() {
        let d = json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}});
        assert_eq!(readiness(Workload::Deployment, &d), (2, 3));
        let ds = json!({"status": {"numberReady": 4, "desiredNumberScheduled": 5}});
        assert_eq!(readiness(Workload::DaemonSet, &ds), (4, 5));
        assert_eq!(readiness(Workload::ReplicaSet, &json!({})), (0, 1));
        let o = Workload::StatefulSet.object("shop", "db");
        assert_eq!(
            (o.plural.as_str(), o.namespace.as_deref()),
            ("statefulsets", Some("shop"))
        );
        assert!(!status_is_current(
            &json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2}})
        ));
    }
}
