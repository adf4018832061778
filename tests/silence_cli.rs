//! `patrol silence add | list | expire` as a user runs them, against a temporary SQLite store:
//! a silence added shows in the list, expiring it hides it from the default list and shows it
//! ended with `--all`, and bad input exits 2 naming what is wrong.

mod common;

use std::process::{Command, Output};

fn patrol(store: &str, args: &[&str]) -> Output {
    Command::new(common::patrol_bin())
        .args(["silence"])
        .args(args)
        .args(["--store", store])
        .env_remove("PATROL_STORE")
        .output()
        .expect("patrol runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a run that must exit 0.
fn ok(store: &str, args: &[&str]) -> String {
    let out = patrol(store, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The table row of silence `id`, if listed.
fn row<'a>(listing: &'a str, id: &str) -> Option<&'a str> {
    listing.lines().find(|l| l.contains(id))
}

fn temp_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("patrol.db").display());
    (dir, url)
}

#[test]
fn add_list_expire_and_list_all() {
    let (_dir, store) = temp_store();
    let added = ok(
        &store,
        &[
            "add",
            "--matcher",
            r#"service="orders""#,
            "--matcher",
            r#"env=~"prod|stage""#,
            "--duration",
            "2h",
            "--author",
            "ana",
            "--comment",
            "orders deploy",
        ],
    );
    let id = added.trim().to_string();
    assert!(!id.is_empty() && !id.contains(' '), "{added:?}");

    let listing = ok(&store, &["list"]);
    assert!(listing.trim_start().starts_with("ID"), "{listing}");
    let line = row(&listing, &id).unwrap_or_else(|| panic!("{id} not in\n{listing}"));
    for part in [
        "active",
        "ana",
        r#"service="orders", env=~"prod|stage""#,
        "orders deploy",
    ] {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }

    assert!(ok(&store, &["expire", &id]).contains(&id));
    assert!(row(&ok(&store, &["list"]), &id).is_none());
    let all = ok(&store, &["list", "--all"]);
    let line = row(&all, &id).unwrap_or_else(|| panic!("{id} not in\n{all}"));
    assert!(line.contains("expired"), "{line}");

    let again = patrol(&store, &["expire", &id]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("already ended"));
}

#[test]
fn until_sets_the_end_time() {
    let (_dir, store) = temp_store();
    let id = ok(
        &store,
        &[
            "add",
            "--matcher",
            "team=db",
            "--until",
            "2099-01-01T00:00:00Z",
            "--author",
            "bo",
            "--comment",
            "migration",
        ],
    );
    let listing = ok(&store, &["list"]);
    let line = row(&listing, id.trim()).unwrap();
    assert!(line.contains("2099-01-01T00:00:00Z"), "{line}");
    assert!(line.contains(r#"team="db""#), "{line}");
}

#[test]
fn bad_input_exits_2_and_stores_nothing() {
    let (_dir, store) = temp_store();
    let base = ["--duration", "1h", "--author", "ana", "--comment", "x"];
    let mut bad_matcher = vec!["add", "--matcher", r#"service="orders"#];
    bad_matcher.extend(base);
    let out = patrol(&store, &bad_matcher);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("column 9"), "{err}");

    let mut matches_everything = vec!["add", "--matcher", r#"env!="dev""#];
    matches_everything.extend(base);
    let out = patrol(&store, &matches_everything);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("matchers:"),
        "{}",
        text(&out.stderr)
    );

    let no_end = patrol(
        &store,
        &["add", "--matcher", "a=1", "--author", "a", "--comment", "c"],
    );
    assert_eq!(no_end.status.code(), Some(2));

    let listing = ok(&store, &["list", "--all"]);
    assert_eq!(listing.lines().count(), 1, "only the header: {listing}");

    let unknown = patrol(&store, &["expire", "no-such-id"]);
    assert_eq!(unknown.status.code(), Some(1));
}
