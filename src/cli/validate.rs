//! `patrol validate [PATH…] [--playbooks DIR] [--format text|json] [--online]`.
//!
//! Rule files, the drill files among the paths, and the playbooks — those among the paths and
//! those of the playbook directory (`--playbooks`, else the rules' `playbooks.dir`, else
//! `playbooks/` when it exists) — each checked against the rules; the rules' `on_failure` and
//! `on_low_score` must name one of the playbooks.
//!
//! `patrol validate consul://HOST:PORT/PREFIX` validates the rule keys of a Consul KV prefix
//! instead (one snapshot, token in `CONSUL_HTTP_TOKEN`; problems named
//! `consul://HOST:PORT/PREFIX/key.yaml:line:col`) with the playbooks of the playbook directory.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{EXIT_INVALID, EXIT_OK, ValidateArgs, ValidateFormat};
use crate::config::source::RulesSource;
use crate::config::{self, Diagnostic, Env, Loc, Node, RuleSet};
use crate::daemon::playbooks::load::{
    PlaybookSet, check_references, parse_file, playbook_docs_in, read_all,
};
use crate::playbook::is_playbook;

/// Where playbooks are looked for besides the paths given.
#[derive(Clone, Copy, Debug)]
pub enum PlaybooksDir<'a> {
    /// Only the playbook files among the paths.
    Nowhere,
    /// This directory (`--playbooks DIR`); a missing one is a problem.
    At(&'a Path),
    /// The rules' `playbooks.dir`, else this directory when it exists.
    Default(&'a Path),
}

/// What validation found.
pub struct Validation {
    /// The rules, when they are valid.
    pub rules: Option<RuleSet>,
    pub drill_files: Vec<PathBuf>,
    /// Playbook files read (valid or not).
    pub playbook_files: Vec<PathBuf>,
    pub problems: Vec<Diagnostic>,
}

pub async fn validate(mut args: ValidateArgs) -> u8 {
    args.paths.extend(args.rules.take());
    let found = match remote_source(&args.paths) {
        Err(e) => {
            eprintln!("patrol: {e}");
            return EXIT_INVALID;
        }
        Ok(Some(source)) => validate_source(&source, args.playbooks.as_deref()).await,
        Ok(None) => validate_files(args.paths, args.playbooks.as_deref()),
    };
    let mut problems = found.problems;
    if let (Some(r), true) = (&found.rules, args.online) {
        problems.extend(crate::probe::ping::ping_all(r).await);
    }
    let counts = Counts {
        drills: found.drill_files.len(),
        playbooks: found.playbook_files.len(),
    };
    match args.format {
        ValidateFormat::Text => print_text(found.rules.as_ref(), &problems, counts),
        ValidateFormat::Json => print_json(found.rules.as_ref(), &problems, counts),
    }
    if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_INVALID
    }
}

/// The rule, drill and playbook files below `paths` (default: `rules/`).
fn validate_files(paths: Vec<PathBuf>, playbooks_flag: Option<&Path>) -> Validation {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        paths
    };
    // The default `playbooks/` sits beside the (first) rules directory — `rules/` → `./playbooks`
    // — so validating some other tree never checks this directory's playbooks against it.
    let beside_rules = paths.first().and_then(|p| p.parent()).map_or_else(
        || PathBuf::from("playbooks"),
        |parent| parent.join("playbooks"),
    );
    let playbooks = match playbooks_flag {
        Some(dir) => PlaybooksDir::At(dir),
        None => PlaybooksDir::Default(&beside_rules),
    };
    validate_paths(
        &paths,
        Some(Path::new("rules")),
        playbooks,
        &config::ProcessEnv,
    )
}

/// The Consul source among the paths, when one is given (it must be the only path).
fn remote_source(paths: &[PathBuf]) -> Result<Option<RulesSource>, String> {
    let mut remote = None;
    for path in paths {
        match RulesSource::from_path_arg(path, &config::ProcessEnv)? {
            RulesSource::Dir(_) => {}
            source => remote = Some(source),
        }
    }
    if remote.is_some() && paths.len() > 1 {
        return Err(
            "a consul:// rules source is validated on its own: give it without other paths".into(),
        );
    }
    Ok(remote)
}

/// Validates one snapshot of a rules source and, once the rules are valid, the playbooks of the
/// playbook directory (`--playbooks`, else the rules' `playbooks.dir`, else `playbooks/` when it
/// exists, relative to the working directory) against them.
async fn validate_source(source: &RulesSource, playbooks_flag: Option<&Path>) -> Validation {
    let (rules, mut problems) = match source.load().await {
        Ok(r) => (Some(r), Vec::new()),
        Err(p) => (None, p),
    };
    let mut playbook_files = Vec::new();
    if let Some(rules) = &rules {
        let dir = match playbooks_flag {
            Some(dir) => PlaybooksDir::At(dir),
            None => PlaybooksDir::Default(Path::new("playbooks")),
        };
        let (set, more, files) = read_playbooks(rules, Vec::new(), dir, &config::ProcessEnv);
        problems.extend(more);
        problems.extend(check_references(rules, &set));
        playbook_files = files;
    }
    problems.sort();
    problems.dedup();
    Validation {
        rules,
        drill_files: Vec::new(),
        playbook_files,
        problems,
    }
}

/// Validates the rule, drill and playbook files below `paths` and the playbooks of `playbooks`.
/// `default_rules` is where the rules come from when the paths hold only drills or playbooks.
/// Playbooks are checked once the rules are valid (they are read against them).
pub fn validate_paths(
    paths: &[PathBuf],
    default_rules: Option<&Path>,
    playbooks: PlaybooksDir<'_>,
    env: &dyn Env,
) -> Validation {
    let given = playbooks_among(paths);
    // Only playbooks given: their rules are the default ones, as for drills.
    let only_playbooks = !given.is_empty() && crate::config::yaml_files(paths).len() == given.len();
    let rule_paths: Vec<PathBuf> = match default_rules {
        Some(dir) if only_playbooks && dir.exists() => vec![dir.to_path_buf()],
        _ if only_playbooks => Vec::new(),
        _ => paths.to_vec(),
    };
    let found = crate::chaos::drill::validate_paths(&rule_paths, default_rules, env);
    let mut problems = found.problems;
    let mut playbook_files: Vec<PathBuf> = given.iter().map(|(f, _)| f.clone()).collect();
    if let Some(rules) = &found.rules {
        let (set, more, files) = read_playbooks(rules, given, playbooks, env);
        problems.extend(more);
        problems.extend(check_references(rules, &set));
        playbook_files = files;
    }
    problems.sort();
    problems.dedup();
    Validation {
        rules: found.rules,
        drill_files: found.drill_files,
        playbook_files,
        problems,
    }
}

/// The playbooks `given` among the paths and those of the directory, read against `rules`:
/// the set, the problems, the files read.
fn read_playbooks(
    rules: &RuleSet,
    given: Vec<(PathBuf, Node)>,
    playbooks: PlaybooksDir<'_>,
    env: &dyn Env,
) -> (PlaybookSet, Vec<Diagnostic>, Vec<PathBuf>) {
    let mut problems = Vec::new();
    let dir = match playbooks {
        PlaybooksDir::Nowhere => None,
        PlaybooksDir::At(dir) => {
            if !dir.is_dir() {
                let message = "--playbooks: no such directory";
                problems.push(Diagnostic::new(dir, Loc { line: 1, col: 1 }, message));
            }
            Some(dir.to_path_buf())
        }
        PlaybooksDir::Default(fallback) => Some(crate::daemon::playbooks::load::playbooks_dir(
            rules,
            Some(fallback),
        )),
    }
    .filter(|d| d.is_dir());
    let mut docs = given;
    if let Some(dir) = &dir {
        let (in_dir, unparsed) = playbook_docs_in(dir);
        problems.extend(unparsed);
        for (file, root) in in_dir {
            if !docs.iter().any(|(f, _)| same_file(f, &file)) {
                docs.push((file, root));
            }
        }
    }
    let present = dir.is_some() || !docs.is_empty();
    let files = docs.iter().map(|(f, _)| f.clone()).collect();
    let scan = read_all(docs, rules, env);
    problems.extend(scan.problems);
    let set = PlaybookSet {
        dir,
        present,
        ..scan.set
    };
    (set, problems, files)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The `kind: playbook` documents below `paths` (files that do not parse are the rules
/// loader's to report).
fn playbooks_among(paths: &[PathBuf]) -> Vec<(PathBuf, Node)> {
    crate::config::yaml_files(paths)
        .into_iter()
        .filter_map(|file| {
            let root = parse_file(&file).ok()?;
            is_playbook(&root).then_some((file, root))
        })
        .collect()
}

/// How many drill and playbook files were validated besides the rules.
#[derive(Clone, Copy)]
struct Counts {
    drills: usize,
    playbooks: usize,
}

fn counted(n: usize, one: &str, many: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!(", 1 {one}"),
        n => format!(", {n} {many}"),
    }
}

fn print_text(rules: Option<&RuleSet>, problems: &[Diagnostic], counts: Counts) {
    for p in problems {
        println!("{p}");
    }
    match rules {
        Some(r) if problems.is_empty() => println!(
            "ok: {} checks, {} targets in {} files{}{} (revision {})",
            r.checks.len(),
            r.targets.len(),
            r.files.len(),
            counted(counts.playbooks, "playbook", "playbooks"),
            counted(counts.drills, "drill", "drills"),
            r.revision
        ),
        _ => eprintln!(
            "{} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    }
}

fn print_json(rules: Option<&RuleSet>, problems: &[Diagnostic], counts: Counts) {
    let doc = json!({
        "valid": problems.is_empty(),
        "revision": rules.map(|r| r.revision.to_string()),
        "checks": rules.map(|r| r.checks.len()),
        "targets": rules.map(|r| r.targets.len()),
        "files": rules.map(|r| r.files.clone()),
        "drills": counts.drills,
        "playbooks": counts.playbooks,
        "problems": problems,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}
