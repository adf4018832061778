//! Helpers for the step kinds' unit tests: rules from YAML text, and a playbook's problems as
//! `file:line:col: error: …` lines.

use std::path::Path;

use crate::config::{ProcessEnv, RuleSet, parse_yaml};
use crate::playbook::load::load_playbook;
use crate::playbook::spec::Playbook;

/// The rules of one file holding `yaml`.
pub fn rules(yaml: &str) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, yaml).unwrap();
    crate::config::load(&[file]).unwrap_or_else(|d| panic!("rules: {d:?}"))
}

/// The playbook `steps:` (YAML lines of a list, indented by two) against `rules`.
pub fn load(steps: &str, rules: &RuleSet) -> Result<Playbook, Vec<String>> {
    let text = format!("kind: playbook\nname: p\nsteps:\n{steps}");
    let root = parse_yaml(&text).expect("valid YAML");
    load_playbook(Path::new("pb.yaml"), root, rules, &ProcessEnv)
        .map_err(|d| d.iter().map(ToString::to_string).collect())
}

/// The problems of `steps` (the playbook must be invalid).
pub fn problems(steps: &str, rules: &RuleSet) -> Vec<String> {
    load(steps, rules).expect_err("the playbook is invalid")
}
