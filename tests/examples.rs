//! The example rule files in `rules/` are part of the documentation: they must stay valid on a
//! fresh machine (every connection detail is an `${env:NAME:-default}` placeholder), and there is
//! one per check kind.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use patrol::config;
use patrol::probe::ProbeSpec;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules_dir())
        .expect("rules/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// The `NAME`s of every `${env:NAME…}` in the examples, so the tests can unset them.
fn referenced_env_vars() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in example_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for part in text.split("${env:").skip(1) {
            let end = part.find([':', '}']).unwrap_or(part.len());
            names.insert(part[..end].to_string());
        }
    }
    names
}

#[test]
fn patrol_validate_accepts_the_examples_without_any_variable_set() {
    let mut cmd = Command::new(common::patrol_bin());
    cmd.arg("validate")
        .arg("rules/")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for name in referenced_env_vars() {
        cmd.env_remove(name);
    }
    let (stdout, _) = common::output_ok(&mut cmd);
    let ok = stdout
        .lines()
        .find(|l| l.starts_with("ok: "))
        .unwrap_or_else(|| panic!("no ok: line in\n{stdout}"));
    let files = example_files().len();
    assert!(ok.contains(&format!("in {files} files")), "{ok}");
}

#[test]
fn there_is_an_example_file_per_check_kind_and_each_loads_alone() {
    let names: BTreeSet<String> = example_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for kind in ProbeSpec::KINDS {
        assert!(names.contains(*kind), "no rules/{kind}.yaml example");
    }
    // Receivers are shared by all examples (rules/receivers.yaml); every other file loads with
    // them alone.
    let receivers = example_files()
        .into_iter()
        .find(|p| p.ends_with("receivers.yaml"))
        .expect("rules/receivers.yaml");
    for file in example_files().into_iter().filter(|f| *f != receivers) {
        let rules = config::load_with_env(
            &[file.clone(), receivers.clone()],
            &std::collections::BTreeMap::new(),
        )
        .unwrap_or_else(|d| panic!("{} does not load on its own: {d:#?}", file.display()));
        assert!(!rules.checks.is_empty(), "{} has no checks", file.display());
        let kind = file.file_stem().unwrap().to_string_lossy().into_owned();
        if ProbeSpec::KINDS.contains(&kind.as_str()) {
            assert!(
                rules.checks.iter().all(|c| c.kind() == kind),
                "{} mixes kinds: {:?}",
                file.display(),
                rules.checks.iter().map(|c| c.kind()).collect::<Vec<_>>()
            );
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("# "),
            "{} should open with a comment explaining it",
            file.display()
        );
    }
}

#[test]
fn the_examples_show_the_fields_of_a_rule_file() {
    let all = config::load_with_env(&[rules_dir()], &std::collections::BTreeMap::new())
        .expect("examples load");
    let checks = &all.checks;
    assert!(!all.vars.is_empty(), "some example uses vars:");
    assert!(
        checks.iter().any(|c| c.common.baseline.is_some()),
        "a baseline"
    );
    assert!(checks.iter().any(|c| c.is_shadow()), "mode: shadow");
    assert!(checks.iter().any(|c| !c.common.labels.is_empty()), "labels");
    assert!(
        checks
            .iter()
            .any(|c| c.common.warn.is_some() && c.common.crit.is_some()),
        "warn and crit"
    );
    assert!(
        checks.iter().any(|c| c.common.schedule.is_some()),
        "schedule"
    );
    assert!(checks.iter().any(|c| c.common.every.is_some()), "every");
    assert!(
        checks
            .iter()
            .any(|c| c.common.target.is_none() && c.target.is_some()),
        "an inline url/address"
    );
    let secret_header = all.targets.values().any(|t| match &t.spec {
        config::TargetSpec::Http(h) => h.headers.values().any(|v| v.starts_with("Bearer ")),
        _ => false,
    });
    assert!(secret_header, "a header from the environment");
}
