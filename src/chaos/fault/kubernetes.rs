//! `kubernetes`: a Kubernetes action as a drill fault — `delete_pod`, `scale`, `cordon` or
//! `apply` (see `actions::kubernetes`) on a kubernetes target of the rules.
//!
//! Reverts: after `delete_pod`, wait (up to `ready_timeout`, default 120s) until the deleted
//! pods' controllers are ready again — patrol cannot undelete a pod, the controller replaces it,
//! and the drill is not over until it has; `scale` scales back to the remembered count; `cordon`
//! uncordons (unless the node was already cordoned); `apply` deletes what it created, or patches
//! back what it changed.
//!
//! The journaled state holds the cluster as the target described it (kubeconfig path made
//! absolute, context, namespace — no credential), so a new process reverts it from the journal
//! alone. Scale, cordon and apply also leave their undo on the object itself (an annotation
//! written in the same request as the change), which is how a revert of an inject that never
//! reported its state knows what to undo.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Fault, FaultContext};
use crate::actions::kubernetes::delete_pod::{DeletePodOutcome, live_pods, pod_is_ready};
use crate::actions::kubernetes::object::{restore, restore_from_mark};
use crate::actions::kubernetes::readiness::ReadyAgain;
use crate::actions::kubernetes::{
    Annotate, Apply, DeletePod, KubeAction, KubeContext, NodeAction, ObjectRef, Restore,
    RolloutRestart, Scale, Write,
};
use crate::config::duration::DurationSchema;
use crate::config::{Issues, KubernetesTarget, Target, TargetSpec, struct_fields};
use crate::probe::kubernetes::client::resolve_path;

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The actions a drill can inject.
const FAULT_ACTIONS: &[&str] = &["delete_pod", "scale", "cordon", "apply"];

/// A `kubernetes:` fault: `target`, `action` and the action's own fields.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct KubernetesFault {
    /// A `kind: kubernetes` target of the rules.
    pub target: String,
    /// delete_pod | scale | cordon | apply, with that action's fields.
    #[serde(flatten)]
    pub action: KubeAction,
    /// delete_pod: how long the revert waits for the pods to be ready again (default 120s).
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub ready_timeout: Option<Duration>,
}

/// Every field a kubernetes fault may hold: its own, `action`, and every action's.
static FIELDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut fields = vec!["target", "ready_timeout", "action"];
    for f in [
        struct_fields::<RolloutRestart>(),
        struct_fields::<Scale>(),
        struct_fields::<DeletePod>(),
        struct_fields::<NodeAction>(),
        struct_fields::<Annotate>(),
        struct_fields::<Apply>(),
    ]
    .concat()
    {
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    fields
});

/// `target` and `ready_timeout` are the fault's; everything else is the action's, read by
/// [`KubeAction`] (which refuses fields its action does not have).
impl<'de> Deserialize<'de> for KubernetesFault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KubernetesFault;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping with `target`, `action` and the action's fields")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KubernetesFault, A::Error> {
                #[derive(Deserialize)]
                struct Timeout(#[serde(with = "crate::config::duration::option")] Option<Duration>);
                let (mut target, mut ready_timeout) = (None, None);
                let mut rest = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "target" => target = Some(map.next_value::<String>()?),
                        "ready_timeout" => ready_timeout = map.next_value::<Timeout>()?.0,
                        _ => drop(rest.insert(key, map.next_value::<Value>()?)),
                    }
                }
                let target = target.ok_or_else(|| serde::de::Error::missing_field("target"))?;
                let action = KubeAction::deserialize(Value::Object(rest))
                    .map_err(serde::de::Error::custom)?;
                Ok(KubernetesFault {
                    target,
                    action,
                    ready_timeout,
                })
            }
        }
        d.deserialize_struct("KubernetesFault", &FIELDS, Visitor)
    }
}

/// What a kubernetes fault's revert needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubernetesState {
    /// The target's name (for messages).
    pub target: String,
    /// The cluster as the target described it, its kubeconfig path absolute.
    pub cluster: KubernetesTarget,
    /// What the inject did.
    pub summary: String,
    pub undo: Undo,
}

/// How a kubernetes fault is undone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Undo {
    /// Pods were deleted: wait until their controllers have them ready again.
    ReadyAgain {
        pods: DeletePodOutcome,
        #[serde(with = "crate::config::duration")]
        timeout: Duration,
    },
    /// Put back what the change overwrote, or delete what it created.
    Restore { object: ObjectRef, restore: Restore },
}

/// A drill fault's writes leave their undo on the object.
const WRITE: Write = Write {
    dry_run: false,
    mark_revert: true,
};

impl KubernetesFault {
    fn ready_timeout(&self) -> Duration {
        self.ready_timeout.unwrap_or(DEFAULT_READY_TIMEOUT)
    }

    /// The target of the rules, checked to be a kubernetes one.
    fn rules_target<'a>(&self, ctx: &'a FaultContext) -> Result<&'a Target, String> {
        let target = ctx
            .rules
            .targets
            .get(&self.target)
            .ok_or_else(|| format!("no target `{}` in the rules", self.target))?;
        match &target.spec {
            TargetSpec::Kubernetes(_) => Ok(target),
            other => Err(format!(
                "target `{}` is a {} target, not kubernetes",
                self.target,
                other.kind()
            )),
        }
    }

    async fn context(&self, ctx: &FaultContext) -> Result<KubeContext, String> {
        let target = self.rules_target(ctx)?;
        Ok(KubeContext::for_target(target)
            .await?
            .with_base_dir(&ctx.base_dir))
    }

    /// The target's settings as the journal keeps them: the kubeconfig path made absolute.
    fn cluster(&self, ctx: &FaultContext) -> Result<KubernetesTarget, String> {
        let target = self.rules_target(ctx)?;
        let TargetSpec::Kubernetes(spec) = &target.spec else {
            unreachable!("rules_target checks the kind")
        };
        let mut spec = spec.clone();
        spec.kubeconfig = spec.kubeconfig.map(|p| resolve_path(&p, &target.base_dir));
        Ok(spec)
    }

    fn not_a_fault(&self) -> String {
        format!(
            "action `{}` is not a drill fault; use one of: {}",
            self.action.name(),
            FAULT_ACTIONS.join(", ")
        )
    }

    /// Undoes, from the fault's fields alone, what an inject may have done.
    async fn undo_unconfirmed(&self, kctx: &KubeContext) -> Result<String, String> {
        let object = match &self.action {
            KubeAction::DeletePod(d) => return pods_now(kctx, d).await,
            KubeAction::Scale(s) => s
                .resource
                .object(&kctx.namespace_or(s.namespace.as_deref()), &s.name),
            KubeAction::Cordon(n) => n.object(),
            KubeAction::Apply(a) => a.object(kctx).await?,
            _ => return Err(self.not_a_fault()),
        };
        restore_from_mark(&kctx.client, &object).await
    }
}

/// A delete cannot be undone by patrol (the controller replaces the pods): says how ready they
/// are now.
async fn pods_now(kctx: &KubeContext, d: &DeletePod) -> Result<String, String> {
    let ns = kctx.namespace_or(d.namespace.as_deref());
    let pods = live_pods(kctx, &ns, &d.selector).await?;
    let ready = pods.iter().filter(|p| pod_is_ready(p)).count();
    Ok(format!(
        "deleted pods are replaced by their controllers; {ready} of {} pods matching `{}` in \
         namespace {ns} are Ready now",
        pods.len(),
        d.selector
    ))
}

/// The client of a journaled cluster.
async fn journaled_context(state: &KubernetesState) -> Result<KubeContext, String> {
    let target = Target {
        name: state.target.clone(),
        spec: TargetSpec::Kubernetes(state.cluster.clone()),
        base_dir: PathBuf::from("/"),
        origin: None,
    };
    KubeContext::for_target(&target).await
}

impl Fault for KubernetesFault {
    type State = KubernetesState;

    fn validate(&self, issues: &mut Issues) {
        if self.target.trim().is_empty() {
            issues.at(
                &["target"],
                "target: the name of a kubernetes target is required",
            );
        }
        if !FAULT_ACTIONS.contains(&self.action.name()) {
            issues.at(&["action"], self.not_a_fault());
            return;
        }
        self.action.validate(issues);
        match self.ready_timeout {
            Some(_) if !matches!(self.action, KubeAction::DeletePod(_)) => issues.at_key(
                &["ready_timeout"],
                "`ready_timeout` applies to action delete_pod only (its revert waits for the \
                 pods to be ready again)",
            ),
            Some(t) if t.is_zero() => {
                issues.at(&["ready_timeout"], "ready_timeout must be above 0s")
            }
            _ => {}
        }
    }

    fn describe(&self) -> String {
        let on = format!(
            "{} on kubernetes target `{}`",
            self.action.describe(),
            self.target
        );
        match &self.action {
            KubeAction::DeletePod(_) => format!(
                "{on}; revert: wait up to {} until their controllers have them ready again \
                 (blast radius: those pods and the requests they serve)",
                crate::config::duration::format(self.ready_timeout())
            ),
            KubeAction::Scale(_) => format!(
                "{on}; revert: scale back to the previous count (blast radius: every pod of \
                 that workload)"
            ),
            KubeAction::Cordon(_) => format!(
                "{on}; revert: uncordon, unless it was already cordoned (blast radius: pods \
                 that need scheduling while it lasts)"
            ),
            KubeAction::Apply(_) => format!(
                "{on}; revert: delete what was created, or patch back what was changed (blast \
                 radius: whatever the object does, e.g. a Chaos Mesh experiment)"
            ),
            _ => self.not_a_fault(),
        }
    }

    async fn preflight(&self, ctx: &FaultContext) -> Result<(), String> {
        let kctx = self.context(ctx).await?;
        if !FAULT_ACTIONS.contains(&self.action.name()) {
            return Err(self.not_a_fault());
        }
        // A server-side dry run: the objects exist, and RBAC lets this identity do it.
        let dry = Write {
            dry_run: true,
            ..WRITE
        };
        self.action
            .run_with(&kctx, dry)
            .await
            .map(drop)
            .map_err(|e| format!("{} (server-side dry run): {e}", self.action.name()))
    }

    async fn inject(
        &self,
        ctx: &FaultContext,
        _window: Duration,
    ) -> Result<KubernetesState, String> {
        let kctx = self.context(ctx).await?;
        let (summary, undo) = match &self.action {
            KubeAction::DeletePod(d) => {
                let pods = d.run(&kctx, WRITE).await?;
                let summary = pods.summary.clone();
                let timeout = self.ready_timeout();
                (summary, Undo::ReadyAgain { pods, timeout })
            }
            KubeAction::Scale(s) => {
                let o = s.run(&kctx, WRITE).await?;
                (
                    o.summary,
                    Undo::Restore {
                        object: o.object,
                        restore: o.revert,
                    },
                )
            }
            KubeAction::Cordon(n) => {
                let o = n.run(&kctx, WRITE, true).await?;
                (
                    o.summary,
                    Undo::Restore {
                        object: o.object,
                        restore: o.revert,
                    },
                )
            }
            KubeAction::Apply(a) => {
                let o = a.run(&kctx, WRITE).await?;
                (
                    o.summary,
                    Undo::Restore {
                        object: o.object,
                        restore: o.revert,
                    },
                )
            }
            _ => return Err(self.not_a_fault()),
        };
        Ok(KubernetesState {
            target: self.target.clone(),
            cluster: self.cluster(ctx)?,
            summary,
            undo,
        })
    }

    async fn revert(_ctx: &FaultContext, state: &KubernetesState) -> Result<String, String> {
        let kctx = journaled_context(state).await?;
        match &state.undo {
            Undo::ReadyAgain { pods, timeout } => {
                let again = ReadyAgain {
                    namespace: &pods.namespace,
                    selector: &pods.selector,
                    deleted_uids: &pods.deleted_uids,
                    ready_before: pods.ready_before,
                    controllers: &pods.controllers,
                };
                again.wait(&kctx, *timeout).await
            }
            Undo::Restore {
                object,
                restore: undo,
            } => restore(&kctx.client, object, undo).await,
        }
    }

    async fn revert_unconfirmed(&self, ctx: &FaultContext) -> Result<String, String> {
        let kctx = self.context(ctx).await?;
        self.undo_unconfirmed(&kctx).await
    }
}

#[cfg(test)]
#[path = "kubernetes_tests.rs"]
mod tests;
