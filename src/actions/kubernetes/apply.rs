//! `apply`: creates an object from a manifest, or patches it when it exists — for example a Chaos
//! Mesh `NetworkChaos` or `PodChaos` when Chaos Mesh is installed. The manifest is inline (a
//! mapping, or YAML/JSON text) or a file; its kind is found through discovery, so any kind the
//! API server serves works (dynamic API).
//!
//! An existing object is changed with a JSON merge patch of the manifest (lists are replaced
//! whole), and the outcome carries the merge patch that puts back exactly what it overwrote; a
//! created object's undo is deleting it.

use std::path::PathBuf;

use kube::api::{DynamicObject, PostParams};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::KubeContext;
use super::object::{FIELD_MANAGER, ObjectRef, REVERT_ANNOTATION, Restore, Write};
use super::object::{combine_patches, inverse_merge_patch};
use super::{check_namespace, dry_run_note};
use crate::config::Issues;
use crate::probe::kubernetes::{DynamicRef, ResourceRef, describe_error, resources};

/// Fields the server owns: never sent in a patch.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
];

/// `action: apply`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    /// The object: a mapping (`{apiVersion, kind, metadata: {name}, spec}`), or its YAML/JSON
    /// text. Give this or `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Value>,
    /// A YAML or JSON file holding one object, relative to the rule or drill file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Namespace of a namespaced object whose manifest names none (default: the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    pub summary: String,
    pub object: ObjectRef,
    /// True when the object was created (the undo deletes it), false when it was patched.
    pub created: bool,
    pub revert: Restore,
    pub dry_run: bool,
}

/// A manifest's object, checked for what an apply needs.
struct Manifest {
    object: Value,
    api_version: String,
    kind: String,
    name: String,
}

impl Manifest {
    fn from_value(object: Value) -> Result<Manifest, String> {
        let object = match object {
            Value::String(text) => parse_text(&text)?,
            other => other,
        };
        if !object.is_object() {
            return Err("the manifest must be one object (a mapping)".into());
        }
        let text = |v: &Value, what: &str| {
            v.as_str()
                .filter(|s| !s.trim().is_empty())
                .map(String::from)
                .ok_or_else(|| format!("the manifest has no `{what}`"))
        };
        Ok(Manifest {
            api_version: text(&object["apiVersion"], "apiVersion")?,
            kind: text(&object["kind"], "kind")?,
            name: text(&object["metadata"]["name"], "metadata.name")?,
            object,
        })
    }

    fn namespace(&self) -> Option<&str> {
        self.object["metadata"]["namespace"].as_str()
    }
}

fn parse_text(text: &str) -> Result<Value, String> {
    let node = crate::config::parse_yaml(text).map_err(|e| {
        format!(
            "the manifest is not valid YAML or JSON ({}:{}: {})",
            e.loc.line, e.loc.col, e.message
        )
    })?;
    crate::config::from_node::<Value>(&node, None).map_err(|e| e.describe())
}

impl Apply {
    pub fn validate(&self, issues: &mut Issues) {
        check_namespace(issues, self.namespace.as_deref());
        match (&self.manifest, &self.file) {
            (Some(_), Some(_)) => issues.at(&["file"], "give `manifest` or `file`, not both"),
            (None, None) => issues.at(&[], "`manifest` (inline) or `file` is required"),
            (None, Some(f)) if f.as_os_str().is_empty() => issues.at(&["file"], "file is empty"),
            (Some(m), None) => match Manifest::from_value(m.clone()) {
                Err(e) => issues.at(&["manifest"], e),
                Ok(m) => {
                    if let (Some(own), Some(ns)) = (m.namespace(), &self.namespace)
                        && own != ns
                    {
                        issues.at(
                            &["namespace"],
                            format!("the manifest says namespace {own}, `namespace` says {ns}"),
                        );
                    }
                }
            },
            _ => {}
        }
    }

    pub fn describe(&self) -> String {
        let what = match (&self.manifest, &self.file) {
            (_, Some(f)) => format!("the manifest in {}", f.display()),
            (Some(m), None) => match Manifest::from_value(m.clone()) {
                Ok(m) => format!("{} {}", m.kind, m.name),
                Err(_) => "an inline manifest".into(),
            },
            (None, None) => "nothing".into(),
        };
        format!("apply {what} (created, or patched when it exists)")
    }

    fn manifest(&self, ctx: &KubeContext) -> Result<Manifest, String> {
        match (&self.manifest, &self.file) {
            (Some(m), None) => Manifest::from_value(m.clone()),
            (None, Some(f)) => {
                let path = ctx.resolve(f);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read the manifest {}: {e}", path.display()))?;
                Manifest::from_value(Value::String(text))
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            _ => Err("`manifest` or `file` (one of them) is required".into()),
        }
    }

    /// The manifest and the object it names (its kind found through discovery).
    async fn target(&self, ctx: &KubeContext) -> Result<(Manifest, ObjectRef), String> {
        let manifest = self.manifest(ctx)?;
        let resource = ResourceRef::Dynamic(DynamicRef {
            api_version: manifest.api_version.clone(),
            kind: manifest.kind.clone(),
            plural: None,
            namespaced: None,
        });
        let resolved = resources::resolve(&ctx.client, &resource).await?;
        let ns = manifest
            .namespace()
            .map(String::from)
            .unwrap_or_else(|| ctx.namespace_or(self.namespace.as_deref()));
        let object = ObjectRef::new(&resolved, &ns, &manifest.name);
        Ok((manifest, object))
    }

    /// The object the manifest names (for an undo that only has the action's fields).
    pub async fn object(&self, ctx: &KubeContext) -> Result<ObjectRef, String> {
        Ok(self.target(ctx).await?.1)
    }

    pub async fn run(&self, ctx: &KubeContext, write: Write) -> Result<ApplyOutcome, String> {
        let (manifest, object) = self.target(ctx).await?;
        match object.get(&ctx.client).await? {
            None => create(ctx, manifest, object, write).await,
            Some(previous) => patch(ctx, manifest, object, &previous, write).await,
        }
    }
}

async fn create(
    ctx: &KubeContext,
    manifest: Manifest,
    object: ObjectRef,
    write: Write,
) -> Result<ApplyOutcome, String> {
    let mut body = manifest.object;
    if let Some(ns) = &object.namespace {
        body["metadata"]["namespace"] = json!(ns);
    }
    if write.mark_revert {
        let mark = serde_json::to_string(&Restore::Delete).unwrap_or_default();
        combine_patches(
            &mut body,
            &json!({"metadata": {"annotations": {REVERT_ANNOTATION: mark}}}),
        );
    }
    let body: DynamicObject = serde_json::from_value(body)
        .map_err(|e| format!("the manifest is not a Kubernetes object: {e}"))?;
    let params = PostParams {
        dry_run: write.dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    object
        .api(&ctx.client)
        .create(&params, &body)
        .await
        .map_err(|e| describe_error(&e, "create", &object.describe()))?;
    Ok(ApplyOutcome {
        summary: format!(
            "created {}{}",
            object.describe(),
            dry_run_note(write.dry_run)
        ),
        object,
        created: true,
        revert: Restore::Delete,
        dry_run: write.dry_run,
    })
}

async fn patch(
    ctx: &KubeContext,
    manifest: Manifest,
    object: ObjectRef,
    previous: &Value,
    write: Write,
) -> Result<ApplyOutcome, String> {
    let change = patch_of(manifest.object);
    let (change, revert) = write.marked(
        change.clone(),
        Restore::Patch(inverse_merge_patch(&change, previous)),
    );
    object
        .merge_patch(&ctx.client, &change, write.dry_run)
        .await?;
    Ok(ApplyOutcome {
        summary: format!(
            "patched {} (it existed){}",
            object.describe(),
            dry_run_note(write.dry_run)
        ),
        object,
        created: false,
        revert,
        dry_run: write.dry_run,
    })
}

/// The manifest as a merge patch: without its type, its status and the fields the server owns.
fn patch_of(mut manifest: Value) -> Value {
    if let Some(m) = manifest.as_object_mut() {
        for key in ["apiVersion", "kind", "status"] {
            m.remove(key);
        }
    }
    if let Some(meta) = manifest["metadata"].as_object_mut() {
        for key in SERVER_METADATA {
            meta.remove(*key);
        }
    }
    manifest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(yaml: &str) -> Vec<String> {
        let node = crate::config::parse_yaml(yaml).unwrap();
        let apply: Apply = crate::config::from_node(&node, None).unwrap();
        let mut issues = Issues::default();
        apply.validate(&mut issues);
        issues
            .items
            .iter()
            .map(|(p, m)| format!("{}: {m}", crate::config::path_text(p)))
            .collect()
    }

    #[test]
    fn inline_manifests_are_mappings_or_text() {
        assert!(
            issues_of("{ manifest: { apiVersion: v1, kind: ConfigMap, metadata: { name: x } } }")
                .is_empty()
        );
        assert!(issues_of(
            "{ manifest: '{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"x\"}}' }"
        )
        .is_empty());
        let found = issues_of("{ manifest: { apiVersion: v1, kind: ConfigMap } }");
        assert_eq!(found, ["manifest: the manifest has no `metadata.name`"]);
        let found = issues_of("{ manifest: 'kind: [' }");
        assert!(found[0].contains("not valid YAML"), "{found:?}");
        let found = issues_of("{ file: x.yaml, manifest: {} }");
        assert_eq!(found, ["file: give `manifest` or `file`, not both"]);
        let found = issues_of("{ namespace: shop }");
        assert!(found[0].contains("is required"), "{found:?}");
        let found = issues_of(
            "{ namespace: a, manifest: { apiVersion: v1, kind: ConfigMap, metadata: { name: x, namespace: b } } }",
        );
        assert_eq!(
            found,
            ["namespace: the manifest says namespace b, `namespace` says a"]
        );
    }

    #[test]
    fn a_manifest_patch_leaves_out_what_the_server_owns() {
        let p = patch_of(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "status": {},
            "metadata": {"name": "x", "uid": "u", "resourceVersion": "9"}, "data": {"a": "1"}}),
        );
        assert_eq!(p, json!({"metadata": {"name": "x"}, "data": {"a": "1"}}));
    }
}
