//! Black-box tests of the built `patrol` binary: exit codes, output formats, selection, baselines
//! that survive between processes, and secrets that never leave the process. Real HTTP server
//! (axum on a random loopback port), real SQLite files.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// An HTTP server on 127.0.0.1 (random port) answering `/health` with a JSON body; runs until the
/// test process ends.
fn http_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/health",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    port
}

fn write_rules(dir: &Path, yaml: &str) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("checks.yaml"), yaml).unwrap();
    rules
}

fn patrol(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::patrol_bin());
    cmd.current_dir(dir)
        .args(args)
        .env_remove("PATROL_STORE")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn gauge_rules(db: &Path, extra: &str) -> String {
    format!(
        r#"
targets:
  data: {{kind: sqlite, url: "sqlite://{}"}}
checks:
  - name: gauge
    kind: sql
    target: data
    query: "SELECT name, v FROM gauge ORDER BY name"
    value: v
    series: name
    labels: {{tier: core}}
{extra}
  - name: api
    kind: http
    url: "http://127.0.0.1:{}/health"
    expect: {{json: {{"$.status": eq("UP")}}}}
    labels: {{tier: edge}}
"#,
        db.display(),
        http_server()
    )
}

#[tokio::test]
async fn run_prints_json_lines_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 1.0), ("b", 2.0)]).await;
    write_rules(dir.path(), &gauge_rules(&db, ""));
    let out = patrol(
        dir.path(),
        &["run", "--format", "json", "--store", "sqlite://store.db"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "one line per series and check: {lines:#?}");
    for key in [
        "check",
        "kind",
        "target",
        "series",
        "status",
        "value",
        "unit",
        "duration_ms",
        "message",
        "baseline",
        "shadow",
        "service",
        "labels",
        "revision",
        "started_at",
    ] {
        assert!(lines.iter().all(|l| l.get(key).is_some()), "missing {key}");
    }
    let b = lines.iter().find(|l| l["series"] == "b").unwrap();
    assert_eq!(
        (
            b["check"].as_str(),
            b["value"].as_f64(),
            b["status"].as_str()
        ),
        (Some("gauge"), Some(2.0), Some("ok"))
    );
    assert!(dir.path().join("store.db").exists());
}

#[tokio::test]
async fn crit_fails_the_run_but_shadow_only_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 10.0)]).await;
    write_rules(dir.path(), &gauge_rules(&db, "    crit: gt(5)"));
    let out = patrol(dir.path(), &["run", "--store", "sqlite://s.db"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("value 10 matches crit gt(5)"),
        "{}",
        text(&out)
    );

    write_rules(
        dir.path(),
        &gauge_rules(&db, "    crit: gt(5)\n    mode: shadow"),
    );
    let out = patrol(
        dir.path(),
        &["run", "--format", "json", "--store", "sqlite://s.db"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let gauge = json_lines(&out)
        .into_iter()
        .find(|l| l["check"] == "gauge")
        .unwrap();
    assert_eq!(
        (gauge["status"].as_str(), gauge["shadow"].as_bool()),
        (Some("crit"), Some(true))
    );
}

#[tokio::test]
async fn selection_by_name_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 1.0)]).await;
    write_rules(dir.path(), &gauge_rules(&db, ""));
    let checks = |out: &Output| {
        json_lines(out)
            .iter()
            .map(|l| l["check"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let selected = |extra: &[&str]| {
        let args = [
            &["run", "--format", "json", "--store", "sqlite://s.db"],
            extra,
        ]
        .concat();
        checks(&patrol(dir.path(), &args, &[]))
    };
    assert_eq!(selected(&["--check", "api"]), vec!["api"]);
    assert_eq!(selected(&["--tag", "tier=core"]), vec!["gauge"]);
    let out = patrol(
        dir.path(),
        &["run", "--store", "sqlite://s.db", "--check", "nope"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown check(s): nope"));
}

#[tokio::test]
async fn invalid_rules_exit_2_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        "checks:\n  - name: x\n    kind: tcp\n    address: 127.0.0.1:1\n    crit: gt(\n",
    );
    let out = patrol(dir.path(), &["run", "--store", "sqlite://s.db"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("rules/checks.yaml:5:11: error: condition"),
        "{}",
        text(&out)
    );
    assert!(
        !dir.path().join("s.db").exists(),
        "nothing may run, not even the store"
    );
}

#[tokio::test]
async fn baselines_survive_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite_gauge_db(dir.path(), &[("a", 10.0)]).await;
    write_rules(
        dir.path(),
        &gauge_rules(&db, "    baseline: {alpha: 0.5, k: 3, warmup: 3}"),
    );
    let run = || {
        patrol(
            dir.path(),
            &[
                "run",
                "--format",
                "json",
                "--store",
                "sqlite://s.db",
                "--check",
                "gauge",
            ],
            &[],
        )
    };
    for n in 0..4u64 {
        let out = run();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let l = &json_lines(&out)[0];
        if n == 0 {
            assert!(
                l["baseline"].is_null(),
                "nothing learned before the first run: {l}"
            );
        } else {
            assert_eq!(
                l["baseline"]["samples"].as_u64(),
                Some(n),
                "run {n} judged against {n} stored samples: {l}"
            );
            assert_eq!(l["baseline"]["mean"].as_f64(), Some(10.0));
        }
    }
    common::sqlite_gauge_db(dir.path(), &[("a", 1000.0)]).await;
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a baseline warning does not fail the run: {}",
        text(&out)
    );
    let l = &json_lines(&out)[0];
    assert_eq!(l["status"], "warn");
    assert!(
        l["message"]
            .as_str()
            .unwrap()
            .starts_with("value 1000 outside baseline [10, 10] (mean 10, σ 0, 4 samples)"),
        "{l}"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_output_logs_or_store() {
    const SECRET: &str = "Zq9-very-secret-Token-771";
    // Written into the file itself: not substituted, but a URL password all the same.
    const LITERAL: &str = "Literal-Pw-9931";
    const LITERAL_INLINE: &str = "Inline-Pw-5521";
    let dir = tempfile::tempdir().unwrap();
    let port = http_server();
    write_rules(
        dir.path(),
        &format!(
            r#"
targets:
  api: {{kind: http, url: "http://127.0.0.1:{port}", headers: {{Authorization: "Bearer ${{env:PATROL_TEST_TOKEN}}"}}}}
  db: {{kind: postgres, url: "postgres://app:${{env:PATROL_TEST_TOKEN}}@127.0.0.1:1/app"}}
  literal: {{kind: mysql, url: "mysql://app:{LITERAL}@127.0.0.1:1/app"}}
checks:
  - name: with-header
    kind: http
    target: api
    request: {{path: /health}}
    labels: {{token: "${{env:PATROL_TEST_TOKEN}}"}}
  - name: refused-url
    kind: http
    url: "http://127.0.0.1:1/${{env:PATROL_TEST_TOKEN}}"
  - name: refused-literal
    kind: sql
    target: literal
    query: SELECT 1
    labels: {{dsn: "mysql://app:{LITERAL}@127.0.0.1:1/app"}}
  - name: refused-inline
    kind: redis
    url: "redis://:{LITERAL_INLINE}@127.0.0.1:1"
    labels: {{dsn: "redis://:{LITERAL_INLINE}@127.0.0.1:1"}}
    command: PING
  - name: refused-db
    kind: sql
    target: db
    query: SELECT 1
    timeout: 3s
"#
        ),
    );
    let env = [("PATROL_TEST_TOKEN", SECRET), ("RUST_LOG", "debug")];
    let outputs = [
        patrol(
            dir.path(),
            &["run", "--format", "json", "--store", "sqlite://s.db"],
            &env,
        ),
        patrol(dir.path(), &["run", "--store", "sqlite://s.db"], &env),
        patrol(dir.path(), &["validate", "rules", "--online"], &env),
    ];
    for out in &outputs {
        let all = text(out);
        assert!(!all.contains(SECRET), "secret leaked:\n{all}");
        for pw in [LITERAL, LITERAL_INLINE] {
            assert!(!all.contains(pw), "URL password {pw} leaked:\n{all}");
        }
    }
    let lines = json_lines(&outputs[0]);
    let refused = lines.iter().find(|l| l["check"] == "refused-url").unwrap();
    assert_eq!(refused["status"], "error");
    assert!(
        refused["target"].as_str().unwrap().contains("••••••"),
        "{refused}"
    );
    let store = std::fs::read(dir.path().join("s.db")).unwrap();
    let needle = SECRET.as_bytes();
    let literal = LITERAL.as_bytes();
    assert!(
        !store.windows(literal.len()).any(|w| w == literal),
        "URL password written to the store"
    );
    assert!(
        !store.windows(needle.len()).any(|w| w == needle),
        "secret written to the store"
    );
}

#[test]
fn schema_describes_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let out = patrol(dir.path(), &["schema"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = schema["properties"]["checks"]["items"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, patrol::probe::ProbeSpec::KINDS);
    assert!(kinds.contains(&"kubernetes"), "{kinds:?}");
}

#[test]
fn validate_prints_the_revision_with_the_git_commit() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        "checks:\n  - name: x\n    kind: tcp\n    address: 127.0.0.1:1\n",
    );
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .current_dir(dir.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    let before = patrol(dir.path(), &["validate", "rules"], &[]);
    assert_eq!(before.status.code(), Some(0), "{}", text(&before));
    assert!(!text(&before).contains("@git:"));
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "rules"]);
    let after = patrol(dir.path(), &["validate", "rules"], &[]);
    let out = text(&after);
    assert!(
        out.starts_with("ok: 1 checks, 0 targets in 1 files (revision "),
        "{out}"
    );
    assert!(out.contains("@git:") && !out.contains("-dirty"), "{out}");
}
