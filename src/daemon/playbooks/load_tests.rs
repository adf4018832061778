use std::collections::BTreeMap;
use std::path::Path;

use super::*;

const RULES: &str = "\
checks:
  - name: api
    kind: http
    url: http://127.0.0.1:1/health
    on_failure: fix
services:
  shop:
    on_low_score: heal
";

fn playbook(name: &str) -> String {
    format!("kind: playbook\nname: {name}\nsteps:\n  - wait: 1s\n")
}

/// Rules in `dir/rules`, playbooks (file name → text) in `dir/playbooks`.
fn setup(dir: &Path, rules: &str, playbooks: &[(&str, &str)]) -> RuleSet {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/r.yaml"), rules).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    for (file, text) in playbooks {
        std::fs::write(dir.join("playbooks").join(file), text).unwrap();
    }
    crate::config::load(&[dir.join("rules")]).expect("valid rules")
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn a_directory_yields_its_playbooks_and_leaves_other_documents_alone() {
    let dir = tempfile::tempdir().unwrap();
    let drill = "kind: drill\nname: d\n";
    let rules = setup(
        dir.path(),
        RULES,
        &[
            ("fix.yaml", &playbook("fix")),
            ("heal.yml", &playbook("heal")),
            ("drill.yaml", drill),
        ],
    );
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert!(scan.set.present);
    assert_eq!(
        scan.set.by_name.keys().collect::<Vec<_>>(),
        vec!["fix", "heal"]
    );
    assert!(check_references(&rules, &scan.set).is_empty());
}

#[test]
fn a_missing_directory_is_no_playbooks_and_no_reference_check() {
    let dir = tempfile::tempdir().unwrap();
    let rules = setup(dir.path(), RULES, &[]);
    let scan = scan_dir(&dir.path().join("nowhere"), &rules, &env());
    assert!(scan.problems.is_empty() && !scan.set.present);
    assert!(check_references(&rules, &scan.set).is_empty());
}

#[test]
fn two_playbooks_of_one_name_are_a_problem_at_the_second_name() {
    let dir = tempfile::tempdir().unwrap();
    let rules = setup(
        dir.path(),
        "checks: []\n",
        &[("a.yaml", &playbook("fix")), ("b.yaml", &playbook("fix"))],
    );
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
    let p = &scan.problems[0];
    assert!(p.file.ends_with("b.yaml"), "{p}");
    assert_eq!((p.line, p.column), (2, 7));
    assert!(p.message.contains("two playbooks are named `fix`"), "{p}");
}

#[test]
fn unknown_references_point_at_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let rules = setup(dir.path(), RULES, &[("other.yaml", &playbook("other"))]);
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    let problems = check_references(&rules, &scan.set);
    let at: Vec<(u32, u32, &str)> = problems
        .iter()
        .map(|p| (p.line, p.column, p.message.as_str()))
        .collect();
    assert_eq!(at.len(), 2, "{problems:?}");
    assert_eq!((at[0].0, at[0].1), (5, 17));
    assert!(
        at[0].2.contains("unknown playbook `fix` in `on_failure`") && at[0].2.contains("other"),
        "{}",
        at[0].2
    );
    assert_eq!((at[1].0, at[1].1), (8, 19));
    assert!(
        at[1]
            .2
            .contains("unknown playbook `heal` in `on_low_score`")
    );
}

#[test]
fn an_on_failure_from_defaults_points_at_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "\
defaults:
  on_failure: fix
checks:
  - {name: api, kind: http, url: http://127.0.0.1:1/}
";
    let rules = setup(dir.path(), rules, &[]);
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    let problems = check_references(&rules, &scan.set);
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].line, problems[0].column), (2, 15));
    assert!(problems[0].message.contains("playbooks in `"));
    assert!(problems[0].message.ends_with(": none"));
}

#[test]
fn a_triggered_playbook_needs_defaults_for_its_required_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let fix =
        "kind: playbook\nname: fix\nparams:\n  host: {required: true}\nsteps:\n  - wait: 1s\n";
    let rules = setup(
        dir.path(),
        RULES,
        &[("fix.yaml", fix), ("heal.yaml", &playbook("heal"))],
    );
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let problems = check_references(&rules, &scan.set);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("required parameter(s) host"),
        "{}",
        problems[0].message
    );
}

#[test]
fn an_invalid_playbook_is_reported_once_not_again_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "kind: playbook\nname: fix\nsteps:\n  - teleport: {}\n";
    let rules = setup(
        dir.path(),
        RULES,
        &[("fix.yaml", broken), ("heal.yaml", &playbook("heal"))],
    );
    let scan = scan_dir(&dir.path().join("playbooks"), &rules, &env());
    assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
    assert!(scan.problems.iter().all(|p| p.file.ends_with("fix.yaml")));
    assert!(check_references(&rules, &scan.set).is_empty());
}

#[test]
fn the_rules_directory_wins_over_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let rules = setup(dir.path(), "playbooks: {dir: ../pb}\n", &[]);
    let chosen = playbooks_dir(&rules, Some(Path::new("flag")));
    assert!(chosen.ends_with("rules/../pb"), "{}", chosen.display());
    let rules = setup(dir.path(), "checks: []\n", &[]);
    assert_eq!(
        playbooks_dir(&rules, Some(Path::new("flag"))),
        Path::new("flag")
    );
    assert_eq!(playbooks_dir(&rules, None), Path::new("playbooks"));
}
