//! `targets:` of every file: one namespace across files, each target deserialized on its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{RuleDoc, kind_of, report_unknown_keys};
use crate::config::issues::Diagnostic;
use crate::config::model::Origin;
use crate::config::node::Node;
use crate::config::target::{Target, TargetSpec};

pub(super) type TargetMap = BTreeMap<String, (Arc<Target>, Origin)>;

pub(super) fn collect_targets(docs: &[RuleDoc], diags: &mut Vec<Diagnostic>) -> TargetMap {
    let mut targets = TargetMap::new();
    for doc in docs {
        for (k, v) in doc.map_section("targets", diags) {
            let name = k.scalar_text().unwrap_or_default();
            if let Some((_, first)) = targets.get(&name) {
                diags.push(doc.diag(
                    k.loc,
                    format!("target `{name}` is defined twice: at {first} and here"),
                ));
                continue;
            }
            let base_dir = doc.base_dir().to_path_buf();
            if let Some(spec) = parse_target(doc, &name, v, diags) {
                spec.register_url_password();
                let target = Target {
                    name: name.clone(),
                    spec,
                    base_dir,
                    origin: Some(doc.origin(k.loc)),
                };
                targets.insert(name, (Arc::new(target), doc.origin(k.loc)));
            }
        }
    }
    targets
}

fn parse_target(
    doc: &RuleDoc,
    name: &str,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<TargetSpec> {
    if node.as_map().is_none() {
        diags.push(doc.diag(
            node.loc,
            format!(
                "target `{name}` must be a mapping with a kind, found {}",
                node.type_name()
            ),
        ));
        return None;
    }
    let kind = kind_of(doc, node, "target", TargetSpec::KINDS, diags)?;
    let fields = TargetSpec::fields(&kind)?;
    report_unknown_keys(
        doc,
        node,
        &[fields, &["kind"]],
        &format!("a {kind} target"),
        diags,
    );
    match TargetSpec::from_node(&kind, node)? {
        Ok(spec) => {
            let mut issues = crate::config::Issues::default();
            spec.validate(&mut issues);
            for (path, msg) in issues.items {
                diags.push(doc.diag(node.locate(&path), msg));
            }
            Some(spec)
        }
        Err(e) => {
            diags.push(doc.diag(e.loc.unwrap_or(node.loc), e.describe()));
            None
        }
    }
}
