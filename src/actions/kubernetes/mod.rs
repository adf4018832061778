//! Kubernetes actions, one file each: `rollout_restart`, `scale`, `delete_pod`, `cordon` /
//! `uncordon`, `annotate`, `apply`. They run with a target's cached client ([`KubeContext`]),
//! every one supports a server-side dry run (`dryRun=All`: validated and authorized by the API
//! server, nothing stored), and each outcome is JSON that says what was done and what undoing it
//! needs (`revert`). Drill faults build on them (`chaos::fault::kubernetes`).
//!
//! `object` addresses objects without discovery and undoes changes; `readiness` waits for pods
//! to be ready again after a delete.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Issues, Target};

pub mod annotate;
pub mod apply;
pub mod context;
pub mod cordon;
pub mod delete_pod;
pub mod mode;
pub mod object;
pub mod readiness;
pub mod rollout_restart;
pub mod scale;
pub mod workload;

pub use annotate::Annotate;
pub use apply::Apply;
pub use context::KubeContext;
pub use cordon::NodeAction;
pub use delete_pod::DeletePod;
pub use mode::PodMode;
pub use object::{ObjectRef, REVERT_ANNOTATION, Restore, Write};
pub use rollout_restart::RolloutRestart;
pub use scale::Scale;
pub use workload::Workload;

/// A Kubernetes action, chosen by its `action:` field.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum KubeAction {
    /// Replace every pod of a workload (the pod-template annotation, like kubectl).
    RolloutRestart(RolloutRestart),
    /// Set a workload's replicas; the outcome remembers the previous count.
    Scale(Scale),
    /// Delete pods chosen by selector and mode, at random with a reported seed.
    DeletePod(DeletePod),
    /// Mark a node unschedulable.
    Cordon(NodeAction),
    /// Mark a node schedulable again.
    Uncordon(NodeAction),
    /// Set or remove annotations of one object.
    Annotate(Annotate),
    /// Create an object from a manifest, or patch it when it exists.
    Apply(Apply),
}

/// What an action did, as JSON: always a `summary` line; the rest depends on the action (the
/// previous replica count, the deleted pods and the seed, what to delete on revert…).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome(pub serde_json::Value);

impl ActionOutcome {
    fn of<T: Serialize>(outcome: &T) -> Result<ActionOutcome, String> {
        serde_json::to_value(outcome)
            .map(ActionOutcome)
            .map_err(|e| format!("encoding the outcome: {e}"))
    }

    /// The one-line summary.
    pub fn summary(&self) -> &str {
        self.0["summary"].as_str().unwrap_or_default()
    }
}

impl KubeAction {
    /// The `action:` word.
    pub fn name(&self) -> &'static str {
        match self {
            KubeAction::RolloutRestart(_) => "rollout_restart",
            KubeAction::Scale(_) => "scale",
            KubeAction::DeletePod(_) => "delete_pod",
            KubeAction::Cordon(_) => "cordon",
            KubeAction::Uncordon(_) => "uncordon",
            KubeAction::Annotate(_) => "annotate",
            KubeAction::Apply(_) => "apply",
        }
    }

    /// Problems beyond types, by path relative to the action's mapping.
    pub fn validate(&self, issues: &mut Issues) {
        match self {
            KubeAction::RolloutRestart(a) => a.validate(issues),
            KubeAction::Scale(a) => a.validate(issues),
            KubeAction::DeletePod(a) => a.validate(issues),
            KubeAction::Cordon(a) | KubeAction::Uncordon(a) => a.validate(issues),
            KubeAction::Annotate(a) => a.validate(issues),
            KubeAction::Apply(a) => a.validate(issues),
        }
    }

    /// One line: what the action does.
    pub fn describe(&self) -> String {
        match self {
            KubeAction::RolloutRestart(a) => a.describe(),
            KubeAction::Scale(a) => a.describe(),
            KubeAction::DeletePod(a) => a.describe(),
            KubeAction::Cordon(a) => a.describe(true),
            KubeAction::Uncordon(a) => a.describe(false),
            KubeAction::Annotate(a) => a.describe(),
            KubeAction::Apply(a) => a.describe(),
        }
    }

    /// Runs the action; with `dry_run` every write is a server-side dry run.
    pub async fn run(&self, ctx: &KubeContext, dry_run: bool) -> Result<ActionOutcome, String> {
        self.run_with(ctx, Write::dry_run(dry_run)).await
    }

    /// Runs the action against a `kind: kubernetes` target.
    pub async fn run_on(&self, target: &Target, dry_run: bool) -> Result<ActionOutcome, String> {
        self.run(&KubeContext::for_target(target).await?, dry_run)
            .await
    }

    /// Runs the action with `write` (dry run, revert mark).
    pub async fn run_with(&self, ctx: &KubeContext, write: Write) -> Result<ActionOutcome, String> {
        match self {
            KubeAction::RolloutRestart(a) => ActionOutcome::of(&a.run(ctx, write).await?),
            KubeAction::Scale(a) => ActionOutcome::of(&a.run(ctx, write).await?),
            KubeAction::DeletePod(a) => ActionOutcome::of(&a.run(ctx, write).await?),
            KubeAction::Cordon(a) => ActionOutcome::of(&a.run(ctx, write, true).await?),
            KubeAction::Uncordon(a) => ActionOutcome::of(&a.run(ctx, write, false).await?),
            KubeAction::Annotate(a) => ActionOutcome::of(&a.run(ctx, write).await?),
            KubeAction::Apply(a) => ActionOutcome::of(&a.run(ctx, write).await?),
        }
    }
}

/// Kubernetes names and label keys begin and end with a letter or digit.
fn alphanumeric_ends(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// An object name: a DNS subdomain (lowercase letters, digits, `-` and `.`).
fn check_name(issues: &mut Issues, field: &str, name: &str) {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && alphanumeric_ends(name);
    if !valid {
        issues.at(
            &[field],
            format!(
                "{field} {name:?} is not a valid object name: lowercase letters, digits, '-' and \
                 '.', starting and ending with a letter or digit"
            ),
        );
    }
}

fn check_namespace(issues: &mut Issues, namespace: Option<&str>) {
    if let Some(ns) = namespace
        && let Err(e) = crate::config::check_namespace_name(ns)
    {
        issues.at(&["namespace"], e);
    }
}

/// " in namespace shop", or "" (the target's namespace).
fn in_namespace(namespace: Option<&str>) -> String {
    namespace
        .map(|ns| format!(" in namespace {ns}"))
        .unwrap_or_default()
}

fn dry_run_note(dry_run: bool) -> &'static str {
    if dry_run {
        " (server-side dry run: nothing changed)"
    } else {
        ""
    }
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
