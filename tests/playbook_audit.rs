//! The audit trail of playbook runs: the store's round trip and listing on SQLite and PostgreSQL,
//! a real `patrol playbook run` (HTTP steps against a local axum server) read back through
//! `patrol playbook history|show`, the report files and the daemon's API — and a secret taken
//! from `${env:SECRET_TOKEN}` never reaching any of them.

mod common;
mod daemon_support;

use common::streams;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use chrono::{DateTime, Duration, TimeZone, Utc};
use patrol::playbook::{Attachment, PlaybookRun, RunStatus, StepRecord, StepStatus};
use patrol::store::{RunFilter, Store};
use serde_json::{Value, json};

use common::on_both_backends;

on_both_backends!(
    run_with_steps_and_attachments_reads_back,
    listing_filters_and_orders_newest_first,
    registered_secrets_never_reach_the_rows,
    retention_drops_old_finished_runs_with_their_steps,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

fn run(id: &str, playbook: &str, status: RunStatus, started_at: DateTime<Utc>) -> PlaybookRun {
    PlaybookRun {
        id: id.into(),
        playbook: playbook.into(),
        dry_run: false,
        status,
        params: BTreeMap::from([("service".into(), "orders".into())]),
        trigger: json!({"check": {"name": "api-up", "status": "crit"}, "alert": {"fingerprint": "f1"}}),
        started_by: "cli:alice".into(),
        key: Some(format!("{playbook}:orders")),
        approver: None,
        started_at,
        ended_at: None,
        steps: Vec::new(),
        error: None,
    }
}

fn step(name: &str, phase: &str, status: StepStatus, at: DateTime<Utc>) -> StepRecord {
    StepRecord {
        name: name.into(),
        kind: "http".into(),
        phase: phase.into(),
        status,
        description: format!("POST http://127.0.0.1:1/{name}"),
        input: json!({"method": "POST", "url": format!("http://127.0.0.1:1/{name}")}),
        output: json!({"status": 200, "body": "{}", "json": {}}),
        error: None,
        started_at: at,
        duration_ms: 12.5,
        approver: None,
        attachments: Vec::new(),
    }
}

fn attachment(name: &str, encoding: &str, body: &str) -> Attachment {
    Attachment {
        name: name.into(),
        content_type: "text/plain".into(),
        bytes: body.len(),
        encoding: encoding.into(),
        body: body.into(),
    }
}

async fn retention_drops_old_finished_runs_with_their_steps(url: &str) {
    let store = Store::open(url).await.unwrap();
    let old = t0() - Duration::days(40);
    for (id, status) in [
        ("old-done", RunStatus::Succeeded),
        ("old-running", RunStatus::Running),
    ] {
        store
            .save_playbook_run(&run(id, "fix-api", status, old))
            .await
            .unwrap();
        let record = step("probe", "steps", StepStatus::Ok, old);
        store.save_playbook_step(id, 0, &record).await.unwrap();
    }
    store
        .save_playbook_run(&run("recent", "fix-api", RunStatus::Failed, t0()))
        .await
        .unwrap();
    let counts = store.prune(t0() - Duration::days(30)).await.unwrap();
    assert_eq!(counts.playbook_runs, 1, "{counts:?}");
    assert!(store.playbook_run("old-done").await.unwrap().is_none());
    let running = store.playbook_run("old-running").await.unwrap().unwrap();
    assert_eq!(running.steps.len(), 1, "a running run keeps its steps");
    assert!(store.playbook_run("recent").await.unwrap().is_some());
}

async fn run_with_steps_and_attachments_reads_back(url: &str) {
    let store = Store::open(url).await.unwrap();
    let mut record = run("run-a", "fix-api", RunStatus::Running, t0());
    store.save_playbook_run(&record).await.unwrap();

    let mut heap = step("heap", "steps", StepStatus::Ok, t0());
    heap.attachments = vec![
        attachment("heap.txt", "text", "in use: 4 MiB\n"),
        attachment("heap.pprof", "base64", "H4sIAAAAAAAA/w=="),
    ];
    let mut restart = step(
        "restart",
        "steps",
        StepStatus::Failed,
        t0() + Duration::seconds(1),
    );
    restart.error = Some("POST http://127.0.0.1:1/restart answered 500".into());
    restart.approver = Some("cli:alice (--yes)".into());
    restart.output = Value::Null;
    let undo = step(
        "undo",
        "rollback",
        StepStatus::Ok,
        t0() + Duration::seconds(2),
    );
    // Saved out of order and one twice: the position decides, the last write wins.
    store.save_playbook_step("run-a", 2, &undo).await.unwrap();
    store.save_playbook_step("run-a", 0, &heap).await.unwrap();
    let mut first_try = restart.clone();
    first_try.error = Some("first".into());
    store
        .save_playbook_step("run-a", 1, &first_try)
        .await
        .unwrap();
    store
        .save_playbook_step("run-a", 1, &restart)
        .await
        .unwrap();

    record.status = RunStatus::RolledBack;
    record.error = Some("step `restart` failed".into());
    record.approver = Some("alice".into());
    record.ended_at = Some(t0() + Duration::milliseconds(2500));
    store.save_playbook_run(&record).await.unwrap();

    let back = store.playbook_run("run-a").await.unwrap().expect("stored");
    assert_eq!(back.status, RunStatus::RolledBack);
    assert_eq!(back.error.as_deref(), Some("step `restart` failed"));
    assert_eq!(back.approver.as_deref(), Some("alice"));
    assert_eq!(back.ended_at, record.ended_at);
    assert_eq!(back.started_at, t0());
    assert_eq!(back.params, record.params);
    assert_eq!(back.trigger, record.trigger);
    assert_eq!(back.key.as_deref(), Some("fix-api:orders"));
    assert_eq!(back.started_by, "cli:alice");
    let names: Vec<&str> = back.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["heap", "restart", "undo"]);
    assert_eq!(back.steps[0].attachments, heap.attachments);
    assert_eq!(back.steps[0].output, heap.output);
    assert_eq!(back.steps[0].input, heap.input);
    assert_eq!(back.steps[0].duration_ms, 12.5);
    assert_eq!(back.steps[1].status, StepStatus::Failed);
    assert_eq!(back.steps[1].error, restart.error);
    assert_eq!(back.steps[1].approver, restart.approver);
    assert_eq!(back.steps[1].output, Value::Null);
    assert_eq!(back.steps[2].phase, "rollback");
    assert_eq!(back.steps[2].started_at, t0() + Duration::seconds(2));

    assert!(store.playbook_run("no-such-run").await.unwrap().is_none());
}

async fn listing_filters_and_orders_newest_first(url: &str) {
    let store = Store::open(url).await.unwrap();
    let runs = [
        run("r1", "fix-api", RunStatus::Succeeded, t0()),
        run(
            "r2",
            "fix-api",
            RunStatus::RolledBack,
            t0() + Duration::hours(1),
        ),
        run("r3", "drain", RunStatus::Refused, t0() + Duration::hours(2)),
        run(
            "r4",
            "fix-api",
            RunStatus::Succeeded,
            t0() + Duration::hours(3),
        ),
    ];
    for r in &runs {
        store.save_playbook_run(r).await.unwrap();
    }
    store
        .save_playbook_step("r4", 0, &step("s", "steps", StepStatus::Ok, t0()))
        .await
        .unwrap();
    let ids = |found: Vec<PlaybookRun>| -> Vec<String> {
        assert!(
            found.iter().all(|r| r.steps.is_empty()),
            "lists carry no steps"
        );
        found.into_iter().map(|r| r.id).collect()
    };
    let all = store.playbook_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(ids(all), ["r4", "r3", "r2", "r1"]);
    let filter = |playbook: Option<&str>, status, since, limit| RunFilter {
        playbook: playbook.map(String::from),
        status,
        since,
        limit,
    };
    let of_fix = store
        .playbook_runs(&filter(Some("fix-api"), None, None, 10))
        .await
        .unwrap();
    assert_eq!(ids(of_fix), ["r4", "r2", "r1"]);
    let ok_fix = store
        .playbook_runs(&filter(
            Some("fix-api"),
            Some(RunStatus::Succeeded),
            None,
            10,
        ))
        .await
        .unwrap();
    assert_eq!(ids(ok_fix), ["r4", "r1"]);
    let recent = store
        .playbook_runs(&filter(None, None, Some(t0() + Duration::hours(1)), 10))
        .await
        .unwrap();
    assert_eq!(ids(recent), ["r4", "r3", "r2"]);
    let two = store
        .playbook_runs(&filter(None, None, None, 2))
        .await
        .unwrap();
    assert_eq!(ids(two), ["r4", "r3"]);
    let refused = store
        .playbook_runs(&filter(None, Some(RunStatus::Refused), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(refused), ["r3"]);
    let none = store
        .playbook_runs(&filter(Some("unknown"), None, None, 10))
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// Values registered as secrets are masked in every column, even when a caller hands the store
/// a record that was not redacted (text attachments included).
async fn registered_secrets_never_reach_the_rows(url: &str) {
    let secret = "store-secret-Zq81x";
    patrol::secrets::register(secret);
    let store = Store::open(url).await.unwrap();
    let mut record = run("r-secret", "fix-api", RunStatus::Failed, t0());
    record.params.insert("token".into(), secret.into());
    record.trigger = json!({"alert": {"url": format!("http://x/?t={secret}")}});
    record.error = Some(format!("login {secret} refused"));
    record.key = Some(format!("fix-api:{secret}"));
    store.save_playbook_run(&record).await.unwrap();
    let mut s = step("call", "steps", StepStatus::Failed, t0());
    s.input = json!({"headers": {"Authorization": format!("Bearer {secret}")}});
    s.output = json!({"body": format!("echo {secret}")});
    s.error = Some(format!("answered 401 for {secret}"));
    s.description = format!("GET http://x/?t={secret}");
    s.attachments = vec![attachment("dump", "text", &format!("env TOKEN={secret}"))];
    store.save_playbook_step("r-secret", 0, &s).await.unwrap();

    let back = store.playbook_run("r-secret").await.unwrap().unwrap();
    let text = serde_json::to_string(&back).unwrap();
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains(patrol::secrets::MASK));
    assert_eq!(back.params["service"], "orders", "other values are kept");
}

// ---------------------------------------------------------------------------------------------
// The real binary.

/// Every request the server saw: "METHOD /path authorization body".
type Seen = Arc<Mutex<Vec<String>>>;

/// `/echo` answers with the request body, `/fail` answers 500 quoting the Authorization header
/// (as a careless service would), anything else 200 `{}`.
async fn server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                log.lock()
                    .unwrap()
                    .push(format!("{method} {} {auth} {body}", uri.path()));
                match uri.path() {
                    "/echo" => (StatusCode::OK, format!(r#"{{"echo":"{body}"}}"#)),
                    "/fail" => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("refused for {auth}"),
                    ),
                    _ => (StatusCode::OK, "{}".to_string()),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// Rules whose `vars:` take the token from the environment, and a playbook using it in a header
/// (through the var) and in a parameter default (directly): an echo step, a failing step, and a
/// rollback.
fn write_playbook(dir: &Path, base: &str) -> (String, String) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("vars.yaml"),
        "vars:\n  token: \"${env:SECRET_TOKEN}\"\nchecks: []\n",
    )
    .unwrap();
    let playbook = dir.join("audited.yaml");
    std::fs::write(
        &playbook,
        format!(
            r#"kind: playbook
name: audited
params:
  service: {{ default: orders }}
  api_key: {{ default: "${{env:SECRET_TOKEN}}" }}
steps:
  - name: hello
    http:
      url: "{base}/hello?key={{{{ params.api_key }}}}"
      headers: {{ Authorization: "Bearer ${{var:token}}" }}
  - name: echo
    http: {{ method: POST, url: "{base}/echo", body: "key={{{{ params.api_key }}}}" }}
  - name: break
    http:
      method: POST
      url: "{base}/fail"
      headers: {{ Authorization: "Bearer {{{{ params.api_key }}}}" }}
    rollback:
      - name: never
        http: {{ method: POST, url: "{base}/never" }}
rollback:
  - name: undo
    http: {{ method: POST, url: "{base}/undo?svc={{{{ params.service }}}}" }}
"#
        ),
    )
    .unwrap();
    (rules.display().to_string(), playbook.display().to_string())
}

async fn patrol(dir: &Path, args: &[&str], secret: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("PATROL_STORE")
        .env_remove("SECRET_TOKEN");
    if let Some(secret) = secret {
        cmd.env("SECRET_TOKEN", secret);
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("patrol ends within a minute")
        .unwrap()
}

fn assert_no_secret(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what} holds the secret:\n{text}");
}

/// A secret unique to this test (long enough to be registered).
fn fresh_secret() -> String {
    format!("tok-{}", uuid::Uuid::new_v4().simple())
}

/// Runs the playbook through the binary against `store` with reports in `dir/reports`; the id.
async fn run_audited(dir: &Path, store: &str, secret: &str, base: &str) -> String {
    let (rules, playbook) = write_playbook(dir, base);
    let reports = dir.join("reports").display().to_string();
    let out = patrol(
        dir,
        &[
            "playbook",
            "run",
            &playbook,
            "--rules",
            &rules,
            "--store",
            store,
            "--yes",
            "--format",
            "json",
            "--report-dir",
            &reports,
        ],
        Some(secret),
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "rolled back: {}", streams(&out));
    assert_no_secret("playbook run's output", &streams(&out), secret);
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["status"], "rolled_back", "{}", streams(&out));
    record["id"].as_str().unwrap().to_string()
}

/// Every value of every column of the audit tables, as text, read with sqlx.
async fn sqlite_audit_text(path: &Path) -> String {
    use sqlx::{Connection, Row};
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mut all = String::new();
    for table in ["playbook_runs", "playbook_steps"] {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        let select = columns
            .iter()
            .map(|col| format!("CAST({col} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {select} FROM {table}")))
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{table} has rows");
        for row in rows {
            for i in 0..columns.len() {
                let v: Option<String> = row.try_get(i).unwrap();
                all.push_str(&v.unwrap_or_default());
                all.push('\n');
            }
        }
    }
    c.close().await.unwrap();
    all
}

/// The store's files as bytes (the database and its write-ahead log), lossily as text.
fn sqlite_file_bytes(path: &Path) -> String {
    let mut text = String::new();
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", path.display());
        if let Ok(bytes) = std::fs::read(&file) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[tokio::test]
async fn a_real_run_is_in_history_and_show_and_the_reports_without_its_secret() {
    let (base, seen) = server().await;
    let secret = fresh_secret();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let store = format!("sqlite://{}", db.display());
    let id = run_audited(dir.path(), &store, &secret, &base).await;

    // The secret was really used: the server saw it in the header, the body and the failing call.
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().filter(|r| r.contains(&secret)).count() >= 3,
        "{requests:#?}"
    );
    assert!(requests.iter().any(|r| r.starts_with("POST /undo")));
    assert!(
        !requests.iter().any(|r| r.starts_with("POST /never")),
        "break failed: nothing to undo"
    );

    // The stored rows, read directly.
    let columns = sqlite_audit_text(&db).await;
    assert_no_secret("the audit rows", &columns, &secret);
    assert!(
        columns.contains(patrol::secrets::MASK),
        "masked, not dropped:\n{columns}"
    );
    assert!(columns.contains(&id));
    assert_no_secret("the SQLite files", &sqlite_file_bytes(&db), &secret);

    // history: table and JSON.
    let dir_path = dir.path();
    let out = patrol(dir_path, &["playbook", "history", "--store", &store], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.contains("audited") && table.contains("rolled_back") && table.contains(&id),
        "{table}"
    );
    assert_no_secret("history", &table, &secret);

    let out = patrol(
        dir_path,
        &[
            "playbook",
            "history",
            "--store",
            &store,
            "--playbook",
            "audited",
            "--status",
            "rolled_back",
            "--since",
            "1h",
            "--limit",
            "5",
            "--format",
            "json",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_no_secret("history --format json", &listed.to_string(), &secret);

    let out = patrol(
        dir_path,
        &[
            "playbook",
            "history",
            "--store",
            &store,
            "--status",
            "succeeded",
        ],
        None,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no playbook runs"),
        "{}",
        streams(&out)
    );

    // show: the Markdown report and the full JSON record.
    let out = patrol(
        dir_path,
        &[
            "playbook",
            "show",
            &id,
            "--store",
            &store,
            "--format",
            "markdown",
            "--external-url",
            "https://patrol.example/",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_no_secret("show --format markdown", &md, &secret);
    for needle in [
        "### Playbook `audited`",
        "`hello` (http) ok",
        "`break` (http) FAILED",
        "**Rollback**",
        "`undo` (http) ok",
        "**Result:** FAILED, rolled back",
        &format!("https://patrol.example/api/v1/playbook-runs/{id}"),
    ] {
        assert!(md.contains(needle), "{needle:?} in\n{md}");
    }
    assert!(md.find("**Steps**") < md.find("**Rollback**"));

    let out = patrol(
        dir_path,
        &[
            "playbook", "show", &id, "--store", &store, "--format", "json",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_no_secret("show --format json", &shown.to_string(), &secret);
    let names: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello", "echo", "break", "undo"]);
    assert_eq!(shown["steps"][2]["status"], "failed");
    assert!(
        shown["steps"][1]["output"]["body"]
            .as_str()
            .unwrap()
            .contains(patrol::secrets::MASK)
    );

    let out = patrol(
        dir_path,
        &["playbook", "show", "nope", "--store", &store],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no playbook run \"nope\""));

    // --report-dir wrote both reports.
    let stem = dir.path().join("reports").join(format!("audited-{id}"));
    let json_report = std::fs::read_to_string(stem.with_extension("json")).unwrap();
    let md_report = std::fs::read_to_string(stem.with_extension("md")).unwrap();
    assert_no_secret("the JSON report", &json_report, &secret);
    assert_no_secret("the Markdown report", &md_report, &secret);
    let report: Value = serde_json::from_str(&json_report).unwrap();
    assert_eq!(report["result"]["status"], "rolled_back");
    assert_eq!(report["rollback"][0]["name"], "undo");
    assert!(md_report.contains("**Rollback**"));
}

#[tokio::test]
async fn the_api_lists_and_shows_runs_without_their_secret() {
    let (base, _seen) = server().await;
    let secret = fresh_secret();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("d.db").display());
    let id = run_audited(dir.path(), &store, &secret, &base).await;

    // The daemon over the same store; it never sees SECRET_TOKEN, so it could not mask it.
    let (port, _) = daemon_support::target_server().await;
    let check = daemon_support::http_check("up", port, "/ok", "every: 1h");
    std::fs::write(
        dir.path().join("rules").join("vars.yaml"),
        daemon_support::checks_yaml(&[check]),
    )
    .unwrap();
    let daemon = daemon_support::DaemonProcess::start_in(dir, &[]).await;
    let get = |path: String| {
        let http = daemon.http.clone();
        let url = daemon.url(&path);
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, ctype, r.text().await.unwrap())
        }
    };

    let (status, _, body) = get("/api/v1/playbook-runs".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_no_secret("the run list", &body, &secret);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["runs"][0]["id"], id.as_str());
    assert_eq!(list["runs"][0]["status"], "rolled_back");

    let (_, _, body) =
        get("/api/v1/playbook-runs?playbook=audited&status=rolled_back&since=1h&limit=1".into())
            .await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{body}");
    let (_, _, body) = get("/api/v1/playbook-runs?playbook=other".into()).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert!(list["runs"].as_array().unwrap().is_empty(), "{body}");
    let (status, _, body) = get("/api/v1/playbook-runs?status=bogus".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bogus"));

    let (status, ctype, body) = get(format!("/api/v1/playbook-runs/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert_no_secret("the run", &body, &secret);
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["steps"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(shown["steps"][3]["phase"], "rollback");

    let (status, ctype, md) = get(format!("/api/v1/playbook-runs/{id}?format=markdown")).await;
    assert_eq!(status, 200, "{md}");
    assert!(ctype.starts_with("text/markdown"), "{ctype}");
    assert_no_secret("the Markdown report", &md, &secret);
    assert!(md.contains("**Result:** FAILED, rolled back"), "{md}");
    assert!(
        md.contains(&daemon.url(&format!("/api/v1/playbook-runs/{id}"))),
        "links point at the daemon:\n{md}"
    );

    let (status, _, body) = get("/api/v1/playbook-runs/no-such-run".into()).await;
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("no playbook run \"no-such-run\""),
        "{body}"
    );
}
