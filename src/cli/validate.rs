//! `patrol validate [PATH…] [--format text|json] [--online]`.

use std::path::PathBuf;

use serde_json::json;

use super::{EXIT_INVALID, EXIT_OK, ValidateArgs, ValidateFormat};
use crate::config::{self, Diagnostic, RuleSet};

pub async fn validate(args: ValidateArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        args.paths
    };
    let (rules, mut problems) = match config::load(&paths) {
        Ok(r) => (Some(r), Vec::new()),
        Err(d) => (None, d),
    };
    if let (Some(r), true) = (&rules, args.online) {
        problems.extend(crate::probe::ping::ping_all(r).await);
    }
    match args.format {
        ValidateFormat::Text => print_text(rules.as_ref(), &problems),
        ValidateFormat::Json => print_json(rules.as_ref(), &problems),
    }
    if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }
}

fn print_text(rules: Option<&RuleSet>, problems: &[Diagnostic]) {
    for p in problems {
        println!("{p}");
    }
    match rules {
        Some(r) if problems.is_empty() => println!(
            "ok: {} checks, {} targets in {} files (revision {})",
            r.checks.len(),
            r.targets.len(),
            r.files.len(),
            r.revision
        ),
        _ => eprintln!(
            "{} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    }
}

fn print_json(rules: Option<&RuleSet>, problems: &[Diagnostic]) {
    let doc = json!({
        "valid": problems.is_empty(),
        "revision": rules.map(|r| r.revision.to_string()),
        "checks": rules.map(|r| r.checks.len()),
        "targets": rules.map(|r| r.targets.len()),
        "files": rules.map(|r| r.files.clone()),
        "problems": problems,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
