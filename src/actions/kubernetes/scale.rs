//! `scale`: sets a workload's `spec.replicas` and remembers the count it had, so that a revert
//! can scale it back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::KubeContext;
use super::object::{ObjectRef, Restore, Write};
use super::workload::Workload;
use super::{check_name, check_namespace};
use crate::config::Issues;

/// `action: scale`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// deployment (default), statefulset or replicaset.
    #[serde(default)]
    pub resource: Workload,
    /// The workload's name.
    pub name: String,
    /// Its namespace (default: the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The replica count to set.
    pub replicas: u32,
}

/// What a scale did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutcome {
    pub summary: String,
    pub object: ObjectRef,
    /// The replica count before: what scaling back sets.
    pub previous: i64,
    pub replicas: u32,
    /// The undo (a merge patch setting `previous` back).
    pub revert: Restore,
    pub dry_run: bool,
}

/// "1 replica", "3 replicas".
fn replicas(n: i64) -> String {
    if n == 1 {
        "1 replica".into()
    } else {
        format!("{n} replicas")
    }
}

impl Scale {
    pub fn validate(&self, issues: &mut Issues) {
        if self.resource == Workload::DaemonSet {
            issues.at(
                &["resource"],
                "a daemonset runs one pod per node and cannot be scaled",
            );
        }
        check_name(issues, "name", &self.name);
        check_namespace(issues, self.namespace.as_deref());
    }

    pub fn describe(&self) -> String {
        format!(
            "scale {} {}{} to {}",
            self.resource,
            self.name,
            super::in_namespace(self.namespace.as_deref()),
            replicas(i64::from(self.replicas))
        )
    }

    pub async fn run(&self, ctx: &KubeContext, write: Write) -> Result<ScaleOutcome, String> {
        let object = self
            .resource
            .object(&ctx.namespace_or(self.namespace.as_deref()), &self.name);
        let current = object.get_existing(&ctx.client).await?;
        // Kubernetes defaults an absent spec.replicas to 1.
        let previous = current["spec"]["replicas"].as_i64().unwrap_or(1);
        let (change, revert) = write.marked(
            json!({"spec": {"replicas": self.replicas}}),
            Restore::Patch(json!({"spec": {"replicas": previous}})),
        );
        object
            .merge_patch(&ctx.client, &change, write.dry_run)
            .await?;
        Ok(ScaleOutcome {
            summary: format!(
                "scaled {} from {previous} to {}{}",
                object.describe(),
                replicas(i64::from(self.replicas)),
                super::dry_run_note(write.dry_run)
            ),
            object,
            previous,
            replicas: self.replicas,
            revert,
            dry_run: write.dry_run,
        })
    }
}
