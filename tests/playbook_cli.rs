//! `patrol playbook run` end to end with the real binary against a real HTTP server (axum on a
//! random loopback port) and real processes: templates over params and captures, `when`,
//! rollback, dry run, the exec allowlist (the rules' `playbooks.exec_allow`) and approvals.

mod common;
mod kube_support;

use common::streams;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use serde_json::Value;

/// Every request the server saw: "METHOD /path body".
type Seen = Arc<Mutex<Vec<String>>>;

/// A server that records every request: `/status` answers JSON, `/fail` answers 500, `/tickets`
/// answers 201 with a ticket number, anything else 200.
async fn server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: String| {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push(format!("{method} {} {body}", uri.path()));
            match uri.path() {
                "/status" => (StatusCode::OK, r#"{"id":"abc-1","lag":42}"#.to_string()),
                "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string()),
                "/tickets" => (StatusCode::CREATED, r#"{"ticket":7}"#.to_string()),
                _ => (StatusCode::OK, "{}".to_string()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A rules file `rules.yaml` in `dir` allowing `exec_allow` (the rules' `playbooks:` section),
/// as `--rules` arguments.
fn allow_exec(dir: &Path, exec_allow: &[&str]) -> [String; 2] {
    let path = write(
        dir,
        "rules.yaml",
        &format!("playbooks:\n  exec_allow: [{}]\n", exec_allow.join(", ")),
    );
    ["--rules".to_string(), path.display().to_string()]
}

async fn patrol(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .arg("playbook")
        .arg("run")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", streams(out)))
}

fn statuses(run: &Value) -> Vec<(String, String)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn seen(log: &Seen) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// A diagnose-and-ticket playbook: a GET with captures, a templated POST, a real `echo`, a
/// `touch` that leaves a file behind, a last POST carrying the echo's output.
fn diagnose(base: &str) -> String {
    format!(
        r#"kind: playbook
name: diagnose
params:
  service: {{ required: true }}
  mode: {{ default: diagnose }}
steps:
  - name: status
    http: {{ url: "{base}/status", capture: {{ id: /id, lag: /lag }} }}
  - name: ticket
    http:
      method: POST
      url: "{base}/tickets"
      status: 201
      body: "svc={{{{ params.service }}}} id={{{{ steps.status.id }}}} lag={{{{ steps.status.lag }}}}"
  - name: say
    exec: {{ command: [echo, "ticket {{{{ steps.ticket.json.ticket }}}}"] }}
  - name: mark
    exec: {{ command: [touch, marker] }}
  - name: fix
    when: "params.mode == 'fix'"
    http: {{ method: POST, url: "{base}/restart" }}
  - name: note
    http: {{ method: POST, url: "{base}/notes", body: "{{{{ steps.say.stdout | trim }}}}" }}
"#
    )
}

#[tokio::test]
async fn params_and_captures_flow_through_templates_and_when_skips() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "diagnose.yaml", &diagnose(&base));
    let [rules_flag, rules] = allow_exec(dir.path(), &["echo", "touch"]);
    let out = patrol(
        dir.path(),
        &[
            file.to_str().unwrap(),
            &rules_flag,
            &rules,
            "--param",
            "service=orders",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let run = json_of(&out);
    assert_eq!(run["status"], "succeeded");
    let want: Vec<(String, String)> = [
        ("status", "ok"),
        ("ticket", "ok"),
        ("say", "ok"),
        ("mark", "ok"),
        ("fix", "skipped"),
        ("note", "ok"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses(&run), want);
    assert_eq!(
        seen(&log),
        vec![
            "GET /status ".to_string(),
            "POST /tickets svc=orders id=abc-1 lag=42".to_string(),
            "POST /notes ticket 7".to_string(),
        ]
    );
    assert!(
        dir.path().join("marker").exists(),
        "exec runs in the playbook's directory"
    );
}

#[tokio::test]
async fn dry_run_runs_only_what_has_no_side_effect() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "diagnose.yaml", &diagnose(&base));
    let [rules_flag, rules] = allow_exec(dir.path(), &["echo", "touch"]);
    // Looked up by name in --playbooks.
    let out = patrol(
        dir.path(),
        &[
            "diagnose",
            "--playbooks",
            ".",
            &rules_flag,
            &rules,
            "--param",
            "service=orders",
            "--param",
            "mode=fix",
            "--dry-run",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let run = json_of(&out);
    let got = statuses(&run);
    let want: Vec<(String, String)> = [
        ("status", "ok"),
        ("ticket", "planned"),
        ("say", "planned"),
        ("mark", "planned"),
        ("fix", "planned"),
        ("note", "planned"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    // Rendered although not sent: the plan shows what would be posted.
    assert_eq!(
        run["steps"][1]["input"]["body"],
        "svc=orders id=abc-1 lag=42"
    );
    assert_eq!(seen(&log), vec!["GET /status ".to_string()]);
    assert!(!dir.path().join("marker").exists(), "no command ran");
}

#[tokio::test]
async fn a_failing_step_runs_the_rollback_and_exits_1() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "fix.yaml",
        &format!(
            r#"kind: playbook
name: fix
params: {{ service: {{ default: orders }} }}
steps:
  - {{ name: before, http: {{ method: POST, url: "{base}/before" }} }}
  - {{ name: broken, http: {{ method: POST, url: "{base}/fail" }} }}
  - {{ name: after, http: {{ method: POST, url: "{base}/after" }} }}
rollback:
  - {{ name: undo, http: {{ method: POST, url: "{base}/undo", body: "undo {{{{ params.service }}}} after {{{{ steps.broken.error is defined }}}}" }} }}
  - name: undo-file
    exec: {{ command: "echo undone > undone.txt", shell: true }}
"#
        ),
    );
    let [rules_flag, rules] = allow_exec(dir.path(), &["sh"]);
    let out = patrol(dir.path(), &[file.to_str().unwrap(), &rules_flag, &rules]).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAILED, rolled back"), "{}", streams(&out));
    assert!(
        stdout.contains("answered 500, expected 2xx"),
        "{}",
        streams(&out)
    );
    assert_eq!(
        seen(&log),
        vec![
            "POST /before ".to_string(),
            "POST /fail ".to_string(),
            "POST /undo undo orders after True".to_string(),
        ]
    );
    let undone = std::fs::read_to_string(dir.path().join("undone.txt")).unwrap();
    assert_eq!(undone.trim(), "undone");
}

#[tokio::test]
async fn on_error_continue_goes_on_and_stop_does_not_roll_back() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "tolerant.yaml",
        &format!(
            r#"kind: playbook
name: tolerant
steps:
  - {{ name: maybe, on_error: continue, http: {{ method: POST, url: "{base}/fail" }} }}
  - {{ name: branch, when: "steps.maybe.error is defined", http: {{ method: POST, url: "{base}/fallback" }} }}
  - {{ name: halt, on_error: stop, http: {{ method: POST, url: "{base}/fail" }} }}
  - {{ name: never, http: {{ method: POST, url: "{base}/never" }} }}
rollback:
  - {{ name: undo, http: {{ method: POST, url: "{base}/undo" }} }}
"#
        ),
    );
    let out = patrol(dir.path(), &[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    assert_eq!(json_of(&out)["status"], "failed");
    assert_eq!(
        seen(&log),
        vec![
            "POST /fail ".to_string(),
            "POST /fallback ".to_string(),
            "POST /fail ".to_string(),
        ]
    );
}

#[tokio::test]
async fn exec_outside_exec_allow_is_refused_at_validation() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "rm.yaml",
        &format!(
            "kind: playbook\nname: rm\nsteps:\n  - {{ http: {{ method: POST, url: \"{base}/x\" }} }}\n  - exec: {{ command: [rm, -rf, data] }}\n  - exec: {{ command: \"echo hi\", shell: true }}\n"
        ),
    );
    let [rules_flag, rules] = allow_exec(dir.path(), &["echo"]);
    let out = patrol(dir.path(), &[file.to_str().unwrap(), &rules_flag, &rules]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        stderr.contains(&format!(
            "{f}:5:22: error: `rm` is not in `playbooks.exec_allow` of the rules (echo)"
        )),
        "{}",
        streams(&out)
    );
    assert!(
        stderr.contains(&format!(
            "{f}:6:22: error: `sh` is not in `playbooks.exec_allow` of the rules"
        )),
        "a shell is only allowed when sh is: {}",
        streams(&out)
    );
    assert!(seen(&log).is_empty(), "nothing ran");
}

#[tokio::test]
async fn invalid_playbooks_report_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        "kind: playbook\nname: bad\nsteps:\n  - teleport: { to: mars }\n  - http: { url: \"{{ params.x \" }\n  - { check: nowhere }\n  - name: w\n    when: \"a ==\"\n    wait: 1s\n    colour: red\n",
    );
    let out = patrol(dir.path(), &[file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    for want in [
        format!("{f}:4:5: error: unknown field `teleport` for a step"),
        format!("{f}:5:18: error: template syntax error"),
        format!("{f}:6:14: error: unknown check `nowhere`"),
        format!("{f}:8:11: error: `when`: expression syntax error"),
        format!("{f}:10:5: error: unknown field `colour` for a step"),
    ] {
        assert!(stderr.contains(&want), "want {want}\n{}", streams(&out));
    }
}

#[tokio::test]
async fn an_unapproved_step_waits_for_its_approval_and_missing_params_are_refused() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "restart.yaml",
        &format!(
            "kind: playbook\nname: restart\nparams: {{ service: {{ required: true }} }}\nsteps:\n  - {{ name: first, http: {{ method: POST, url: \"{base}/first\" }} }}\n  - {{ name: restart, approve: true, http: {{ method: POST, url: \"{base}/restart/{{{{ params.service }}}}\" }} }}\n"
        ),
    );
    let path = file.to_str().unwrap();
    let out = patrol(dir.path(), &[path, "--yes"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("parameter `service` is required"),
        "{}",
        streams(&out)
    );
    assert!(seen(&log).is_empty(), "nothing ran without its params");
    // No terminal and no --yes: the approval is asked through the store and its link printed;
    // nobody decides, so the step fails once it times out.
    let out = patrol(
        dir.path(),
        &[
            path,
            "--param",
            "service=orders",
            "--approval-timeout",
            "1s",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http://127.0.0.1:9464/api/v1/approvals/") && stderr.contains("?token="),
        "{}",
        streams(&out)
    );
    let run = json_of(&out);
    assert_eq!(
        run["steps"][1]["error"],
        "approval of step restart timed out after 1s"
    );
    assert_eq!(seen(&log), vec!["POST /first ".to_string()]);
    let out = patrol(dir.path(), &[path, "--yes", "--param", "service=orders"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(
        seen(&log),
        vec![
            "POST /first ".to_string(),
            "POST /first ".to_string(),
            "POST /restart/orders ".to_string()
        ]
    );
}

#[tokio::test]
async fn a_check_step_runs_the_check_now_and_later_steps_branch_on_its_status() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    write(
        &dir.path().join("rules"),
        "api.yaml",
        &format!(
            "targets:\n  api: {{ kind: http, url: \"{base}\" }}\nchecks:\n  - {{ name: healthy, kind: http, target: api, request: {{ path: /status }}, expect: {{ status: 200 }} }}\n  - {{ name: broken, kind: http, target: api, request: {{ path: /fail }}, expect: {{ status: 200 }} }}\n"
        ),
    );
    let file = write(
        dir.path(),
        "verify.yaml",
        &format!(
            r#"kind: playbook
name: verify
steps:
  - {{ name: good, check: healthy }}
  - {{ name: bad, check: broken, on_error: continue }}
  - name: report
    when: "steps.bad.error is defined"
    http: {{ method: POST, url: "{base}/report", body: "good={{{{ steps.good.status }}}}" }}
"#
        ),
    );
    let out = patrol(dir.path(), &[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let run = json_of(&out);
    assert_eq!(run["steps"][1]["status"], "failed");
    let error = run["steps"][1]["error"].as_str().unwrap();
    assert!(error.starts_with("check broken is crit"), "{error}");
    assert_eq!(
        seen(&log),
        vec![
            "GET /status ".to_string(),
            "GET /fail ".to_string(),
            "POST /report good=ok".to_string(),
        ]
    );
}

#[test]
fn the_example_playbook_is_valid_and_dry_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .current_dir(root)
        .args(["playbook", "run", "mysql-lag-diagnose", "--dry-run"])
        // The repository's rules/ allow its `date`; the store is not left behind in the tree.
        .args(["--store", "sqlite::memory:"])
        .args(["--param", "mode=fix", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let run = json_of(&out);
    let got = statuses(&run);
    let planned = got.iter().filter(|(_, s)| s == "planned").count();
    assert_eq!(planned, 3, "{got:?}");
}

#[tokio::test]
async fn exec_gets_its_env_and_the_playbook_timeout_bounds_the_run() {
    let (base, log) = server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "slow.yaml",
        &format!(
            r#"kind: playbook
name: slow
timeout: 1s
steps:
  - name: greet
    exec: {{ command: [sh, -c, "echo $GREETING"], env: {{ GREETING: "hello {{{{ params.who }}}}" }} }}
  - {{ name: echo, http: {{ method: POST, url: "{base}/greet", body: "{{{{ steps.greet.stdout | trim }}}}" }} }}
  - {{ name: stall, wait: 30s }}
  - {{ name: never, http: {{ method: POST, url: "{base}/never" }} }}
params: {{ who: {{ default: world }} }}
"#
        ),
    );
    let started = std::time::Instant::now();
    let [rules_flag, rules] = allow_exec(dir.path(), &["sh"]);
    let out = patrol(
        dir.path(),
        &[
            file.to_str().unwrap(),
            &rules_flag,
            &rules,
            "--format",
            "json",
        ],
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let run = json_of(&out);
    // Running out of time rolls back (there is nothing to undo here).
    assert_eq!(run["status"], "rolled_back");
    assert_eq!(run["error"], "the playbook timed out after 1s");
    assert_eq!(seen(&log), vec!["POST /greet hello world".to_string()]);
}

#[tokio::test]
async fn a_kubernetes_step_is_a_server_side_dry_run_under_dry_run() {
    let k = kube_support::Cluster::start().await;
    if k.skip_on_real_cluster("it reads the in-process server's store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    write(
        &dir.path().join("rules"),
        "k8s.yaml",
        &k.targets_yaml("k8s"),
    );
    let file = write(
        dir.path(),
        "scale.yaml",
        "kind: playbook\nname: scale\nparams: { app: { default: checkout } }\nsteps:\n  - name: down\n    kubernetes: { target: k8s, action: scale, name: \"{{ params.app }}\", replicas: 1 }\n",
    );
    let replicas = |k: &kube_support::Cluster| {
        k.store()
            .get("apps", "deployments", &k.namespace, "checkout")
            .unwrap()["spec"]["replicas"]
            .clone()
    };
    let path = file.to_str().unwrap();
    let out = patrol(dir.path(), &[path, "--dry-run", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(json_of(&out)["steps"][0]["output"]["previous"], 3);
    assert_eq!(replicas(&k), 3, "a dry run changes nothing");
    let out = patrol(dir.path(), &[path, "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(replicas(&k), 1);
}

#[tokio::test]
async fn a_templated_program_is_checked_against_exec_allow_once_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "prog.yaml",
        "kind: playbook\nname: prog\nparams: { prog: { default: touch } }\nsteps:\n  - { name: run, exec: { command: [\"{{ params.prog }}\", made] } }\n",
    );
    let path = file.to_str().unwrap();
    let [rules_flag, rules] = allow_exec(dir.path(), &["touch"]);
    let out = patrol(
        dir.path(),
        &[
            path,
            &rules_flag,
            &rules,
            "--param",
            "prog=rm",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let error = json_of(&out)["steps"][0]["error"].clone();
    assert!(
        error
            .as_str()
            .unwrap()
            .contains("`rm` is not in `playbooks.exec_allow` of the rules (touch)"),
        "{error}"
    );
    let out = patrol(dir.path(), &[path, &rules_flag, &rules]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert!(dir.path().join("made").exists());
}
