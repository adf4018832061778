//! `patrol validate [PATH…] [--format text|json] [--online]`.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{EXIT_INVALID, EXIT_OK, ValidateArgs, ValidateFormat};
use crate::chaos::drill::validate_paths;
use crate::config::{self, Diagnostic, RuleSet};

pub async fn validate(args: ValidateArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        args.paths
    };
    // Drill files among the paths are validated too, against the rules of the other files (or
    // of rules/ when the paths hold drills only).
    let found = validate_paths(&paths, Some(Path::new("rules")), &config::ProcessEnv);
    let (rules, mut problems, drills) = (found.rules, found.problems, found.drill_files.len());
    if let (Some(r), true) = (&rules, args.online) {
        problems.extend(crate::probe::ping::ping_all(r).await);
    }
    match args.format {
        ValidateFormat::Text => print_text(rules.as_ref(), &problems, drills),
        ValidateFormat::Json => print_json(rules.as_ref(), &problems, drills),
    }
    if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }
}

fn print_text(rules: Option<&RuleSet>, problems: &[Diagnostic], drills: usize) {
    for p in problems {
        println!("{p}");
    }
    match rules {
        Some(r) if problems.is_empty() => println!(
            "ok: {} checks, {} targets in {} files{} (revision {})",
            r.checks.len(),
            r.targets.len(),
            r.files.len(),
            match drills {
                0 => String::new(),
                1 => ", 1 drill".into(),
                n => format!(", {n} drills"),
            },
            r.revision
        ),
        _ => eprintln!(
            "{} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    }
}

fn print_json(rules: Option<&RuleSet>, problems: &[Diagnostic], drills: usize) {
    let doc = json!({
        "valid": problems.is_empty(),
        "revision": rules.map(|r| r.revision.to_string()),
        "checks": rules.map(|r| r.checks.len()),
        "targets": rules.map(|r| r.targets.len()),
        "files": rules.map(|r| r.files.clone()),
        "drills": drills,
        "problems": problems,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
