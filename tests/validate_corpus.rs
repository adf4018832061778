//! The malformed-rules corpus: every file (or folder of files) under tests/fixtures/malformed holds
//! `# expect: [file:]LINE:COL fragment` lines, and validation must report exactly those problems —
//! each at its exact line and column, none missing and none extra. Run through the library for
//! every entry and through the `patrol validate` binary for the whole corpus at once.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use patrol::config::Diagnostic;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/malformed");

#[derive(Debug)]
struct Expected {
    file: PathBuf,
    line: u32,
    column: u32,
    fragment: String,
}

fn entries() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn yaml_files(entry: &Path) -> Vec<PathBuf> {
    if entry.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(entry)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    } else {
        vec![entry.to_path_buf()]
    }
}

fn expectations(entry: &Path) -> Vec<Expected> {
    let mut out = Vec::new();
    for file in yaml_files(entry) {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let Some(rest) = line.strip_prefix("# expect: ") else {
                continue;
            };
            let (pos, fragment) = rest.split_once(' ').expect("position and fragment");
            let parts: Vec<&str> = pos.split(':').collect();
            let (file, l, c) = match parts.as_slice() {
                [l, c] => (file.clone(), l, c),
                [f, l, c] => (entry.join(f), l, c),
                _ => panic!("bad expect line in {}: {line}", file.display()),
            };
            out.push(Expected {
                file,
                line: l.parse().unwrap(),
                column: c.parse().unwrap(),
                fragment: fragment.to_string(),
            });
        }
    }
    out
}

fn diagnostics(entry: &Path) -> Vec<Diagnostic> {
    let env: BTreeMap<String, String> = BTreeMap::new();
    // Rule, drill and playbook files, as `patrol validate` checks them.
    use patrol::cli::validate::{PlaybooksDir, validate_paths};
    validate_paths(&[entry.to_path_buf()], None, PlaybooksDir::Nowhere, &env).problems
}

#[test]
fn corpus_is_large_enough() {
    assert!(
        entries().len() >= 30,
        "the issue asks for at least 30 malformed files"
    );
}

#[test]
fn every_malformed_entry_reports_exactly_its_problems() {
    let mut failures = Vec::new();
    for entry in entries() {
        let want = expectations(&entry);
        assert!(
            !want.is_empty(),
            "{} has no # expect: line",
            entry.display()
        );
        let got = diagnostics(&entry);
        for w in &want {
            // Messages name other places by the path given on the command line; compare relative.
            let relative = |m: &str| m.replace(&format!("{CORPUS}/"), "");
            let hit = got.iter().any(|d| {
                d.file == w.file
                    && d.line == w.line
                    && d.column == w.column
                    && relative(&d.message).contains(&w.fragment)
            });
            if !hit {
                failures.push(format!(
                    "{}: expected {}:{} {:?}, got {:#?}",
                    entry.display(),
                    w.line,
                    w.column,
                    w.fragment,
                    got
                ));
            }
        }
        if got.len() != want.len() {
            failures.push(format!(
                "{}: expected {} problem(s), got {}: {:#?}",
                entry.display(),
                want.len(),
                got.len(),
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_binary_reports_all_problems_of_all_files_at_once() {
    let total: usize = entries().iter().map(|e| expectations(e).len()).sum();
    let out = Command::new(common::patrol_bin())
        .current_dir(CORPUS)
        .args(["validate", "."])
        .env_remove("PATROL_TEST_SURELY_UNSET_PW")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    // Merged as one rules directory, the files share one namespace: the same check name `api` in many
    // files is reported as a duplicate too, so there are at least as many lines as expectations.
    assert!(
        lines.len() >= total,
        "{} lines for {total} expected problems:\n{stdout}",
        lines.len()
    );
    for line in &lines {
        let mut parts = line.splitn(4, ':');
        let (file, l, c, rest) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert!(file.ends_with(".yaml"), "{line}");
        assert!(
            l.parse::<u32>().is_ok() && c.parse::<u32>().is_ok(),
            "{line}"
        );
        assert!(rest.starts_with(" error: "), "{line}");
    }
    assert!(
        stdout.contains("./15-bad-regex-body.yaml:6:21: error: invalid regular expression"),
        "{stdout}"
    );
}

#[test]
fn json_format_lists_problems_with_positions() {
    let out = Command::new(common::patrol_bin())
        .args(["validate", "--format", "json"])
        .arg(Path::new(CORPUS).join("12-condition-not-a-number.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let p = &doc["problems"][0];
    assert_eq!(
        (p["line"].as_u64(), p["column"].as_u64()),
        (Some(5), Some(11))
    );
    assert!(p["message"].as_str().unwrap().contains("neither a number"));
}
