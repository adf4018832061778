//! `patrol validate` over rule files and drill files together: every `kind: drill` document found
//! below the given paths is validated as a drill, against the rules of the other files given — or,
//! when the paths hold no rule file at all, against the default rules directory.

use std::path::{Path, PathBuf};

use super::load::{is_drill, load_drill};
use super::spec::Drill;
use crate::config::{Diagnostic, Env, Node, RuleSet, load_with_env, parse_yaml};

/// What validation found.
pub struct Validation {
    /// The rules, when they are valid.
    pub rules: Option<RuleSet>,
    /// The drills that are valid.
    pub drills: Vec<Drill>,
    /// Drill files found (valid or not).
    pub drill_files: Vec<PathBuf>,
    pub problems: Vec<Diagnostic>,
}

/// Validates the rule and drill files below `paths`. `default_rules` is where the rules come
/// from when `paths` hold only drills (the CLI passes `rules/`; None: no rules).
pub fn validate_paths(
    paths: &[PathBuf],
    default_rules: Option<&Path>,
    env: &dyn Env,
) -> Validation {
    let mut drills_found: Vec<(PathBuf, Node)> = Vec::new();
    let mut other_documents = false;
    for file in crate::config::yaml_files(paths) {
        let parsed = std::fs::read(&file)
            .ok()
            .and_then(|b| parse_yaml(&String::from_utf8_lossy(&b)).ok());
        match parsed {
            Some(root) if is_drill(&root) => drills_found.push((file, root)),
            // Unreadable and malformed files are reported by the rules loader.
            _ => other_documents = true,
        }
    }
    let rule_paths: Vec<PathBuf> = match (other_documents || drills_found.is_empty(), default_rules)
    {
        (true, _) => paths.to_vec(),
        (false, Some(dir)) if dir.exists() => vec![dir.to_path_buf()],
        (false, _) => Vec::new(),
    };
    let (rules, mut problems) = match load_with_env(&rule_paths, env) {
        Ok(r) => (Some(r), Vec::new()),
        Err(d) => (None, d),
    };
    let mut drills = Vec::new();
    let drill_files = drills_found.iter().map(|(f, _)| f.clone()).collect();
    for (file, root) in drills_found {
        match load_drill(&file, root, rules.as_ref(), env) {
            Ok(d) => drills.push(d),
            Err(d) => problems.extend(d),
        }
    }
    problems.sort();
    problems.dedup();
    Validation {
        rules,
        drills,
        drill_files,
        problems,
    }
}
