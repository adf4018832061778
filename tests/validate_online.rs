//! `patrol validate --online` on the built binary: reachable targets pass, an unreachable one is
//! reported at its definition as `file:line:col: error: …` with exit 2, and no password is printed.

mod common;

use std::process::Command;

fn validate_online(file: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(common::patrol_bin())
        .args(["validate", "--online"])
        .arg(file)
        .output()
        .expect("patrol runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn reachable_targets_pass() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  pg: {{ kind: postgres, url: \"{}\" }}\n  my: {{ kind: mysql, url: \"{}\" }}\n  cache: {{ kind: redis, url: \"{}\" }}\n",
            common::PG_ADMIN_URL,
            common::MYSQL_ADMIN_URL,
            common::REDIS_URL
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = validate_online(&file);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ok: 0 checks, 3 targets"), "{stdout}");
}

#[test]
fn an_unreachable_target_is_reported_at_its_definition() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    let port = closed_port();
    std::fs::write(
        &file,
        format!(
            "targets:\n  cache: {{ kind: redis, url: \"{}\" }}\n  orders-db:\n    kind: postgres\n    url: \"postgres://app:hunter2-secret@127.0.0.1:{port}/orders\"\n",
            common::REDIS_URL
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = validate_online(&file);
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let expected = format!(
        "{}:3:3: error: target \"orders-db\" (postgres at 127.0.0.1:{port}) unreachable: ",
        file.display()
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "only the unreachable target is reported:\n{stdout}"
    );
    assert!(
        lines[0].starts_with(&expected),
        "{:?}\nshould start with\n{expected:?}",
        lines[0]
    );
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "a password leaked:\n{stdout}\n{stderr}"
    );
}
