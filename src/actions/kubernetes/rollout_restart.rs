//! `rollout_restart`: what `kubectl rollout restart` does — set the pod template's
//! `kubectl.kubernetes.io/restartedAt` annotation to now, so the controller replaces every pod.

use chrono::{SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::KubeContext;
use super::object::{ObjectRef, Write};
use super::workload::Workload;
use super::{check_name, check_namespace};
use crate::config::Issues;

/// The annotation kubectl sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `action: rollout_restart`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRestart {
    /// deployment (default), statefulset or daemonset.
    #[serde(default)]
    pub resource: Workload,
    /// The workload's name.
    pub name: String,
    /// Its namespace (default: the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a rollout restart did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutRestartOutcome {
    pub summary: String,
    pub object: ObjectRef,
    /// The annotation's value (RFC 3339, UTC).
    pub restarted_at: String,
    pub dry_run: bool,
}

impl RolloutRestart {
    pub fn validate(&self, issues: &mut Issues) {
        if self.resource == Workload::ReplicaSet {
            issues.at(
                &["resource"],
                "a replicaset has no rollout: restart the deployment that owns it",
            );
        }
        check_name(issues, "name", &self.name);
        check_namespace(issues, self.namespace.as_deref());
    }

    pub fn describe(&self) -> String {
        format!(
            "rollout restart of {} {}{} (every pod replaced by its controller)",
            self.resource,
            self.name,
            super::in_namespace(self.namespace.as_deref())
        )
    }

    pub async fn run(
        &self,
        ctx: &KubeContext,
        write: Write,
    ) -> Result<RolloutRestartOutcome, String> {
        let object = self
            .resource
            .object(&ctx.namespace_or(self.namespace.as_deref()), &self.name);
        // A missing workload is reported as such, not as a failed patch.
        object.get_existing(&ctx.client).await?;
        let restarted_at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let patch = json!({"spec": {"template": {"metadata": {"annotations":
            {RESTARTED_AT: restarted_at}}}}});
        object
            .merge_patch(&ctx.client, &patch, write.dry_run)
            .await?;
        Ok(RolloutRestartOutcome {
            summary: format!(
                "restarted {} at {restarted_at}{}",
                object.describe(),
                super::dry_run_note(write.dry_run)
            ),
            object,
            restarted_at,
            dry_run: write.dry_run,
        })
    }
}
