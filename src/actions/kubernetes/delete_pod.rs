//! `delete_pod`: deletes some of the pods a label selector matches — `mode: one | all | fixed:N
//! | percent:P`, chosen at random with a seed that is always reported (given, or drawn) so the
//! same choice can be made again — and reports the deleted pods and their owning controllers.
//!
//! The outcome also records how ready things were before (Ready pods, each controller's ready
//! replicas), which is what "ready again" means afterwards (see `readiness`).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check_namespace;
use super::context::KubeContext;
use super::mode::{PodMode, choose};
use super::object::{ObjectRef, Write};
use super::workload::{Workload, readiness};
use crate::config::Issues;
use crate::config::duration::DurationSchema;
use crate::probe::kubernetes::{
    BuiltIn, Namespaces, Resolved, Selection, describe_error, resources,
};

/// Drawn seeds stay below 2^53, so they survive any JSON reader exactly.
const SEED_LIMIT: u64 = 1 << 53;

/// `action: delete_pod`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletePod {
    /// Label selector of the pods, as `kubectl -l` takes it (`app=web`). Required: without one
    /// every pod of the namespace would be a candidate.
    pub selector: String,
    /// Namespace of the pods (default: the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// How many: one (default), all, fixed:N or percent:P (rounded up).
    #[serde(default)]
    pub mode: PodMode,
    /// Seed of the random choice; default: a random seed, reported so the choice can be
    /// repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Time the pods get to shut down (default: their own terminationGracePeriodSeconds).
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub grace_period: Option<Duration>,
}

/// A controller of deleted pods, and how ready it was before.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControllerBefore {
    pub object: ObjectRef,
    pub ready: i64,
    pub desired: i64,
}

/// What a delete_pod did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeletePodOutcome {
    pub summary: String,
    pub namespace: String,
    pub selector: String,
    pub mode: PodMode,
    /// The seed the choice was made with.
    pub seed: u64,
    /// Pods that matched (and were not already terminating).
    pub matched: Vec<String>,
    /// Pods deleted, by name.
    pub deleted: Vec<String>,
    /// Their uids: a StatefulSet recreates a pod under the same name.
    pub deleted_uids: Vec<String>,
    /// Ready pods among `matched`, before.
    pub ready_before: usize,
    /// The workloads owning the deleted pods (a Deployment rather than its ReplicaSet).
    pub controllers: Vec<ControllerBefore>,
    pub dry_run: bool,
}

impl DeletePod {
    pub fn validate(&self, issues: &mut Issues) {
        if self.selector.trim().is_empty() {
            issues.at(
                &["selector"],
                "selector: a label selector is required (`app=web`); without one every pod of \
                 the namespace would be a candidate",
            );
        }
        check_namespace(issues, self.namespace.as_deref());
    }

    pub fn describe(&self) -> String {
        let seed = match self.seed {
            Some(s) => format!("seed {s}"),
            None => "random seed, reported".into(),
        };
        format!(
            "delete {} matching `{}`{} (chosen at random, {seed})",
            self.mode.describe(),
            self.selector,
            super::in_namespace(self.namespace.as_deref())
        )
    }

    pub async fn run(&self, ctx: &KubeContext, write: Write) -> Result<DeletePodOutcome, String> {
        let namespace = ctx.namespace_or(self.namespace.as_deref());
        let pods = live_pods(ctx, &namespace, &self.selector).await?;
        if pods.is_empty() {
            return Err(format!(
                "no pod matches `{}` in namespace {namespace}",
                self.selector
            ));
        }
        let matched: Vec<String> = pods.iter().map(|p| name_of(p).to_string()).collect();
        let seed = self.seed.unwrap_or_else(|| fastrand::u64(..SEED_LIMIT));
        let chosen = choose(&matched, self.mode.count(matched.len()), seed);
        let chosen_pods: Vec<&Value> = pods
            .iter()
            .filter(|p| chosen.iter().any(|c| c == name_of(p)))
            .collect();
        let controllers = controllers_of(ctx, &namespace, &chosen_pods).await;
        let ready_before = pods.iter().filter(|p| pod_is_ready(p)).count();
        let (deleted, deleted_uids) = self.delete(ctx, &namespace, &chosen_pods, write).await?;
        let summary = format!(
            "deleted {} of {} pods matching `{}` in namespace {namespace}: {} (seed {seed}){}",
            deleted.len(),
            matched.len(),
            self.selector,
            deleted.join(", "),
            super::dry_run_note(write.dry_run)
        );
        Ok(DeletePodOutcome {
            summary,
            namespace,
            selector: self.selector.clone(),
            mode: self.mode,
            seed,
            matched,
            deleted,
            deleted_uids,
            ready_before,
            controllers,
            dry_run: write.dry_run,
        })
    }

    /// Deletes `pods`, each only if it is still the pod that was chosen (uid precondition).
    /// Returns the names and uids deleted; a pod gone meanwhile is skipped.
    async fn delete(
        &self,
        ctx: &KubeContext,
        namespace: &str,
        pods: &[&Value],
        write: Write,
    ) -> Result<(Vec<String>, Vec<String>), String> {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
        let mut names = Vec::new();
        let mut uids = Vec::new();
        for pod in pods {
            let name = name_of(pod);
            let uid = pod["metadata"]["uid"].as_str().map(String::from);
            let params = DeleteParams {
                dry_run: write.dry_run,
                grace_period_seconds: self.grace_period.map(|g| g.as_secs() as u32),
                preconditions: Some(Preconditions {
                    uid: uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(name, &params).await {
                Ok(_) => {
                    names.push(name.to_string());
                    uids.extend(uid);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(describe_error(
                        &e,
                        "delete",
                        &format!("pod {namespace}/{name}"),
                    ));
                }
            }
        }
        Ok((names, uids))
    }
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn pod_is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn is_terminating(obj: &Value) -> bool {
    !obj["metadata"]["deletionTimestamp"].is_null()
}

fn pod_resource() -> Resolved {
    let b = BuiltIn::Pod;
    Resolved {
        api: b.api_resource(),
        scope: b.scope(),
        builtin: Some(b),
    }
}

/// Pods matching `selector` in `namespace` that are not already being deleted.
pub async fn live_pods(
    ctx: &KubeContext,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Value>, String> {
    let r = pod_resource();
    let ns = Namespaces::One(namespace.to_string());
    let api = resources::api(&ctx.client, &r, &ns);
    let selection = Selection {
        label_selector: Some(selector.to_string()),
        ..Default::default()
    };
    let pods = resources::list(&api, &r, &ns, &selection).await?;
    Ok(pods.into_iter().filter(|p| !is_terminating(p)).collect())
}

/// The controller owner reference of `obj`: (kind, name).
fn controller_ref(obj: &Value) -> Option<(String, String)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| Some((r["kind"].as_str()?.into(), r["name"].as_str()?.into())))
}

/// The workloads owning `pods` — a ReplicaSet's Deployment when it has one — with their
/// readiness now. A controller that cannot be read is left out: readiness then rests on the
/// pods alone.
async fn controllers_of(
    ctx: &KubeContext,
    namespace: &str,
    pods: &[&Value],
) -> Vec<ControllerBefore> {
    let mut out: Vec<ControllerBefore> = Vec::new();
    for pod in pods {
        let Some((kind, name)) = controller_ref(pod) else {
            continue;
        };
        let Some(mut workload) = Workload::of_kind(&kind) else {
            continue;
        };
        let mut object = workload.object(namespace, &name);
        let Ok(mut current) = object.get_existing(&ctx.client).await else {
            continue;
        };
        if workload == Workload::ReplicaSet
            && let Some((owner_kind, owner)) = controller_ref(&current)
            && owner_kind == "Deployment"
        {
            let deployment = Workload::Deployment.object(namespace, &owner);
            if let Ok(d) = deployment.get_existing(&ctx.client).await {
                (workload, object, current) = (Workload::Deployment, deployment, d);
            }
        }
        if out.iter().any(|c| c.object == object) {
            continue;
        }
        let (ready, desired) = readiness(workload, &current);
        out.push(ControllerBefore {
            object,
            ready,
            desired,
        });
    }
    out
}
