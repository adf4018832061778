//! Loading whole rule sets from files.

use super::*;

fn load_str(files: &[(&str, &str)]) -> Result<RuleSet, Vec<Diagnostic>> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let env: BTreeMap<String, String> = [("PORT".to_string(), "9".to_string())].into();
    load_with_env(&[dir.path().to_path_buf()], &env)
}

#[test]
fn defaults_apply_to_the_checks_of_their_file_only() {
    let rules = load_str(&[
        ("a.yaml", "defaults: {timeout: 3s, service: orders, every: 1m}\nchecks:\n  - {name: a, kind: tcp, address: '127.0.0.1:${env:PORT}'}\n  - {name: b, kind: tcp, address: '127.0.0.1:1', schedule: '0 2 * * *', timeout: 1s}\n"),
        ("b.yaml", "checks:\n  - {name: c, kind: tcp, address: '127.0.0.1:1'}\n"),
    ])
    .unwrap();
    let a = rules.check("a").unwrap();
    assert_eq!(a.common.timeout, std::time::Duration::from_secs(3));
    assert_eq!(a.common.service.as_deref(), Some("orders"));
    assert_eq!(a.target.as_ref().unwrap().name, "127.0.0.1:9");
    let b = rules.check("b").unwrap();
    assert_eq!(b.common.timeout, std::time::Duration::from_secs(1));
    assert_eq!(
        (b.common.every, b.common.schedule.as_deref()),
        (None, Some("0 2 * * *")),
        "schedule overrides a default every"
    );
    let c = rules.check("c").unwrap();
    assert_eq!(
        (c.common.service.as_deref(), c.common.timeout),
        (None, std::time::Duration::from_secs(10))
    );
}

#[test]
fn a_valid_rule_set_has_targets_checks_and_a_revision() {
    let rules = load_str(&[(
        "r.yaml",
        "vars: {host: 127.0.0.1}\ntargets:\n  db: {kind: sqlite, url: 'sqlite://x.db'}\nchecks:\n  - {name: q, kind: sql, target: db, query: SELECT 1}\n  - {name: t, kind: tcp, address: '${var:host}:1'}\n",
    )])
    .unwrap();
    assert_eq!(rules.targets.len(), 1);
    assert_eq!(rules.checks.len(), 2);
    assert_eq!(
        rules.check("t").unwrap().target.as_ref().unwrap().name,
        "127.0.0.1:1"
    );
    assert_eq!(rules.revision.files.len(), 12);
}

#[test]
fn problems_in_several_files_are_all_reported_sorted() {
    let errs = load_str(&[
        ("a.yaml", "checks:\n  - {name: x, kind: nope}\n"),
        ("b.yaml", "checks: {}\n"),
    ])
    .unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].file.ends_with("a.yaml") && errs[1].file.ends_with("b.yaml"));
}
