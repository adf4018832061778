//! `annotate`: sets (or, with `null`, removes) annotations of one object of any kind, like
//! `kubectl annotate --overwrite`, and returns the values it replaced.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::context::KubeContext;
use super::object::{ObjectRef, Restore, Write};
use super::{alphanumeric_ends, check_name, check_namespace};
use crate::config::Issues;
use crate::probe::kubernetes::{ResourceRef, resources};

/// `action: annotate`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Annotate {
    /// deployment, pod, node, … or `{api_version, kind}` for any other kind.
    pub resource: ResourceRef,
    /// The object's name.
    pub name: String,
    /// Its namespace (default: the target's; ignored for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Annotations to set; `null` removes one.
    pub annotations: BTreeMap<String, Option<String>>,
}

/// What an annotate did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnotateOutcome {
    pub summary: String,
    pub object: ObjectRef,
    /// The values before, for each annotation written (null: it was not set).
    pub previous: BTreeMap<String, Option<String>>,
    pub revert: Restore,
    pub dry_run: bool,
}

impl Annotate {
    pub fn validate(&self, issues: &mut Issues) {
        if let Err(e) = self.resource.builtin() {
            issues.at(&["resource"], e);
        }
        for (field, msg) in self.resource.problems() {
            issues.at(&["resource", field], msg);
        }
        check_name(issues, "name", &self.name);
        check_namespace(issues, self.namespace.as_deref());
        if self.annotations.is_empty() {
            issues.at(&["annotations"], "annotations: give at least one");
        }
        for key in self.annotations.keys() {
            if let Err(e) = check_annotation_key(key) {
                issues.at_key(&["annotations", key], e);
            }
        }
    }

    pub fn describe(&self) -> String {
        let keys: Vec<&str> = self.annotations.keys().map(String::as_str).collect();
        format!(
            "annotate {} {}{} ({})",
            self.resource.describe(),
            self.name,
            super::in_namespace(self.namespace.as_deref()),
            keys.join(", ")
        )
    }

    pub async fn run(&self, ctx: &KubeContext, write: Write) -> Result<AnnotateOutcome, String> {
        let resolved = resources::resolve(&ctx.client, &self.resource).await?;
        let ns = ctx.namespace_or(self.namespace.as_deref());
        let object = ObjectRef::new(&resolved, &ns, &self.name);
        let current = object.get_existing(&ctx.client).await?;
        let before = &current["metadata"]["annotations"];
        let previous: BTreeMap<String, Option<String>> = self
            .annotations
            .keys()
            .map(|k| (k.clone(), before[k].as_str().map(String::from)))
            .collect();
        let (change, revert) = write.marked(
            json!({"metadata": {"annotations": self.annotations}}),
            Restore::Patch(json!({"metadata": {"annotations": previous}})),
        );
        object
            .merge_patch(&ctx.client, &change, write.dry_run)
            .await?;
        Ok(AnnotateOutcome {
            summary: format!(
                "annotated {} ({}){}",
                object.describe(),
                self.annotations
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => format!("{k}-"),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                super::dry_run_note(write.dry_run)
            ),
            object,
            previous,
            revert,
            dry_run: write.dry_run,
        })
    }
}

/// An annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters (letters, digits, `-`, `_`, `.`, starting and ending alphanumeric).
fn check_annotation_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && alphanumeric_ends(name);
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a valid annotation key: [prefix/]name, the name at most 63 \
             letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

/// Written as it is read: a word, or `{api_version, kind[, plural, namespaced]}` (actions are
/// journaled and shown as JSON).
impl Serialize for ResourceRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResourceRef::Named(word) => s.serialize_str(word),
            ResourceRef::Dynamic(d) => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("api_version", &d.api_version)?;
                map.serialize_entry("kind", &d.kind)?;
                if let Some(p) = &d.plural {
                    map.serialize_entry("plural", p)?;
                }
                if let Some(n) = d.namespaced {
                    map.serialize_entry("namespaced", &n)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_keys_follow_kubernetes_rules() {
        for ok in [
            "a",
            "team",
            "example.com/owner",
            "patrol/drill-revert",
            "a.b_c-d",
        ] {
            assert!(check_annotation_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "Example.com/x", "/x", "x/", &"n".repeat(64)] {
            assert!(check_annotation_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resource_refs_serialize_as_written() {
        let named = ResourceRef::Named("deploy".into());
        assert_eq!(serde_json::to_value(&named).unwrap(), json!("deploy"));
        let dynamic: ResourceRef = serde_json::from_value(
            json!({"api_version": "chaos-mesh.org/v1alpha1", "kind": "PodChaos"}),
        )
        .unwrap();
        let back: ResourceRef =
            serde_json::from_value(serde_json::to_value(&dynamic).unwrap()).unwrap();
        assert_eq!(back, dynamic);
    }
}
