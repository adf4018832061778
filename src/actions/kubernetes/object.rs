//! What the actions share: one object addressed without discovery ([`ObjectRef`], enough to
//! patch or delete it later from a journal), how a change is written ([`Write`]: dry run, and
//! whether the object carries its own undo), and how a change is undone ([`Restore`]).
//!
//! **The revert mark.** A drill fault writes, in the same request as its change, an annotation
//! [`REVERT_ANNOTATION`] holding the [`Restore`] that undoes it. If patrol dies between the change
//! and the journal entry recording it, a recovery reads the undo from the object itself
//! ([`restore_from_mark`]). Undoing removes the annotation. Playbook actions write no mark.

use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::ApiResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::probe::kubernetes::{Resolved, describe_error};

/// The annotation in which a drill fault leaves the undo of its change on the object.
pub const REVERT_ANNOTATION: &str = "patrol/drill-revert";
/// The field manager patrol's writes are recorded under.
pub const FIELD_MANAGER: &str = "patrol";

/// One object of any kind, addressed without discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// The resource's plural in URLs (`deployments`, `networkchaos`).
    pub plural: String,
    pub namespaced: bool,
    /// None for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// `name` of the resolved resource, in `namespace` when the resource is namespaced.
    pub fn new(r: &Resolved, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: r.api.api_version.clone(),
            kind: r.api.kind.clone(),
            plural: r.api.plural.clone(),
            namespaced: r.namespaced(),
            namespace: r.namespaced().then(|| namespace.to_string()),
            name: name.to_string(),
        }
    }

    fn api_resource(&self) -> ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &self.kind);
        ApiResource::from_gvk_with_plural(&gvk, &self.plural)
    }

    /// The dynamic API the object lives in.
    pub fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        let ar = self.api_resource();
        match &self.namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        }
    }

    /// "Deployment shop/web", "Node node-a".
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The object now, or None when it does not exist.
    pub async fn get(&self, client: &kube::Client) -> Result<Option<Value>, String> {
        let found = self
            .api(client)
            .get_opt(&self.name)
            .await
            .map_err(|e| describe_error(&e, "get", &self.describe()))?;
        found
            .map(|o| serde_json::to_value(o).map_err(|e| format!("{}: {e}", self.describe())))
            .transpose()
    }

    /// The object now; an error naming it when it does not exist.
    pub async fn get_existing(&self, client: &kube::Client) -> Result<Value, String> {
        self.get(client)
            .await?
            .ok_or_else(|| format!("{} not found", self.describe()))
    }

    /// Applies a JSON merge patch; returns the object as the server answered.
    pub async fn merge_patch(
        &self,
        client: &kube::Client,
        patch: &Value,
        dry_run: bool,
    ) -> Result<Value, String> {
        let answered = self
            .api(client)
            .patch(&self.name, &patch_params(dry_run), &Patch::Merge(patch))
            .await
            .map_err(|e| describe_error(&e, "patch", &self.describe()))?;
        serde_json::to_value(answered).map_err(|e| format!("{}: {e}", self.describe()))
    }

    /// Deletes the object; Ok(false) when it was already gone.
    pub async fn delete(&self, client: &kube::Client, dry_run: bool) -> Result<bool, String> {
        let params = DeleteParams {
            dry_run,
            ..Default::default()
        };
        match self.api(client).delete(&self.name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(describe_error(&e, "delete", &self.describe())),
        }
    }
}

pub fn patch_params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// How a change is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Write {
    /// Server-side dry run (`dryRun=All`): validated and authorized, nothing stored.
    pub dry_run: bool,
    /// Leave the undo on the object ([`REVERT_ANNOTATION`]); drill faults do.
    pub mark_revert: bool,
}

impl Write {
    pub fn dry_run(dry_run: bool) -> Write {
        Write {
            dry_run,
            mark_revert: false,
        }
    }

    /// `change` and `restore` as written: with the revert mark, the change also sets the
    /// annotation to the undo, and the undo also removes it.
    pub fn marked(&self, change: Value, restore: Restore) -> (Value, Restore) {
        if !self.mark_revert {
            return (change, restore);
        }
        let restore = match restore {
            Restore::Patch(mut p) => {
                combine_patches(
                    &mut p,
                    &json!({"metadata": {"annotations": {REVERT_ANNOTATION: null}}}),
                );
                Restore::Patch(p)
            }
            other => other,
        };
        let mut change = change;
        let mark = serde_json::to_string(&restore).unwrap_or_default();
        combine_patches(
            &mut change,
            &json!({"metadata": {"annotations": {REVERT_ANNOTATION: mark}}}),
        );
        (change, restore)
    }
}

/// How to undo a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Restore {
    /// A JSON merge patch that puts back what the change overwrote.
    Patch(Value),
    /// The change created the object: delete it.
    Delete,
    /// The change changed nothing (the node was already cordoned).
    Nothing,
}

/// Undoes a change of `object`; idempotent (an object already gone needs no undo).
pub async fn restore(
    client: &kube::Client,
    object: &ObjectRef,
    restore: &Restore,
) -> Result<String, String> {
    let what = object.describe();
    match restore {
        Restore::Nothing => Ok(format!("nothing to undo on {what}")),
        Restore::Delete => Ok(match object.delete(client, false).await? {
            true => format!("deleted {what}"),
            false => format!("{what} is already gone"),
        }),
        Restore::Patch(patch) => match object.get(client).await? {
            None => Ok(format!("{what} is gone; nothing to restore")),
            Some(_) => {
                object.merge_patch(client, patch, false).await?;
                Ok(format!("restored {what} with {patch}"))
            }
        },
    }
}

/// Undoes whatever change left its mark on `object` (see the module docs); nothing when there is
/// no mark.
pub async fn restore_from_mark(
    client: &kube::Client,
    object: &ObjectRef,
) -> Result<String, String> {
    let Some(current) = object.get(client).await? else {
        return Ok(format!(
            "{} does not exist; nothing to undo",
            object.describe()
        ));
    };
    let Some(mark) = current["metadata"]["annotations"][REVERT_ANNOTATION].as_str() else {
        return Ok(format!(
            "{} carries no {REVERT_ANNOTATION} annotation; nothing to undo",
            object.describe()
        ));
    };
    let undo: Restore = serde_json::from_str(mark).map_err(|e| {
        format!(
            "{}: unreadable {REVERT_ANNOTATION} annotation ({e}); undo it by hand",
            object.describe()
        )
    })?;
    restore(client, object, &undo).await
}

/// Adds merge patch `more` to merge patch `patch`: maps combine key by key, anything else
/// (including a `null`, which removes) replaces.
pub fn combine_patches(patch: &mut Value, more: &Value) {
    match (patch, more) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                match into.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        combine_patches(existing, v)
                    }
                    _ => {
                        into.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (patch, more) => *patch = more.clone(),
    }
}

/// The merge patch that undoes merge patch `change` on `previous` (the object before it): every
/// value `change` set goes back to what `previous` held there, or is removed. Only what the
/// change touched is restored: fields changed meanwhile by others are left alone.
pub fn inverse_merge_patch(change: &Value, previous: &Value) -> Value {
    let Value::Object(fields) = change else {
        return previous.clone();
    };
    let mut out = serde_json::Map::new();
    for (key, set) in fields {
        let before = previous.get(key);
        let undo = match (set, before) {
            (Value::Object(_), Some(b @ Value::Object(_))) => inverse_merge_patch(set, b),
            (Value::Object(_), None) => inverse_merge_patch(set, &json!({})),
            (_, Some(b)) => b.clone(),
            (_, None) => Value::Null,
        };
        out.insert(key.clone(), undo);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_patch_restores_only_what_the_change_set() {
        let previous = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let change = json!({"metadata": {"labels": {"a": "9", "c": "3"}, "annotations": {"k": "v"}},
                            "spec": {"x": [3], "y": true}});
        let undo = inverse_merge_patch(&change, &previous);
        assert_eq!(
            undo,
            json!({"metadata": {"labels": {"a": "1", "c": null}, "annotations": {"k": null}},
                   "spec": {"x": [1, 2], "y": null}})
        );
        let mut object = previous.clone();
        apply_merge_patch(&mut object, &change);
        apply_merge_patch(&mut object, &undo);
        // Merge patches leave an emptied map in place; what matters is every value is back.
        assert_eq!(object["metadata"]["labels"], previous["metadata"]["labels"]);
        assert_eq!(object["spec"], previous["spec"]);
    }

    /// RFC 7386 as the API server applies it: `null` removes.
    fn apply_merge_patch(target: &mut Value, patch: &Value) {
        let Value::Object(fields) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let map = target.as_object_mut().unwrap();
        for (k, v) in fields {
            if v.is_null() {
                map.remove(k);
            } else {
                apply_merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }

    #[test]
    fn a_marked_write_carries_its_undo_and_the_undo_removes_the_mark() {
        let write = Write {
            dry_run: false,
            mark_revert: true,
        };
        let (change, undo) = write.marked(
            json!({"spec": {"replicas": 0}}),
            Restore::Patch(json!({"spec": {"replicas": 3}})),
        );
        let mark = change["metadata"]["annotations"][REVERT_ANNOTATION]
            .as_str()
            .unwrap();
        let from_mark: Restore = serde_json::from_str(mark).unwrap();
        assert_eq!(from_mark, undo);
        let Restore::Patch(p) = undo else { panic!() };
        assert_eq!(p["spec"]["replicas"], 3);
        assert!(p["metadata"]["annotations"][REVERT_ANNOTATION].is_null());
        assert!(
            p["metadata"]["annotations"]
                .as_object()
                .unwrap()
                .contains_key(REVERT_ANNOTATION)
        );
        let plain = Write::dry_run(true).marked(json!({"a": 1}), Restore::Delete);
        assert_eq!(plain, (json!({"a": 1}), Restore::Delete));
    }
}
