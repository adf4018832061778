//! `cordon` / `uncordon`: a node's `spec.unschedulable`, as kubectl sets it. New pods are not
//! scheduled on a cordoned node; pods already there keep running. A node already in the wanted
//! state is left untouched, and its undo is then nothing (uncordoning a node someone else
//! cordoned would be wrong).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::check_name;
use super::context::KubeContext;
use super::object::{ObjectRef, Restore, Write};
use crate::config::Issues;
use crate::probe::kubernetes::{BuiltIn, Resolved};

/// `action: cordon` and `action: uncordon`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeAction {
    /// The node's name.
    pub node: String,
}

/// What a cordon or uncordon did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CordonOutcome {
    pub summary: String,
    pub object: ObjectRef,
    pub was_unschedulable: bool,
    pub unschedulable: bool,
    /// False when the node already was as wanted (nothing was written).
    pub changed: bool,
    pub revert: Restore,
    pub dry_run: bool,
}

fn node_object(name: &str) -> ObjectRef {
    let b = BuiltIn::Node;
    let resolved = Resolved {
        api: b.api_resource(),
        scope: b.scope(),
        builtin: Some(b),
    };
    ObjectRef::new(&resolved, "", name)
}

/// `spec.unschedulable` as a merge patch sets it (false is written as its absence, like kubectl).
fn unschedulable_value(on: bool) -> Value {
    if on { json!(true) } else { Value::Null }
}

impl NodeAction {
    pub fn validate(&self, issues: &mut Issues) {
        check_name(issues, "node", &self.node);
    }

    pub fn describe(&self, cordon: bool) -> String {
        if cordon {
            format!(
                "cordon node {} (no new pods scheduled there; running pods stay)",
                self.node
            )
        } else {
            format!("uncordon node {}", self.node)
        }
    }

    /// Sets `spec.unschedulable` to `cordon`.
    pub async fn run(
        &self,
        ctx: &KubeContext,
        write: Write,
        cordon: bool,
    ) -> Result<CordonOutcome, String> {
        let object = node_object(&self.node);
        let current = object.get_existing(&ctx.client).await?;
        let was = current["spec"]["unschedulable"].as_bool().unwrap_or(false);
        let word = if cordon { "cordoned" } else { "uncordoned" };
        let dry = super::dry_run_note(write.dry_run);
        if was == cordon {
            return Ok(CordonOutcome {
                summary: format!(
                    "node {} was already {word}; nothing changed{dry}",
                    self.node
                ),
                object,
                was_unschedulable: was,
                unschedulable: cordon,
                changed: false,
                revert: Restore::Nothing,
                dry_run: write.dry_run,
            });
        }
        let (change, revert) = write.marked(
            json!({"spec": {"unschedulable": unschedulable_value(cordon)}}),
            Restore::Patch(json!({"spec": {"unschedulable": unschedulable_value(was)}})),
        );
        object
            .merge_patch(&ctx.client, &change, write.dry_run)
            .await?;
        Ok(CordonOutcome {
            summary: format!("{word} node {}{dry}", self.node),
            object,
            was_unschedulable: was,
            unschedulable: cordon,
            changed: true,
            revert,
            dry_run: write.dry_run,
        })
    }

    /// The node, for a revert that only has the fault's fields.
    pub fn object(&self) -> ObjectRef {
        node_object(&self.node)
    }
}
