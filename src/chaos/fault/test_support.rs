//! Helpers for the faults' unit tests: a fault from YAML, its validation issues as text.

use super::FaultSpec;
use crate::config::{Issues, parse_yaml, path_text};

/// The fault of `kind` from a YAML mapping; panics with the located error otherwise.
pub fn spec_of(kind: &str, yaml: &str) -> FaultSpec {
    let node = parse_yaml(yaml).expect("valid YAML");
    match FaultSpec::from_node(kind, &node) {
        Some(Ok(spec)) => spec,
        Some(Err(e)) => panic!("{kind} fault {yaml}: {}", e.describe()),
        None => panic!("unknown fault kind {kind}"),
    }
}

/// Every validation issue of `spec` as `path: message` (`: message` for the fault itself).
pub fn issues_of(spec: &FaultSpec) -> Vec<String> {
    let mut issues = Issues::default();
    spec.validate(&mut issues);
    issues
        .items
        .iter()
        .map(|(path, msg)| format!("{}: {msg}", path_text(path)))
        .collect()
}
