//! The playbook step kinds `sql`, `redis`, `capture`, `isolate`, `notify` and `wait: {until_check}`
//! end to end: the real binary (`patrol playbook run FILE --rules RULES --store … --yes`) against
//! real PostgreSQL, MariaDB, SQLite, Redis and HTTP servers (axum on loopback), every effect
//! checked on the server's own state.

mod common;

use common::streams;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use serde_json::Value;
use sqlx::Connection;

// ---------------------------------------------------------------------------------------------
// Running the binary.

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `patrol playbook run PLAYBOOK --rules RULES --store sqlite://DIR/p.db --yes --format json EXTRA…`.
async fn run(dir: &Path, playbook: &str, rules: &str, extra: &[&str]) -> Output {
    let file = write(dir, "pb.yaml", playbook);
    let rules = write(dir, "rules.yaml", rules);
    let store = format!("sqlite://{}", dir.join("p.db").display());
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(["playbook", "run"])
        .arg(&file)
        .arg("--rules")
        .arg(&rules)
        .args(["--store", &store, "--yes", "--format", "json"])
        .args(extra)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("patrol playbook run finishes within a minute")
        .unwrap()
}

/// The run record of a run that exited with `code`.
fn record(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", streams(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", streams(out)))
}

/// The step `name` of a run record.
fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run:#}"))
}

/// The stderr of a playbook refused at validation (exit 2).
fn refusal(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", streams(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `file:line:col` of the first `needle` in `text` (1-based), as diagnostics print it.
fn position(file: &str, text: &str, needle: &str) -> String {
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"));
    format!("{file}:{line}:{col}")
}

// ---------------------------------------------------------------------------------------------
// SQL on the three databases.

/// One database under test: its URL for patrol (a target) and for the test's own connection.
struct Db {
    kind: &'static str,
    /// The target's URL.
    url: String,
    /// The placeholder of the first parameter (`$1` or `?`).
    first_param: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn postgres() -> Db {
        Db {
            kind: "postgres",
            url: common::fresh_pg_database().await,
            first_param: "$1",
            _dir: None,
        }
    }

    async fn mariadb() -> Db {
        Db {
            kind: "mysql",
            url: common::fresh_mysql_database().await,
            first_param: "?",
            _dir: None,
        }
    }

    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let url = format!("sqlite://{}", path.display());
        Db {
            kind: "sqlite",
            url,
            first_param: "?",
            _dir: Some(dir),
        }
    }

    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let url = if self.kind == "sqlite" {
            format!("{}?mode=rwc", self.url)
        } else {
            self.url.clone()
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }

    /// A fresh `t(id, name)` holding (1, 'a') and (2, 'b').
    async fn seed(&self) {
        let mut c = self.connect().await;
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS t; CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(20)); \
             INSERT INTO t (id, name) VALUES (1, 'a'), (2, 'b');",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }

    /// The names in `t`, by id.
    async fn rows(&self) -> Vec<String> {
        let mut c = self.connect().await;
        let rows: Vec<String> = sqlx::query_scalar("SELECT name FROM t ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        rows
    }

    /// Rules with `db` (writes allowed) and `db_ro` (not) on this database.
    fn rules(&self) -> String {
        format!(
            "targets:\n  db: {{ kind: {k}, url: \"{u}\", allow_write: true }}\n  db_ro: {{ kind: {k}, url: \"{u}\" }}\n",
            k = self.kind,
            u = self.url
        )
    }
}

/// Every SQL behaviour on one database: a write with both allowances, a read with a parameter
/// and a capture, a DELETE sneaked into a read step, and a dry-run of a write.
async fn sql_steps_on(db: Db) {
    db.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let p = db.first_param;

    // A write with both allowances changes the table; a later read sees it.
    let playbook = format!(
        r#"kind: playbook
name: rename
steps:
  - name: rename
    sql: {{ target: db, statement: "UPDATE t SET name = 'z' WHERE id = {p}", params: [1], write: true }}
  - name: look
    sql: {{ target: db_ro, statement: "SELECT id, name FROM t WHERE id = {p}", params: [1], capture: {{ who: name }} }}
"#
    );
    let run_ = record(&run(dir.path(), &playbook, &db.rules(), &[]).await, 0);
    let rename = step(&run_, "rename");
    assert_eq!(rename["output"]["rows_affected"], 1, "{rename:#}");
    let look = step(&run_, "look");
    assert_eq!(look["output"]["who"], "z", "{look:#}");
    assert_eq!(
        look["output"]["rows"],
        serde_json::json!([{"id": 1, "name": "z"}])
    );
    assert_eq!(look["output"]["row_count"], 1);
    assert_eq!(db.rows().await, ["z", "b"]);

    // A DELETE in a read-only step is refused by the database; the row stays.
    let sneaky = r#"kind: playbook
name: sneaky
steps:
  - name: sneak
    sql: { target: db, statement: "DELETE FROM t WHERE id = 2" }
"#;
    let run_ = record(&run(dir.path(), sneaky, &db.rules(), &[]).await, 1);
    let sneak = step(&run_, "sneak");
    assert_eq!(sneak["status"], "failed", "{sneak:#}");
    let error = sneak["error"].as_str().unwrap().to_ascii_lowercase();
    assert!(
        error.contains("read-only") || error.contains("read only") || error.contains("readonly"),
        "{} refuses the DELETE itself: {error}",
        db.kind
    );
    assert_eq!(db.rows().await, ["z", "b"]);

    // A dry run of a write runs it in a rolled-back transaction: it reports what it would do.
    let purge = r#"kind: playbook
name: purge
steps:
  - name: purge
    sql: { target: db, statement: "DELETE FROM t", write: true }
"#;
    let run_ = record(
        &run(dir.path(), purge, &db.rules(), &["--dry-run"]).await,
        0,
    );
    let purge = step(&run_, "purge");
    assert_eq!(purge["status"], "ok", "{purge:#}");
    assert_eq!(purge["output"]["rows_affected"], 2, "{purge:#}");
    assert_eq!(purge["output"]["rolled_back"], true);
    assert_eq!(db.rows().await, ["z", "b"], "the dry run changed nothing");
}

#[tokio::test]
async fn sql_steps_on_postgres() {
    sql_steps_on(Db::postgres().await).await;
}

#[tokio::test]
async fn sql_steps_on_mariadb() {
    sql_steps_on(Db::mariadb().await).await;
}

#[tokio::test]
async fn sql_steps_on_sqlite() {
    sql_steps_on(Db::sqlite().await).await;
}

#[tokio::test]
async fn a_sql_write_on_a_target_without_allow_write_is_refused_at_validation() {
    let db = Db::sqlite().await;
    db.seed().await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = r#"kind: playbook
name: purge
steps:
  - name: purge
    sql: { target: db_ro, statement: "DELETE FROM t", write: true }
"#;
    let stderr = refusal(&run(dir.path(), playbook, &db.rules(), &[]).await);
    let at = position(
        &dir.path().join("pb.yaml").display().to_string(),
        playbook,
        "true }",
    );
    assert!(
        stderr.contains(&format!(
            "{at}: error: target `db_ro` does not allow writes: set `allow_write: true`"
        )),
        "{stderr}"
    );
    assert_eq!(db.rows().await, ["a", "b"]);
}

// ---------------------------------------------------------------------------------------------
// Redis.

/// A key only this test uses, deleted when the test ends (also when it fails).
struct Key(String);

impl Key {
    fn new(value: &str) -> Key {
        let key = Key(common::unique_name("patrol_pb"));
        let _: () = redis_conn().set(&key.0, value).unwrap();
        key
    }

    fn value(&self) -> Option<String> {
        redis_conn().get(&self.0).unwrap()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let _: Result<i64, _> = redis_conn().del(&self.0);
    }
}

use redis::Commands;

fn redis_conn() -> redis::Connection {
    redis::Client::open(common::REDIS_URL)
        .unwrap()
        .get_connection()
        .unwrap()
}

const REDIS_RULES: &str = "targets:\n  cache: { kind: redis, url: \"redis://127.0.0.1:6379\", allow_write: true }\n  cache_ro: { kind: redis, url: \"redis://127.0.0.1:6379\" }\n";

#[tokio::test]
async fn redis_writes_need_both_allowances() {
    let key = Key::new("v1");
    let dir = tempfile::tempdir().unwrap();
    let no_step_write = format!(
        "kind: playbook\nname: w\nsteps:\n  - redis: {{ target: cache, command: [SET, {k}, x] }}\n",
        k = key.0
    );
    let stderr = refusal(&run(dir.path(), &no_step_write, REDIS_RULES, &[]).await);
    assert!(
        stderr.contains("SET may change data (it is not on the read-only list)"),
        "{stderr}"
    );
    let no_target_write = format!(
        "kind: playbook\nname: w\nsteps:\n  - redis: {{ target: cache_ro, command: [DEL, {k}], write: true }}\n",
        k = key.0
    );
    let stderr = refusal(&run(dir.path(), &no_target_write, REDIS_RULES, &[]).await);
    assert!(
        stderr.contains("target `cache_ro` does not allow writes"),
        "{stderr}"
    );
    assert_eq!(key.value().as_deref(), Some("v1"));
}

#[tokio::test]
async fn redis_reads_run_and_writes_change_the_key_except_under_dry_run() {
    let key = Key::new("v1");
    let dir = tempfile::tempdir().unwrap();
    let playbook = format!(
        r#"kind: playbook
name: bump
steps:
  - name: before
    redis: {{ target: cache_ro, command: [GET, "{k}"] }}
  - name: set
    redis: {{ target: cache, command: [SET, "{k}", "{{{{ steps.before.reply }}}}-v2"], write: true }}
  - name: after
    redis: {{ target: cache_ro, command: [MGET, "{k}", "{k}:none"] }}
"#,
        k = key.0
    );
    let dry = record(
        &run(dir.path(), &playbook, REDIS_RULES, &["--dry-run"]).await,
        0,
    );
    assert_eq!(step(&dry, "before")["output"]["reply"], "v1");
    assert_eq!(step(&dry, "set")["status"], "planned");
    assert_eq!(
        key.value().as_deref(),
        Some("v1"),
        "a dry run writes nothing"
    );

    let done = record(&run(dir.path(), &playbook, REDIS_RULES, &[]).await, 0);
    assert_eq!(step(&done, "set")["output"]["reply"], "OK");
    assert_eq!(
        step(&done, "after")["output"]["reply"],
        serde_json::json!(["v1-v2", null])
    );
    assert_eq!(key.value().as_deref(), Some("v1-v2"));
}

// ---------------------------------------------------------------------------------------------
// HTTP: capture, isolate, notify, wait until a check passes.

const HEAP: &str = "heap profile: 3: 4096 [12: 49152] @ heap/524288\n1: 1024 [4: 4096] @ 0x1 0x2\n#\t0x1\tmain.alloc+0x10\n";

/// What the test server saw and does.
#[derive(Default)]
struct Server {
    /// "METHOD /path body" of every request.
    seen: Mutex<Vec<String>>,
    /// Connections still abnormal; `/isolate` starts cutting them (one per look).
    abnormal: AtomicI64,
    isolating: std::sync::atomic::AtomicBool,
    /// `/health` answers 503 this many more times, then 200.
    unhealthy_for: AtomicI64,
}

impl Server {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn answer(&self, method: &Method, path: &str, body: String) -> (StatusCode, String) {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{method} {path} {body}"));
        match path {
            "/debug/pprof/heap" => (StatusCode::OK, HEAP.to_string()),
            "/isolate" if *method == Method::POST => {
                self.isolating.store(true, Ordering::SeqCst);
                (StatusCode::OK, r#"{"cut":"started"}"#.to_string())
            }
            "/connections" => {
                let left = if self.isolating.load(Ordering::SeqCst) {
                    // Each look sees one more connection cut, down to none.
                    let n = self.abnormal.load(Ordering::SeqCst);
                    if n > 0 {
                        self.abnormal.fetch_sub(1, Ordering::SeqCst);
                    }
                    self.abnormal.load(Ordering::SeqCst)
                } else {
                    self.abnormal.load(Ordering::SeqCst)
                };
                (StatusCode::OK, format!(r#"{{"abnormal":{left}}}"#))
            }
            "/stuck" => (StatusCode::OK, r#"{"abnormal":5}"#.to_string()),
            "/health" => {
                if self.unhealthy_for.fetch_sub(1, Ordering::SeqCst) > 0 {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string())
                } else {
                    (StatusCode::OK, "ok".to_string())
                }
            }
            "/hook" => (StatusCode::OK, "{}".to_string()),
            _ => (StatusCode::NOT_FOUND, "no".to_string()),
        }
    }
}

async fn server(state: Server) -> (String, Arc<Server>) {
    let state = Arc::new(state);
    let shared = state.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, body: String| {
        let state = shared.clone();
        async move {
            let (status, text) = state.answer(&method, uri.path(), body);
            let mut response = axum::response::IntoResponse::into_response((status, text));
            if uri.path() == "/debug/pprof/heap" {
                response.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".parse().unwrap(),
                );
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, state)
}

#[tokio::test]
async fn capture_attaches_the_body_to_the_step_record() {
    let (base, _state) = server(Server::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = format!(
        "kind: playbook\nname: profile\nsteps:\n  - name: heap\n    capture: {{ url: \"{base}/debug/pprof/heap\" }}\n"
    );
    // A GET: the dry run takes it too.
    for extra in [&[][..], &["--dry-run"]] {
        let run_ = record(&run(dir.path(), &playbook, "", extra).await, 0);
        let heap = step(&run_, "heap");
        assert_eq!(heap["status"], "ok", "{heap:#}");
        assert_eq!(heap["output"]["status"], 200);
        assert_eq!(heap["output"]["bytes"], HEAP.len());
        assert_eq!(heap["output"]["attachment"], "heap");
        let attached = &heap["attachments"][0];
        assert_eq!(attached["name"], "heap");
        assert_eq!(attached["encoding"], "text");
        assert_eq!(attached["content_type"], "text/plain; charset=utf-8");
        assert_eq!(attached["bytes"], HEAP.len());
        assert_eq!(attached["body"], HEAP);
    }
}

#[tokio::test]
async fn capture_fails_on_an_error_status() {
    let (base, _state) = server(Server::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = format!(
        "kind: playbook\nname: profile\nsteps:\n  - name: heap\n    capture: {{ url: \"{base}/missing\", name: heap }}\n"
    );
    let run_ = record(&run(dir.path(), &playbook, "", &[]).await, 1);
    let heap = step(&run_, "heap");
    assert!(
        heap["error"].as_str().unwrap().contains("answered 404"),
        "{heap:#}"
    );
    assert!(heap.get("attachments").is_none(), "{heap:#}");
}

fn isolate_playbook(base: &str, verify_path: &str, timeout: &str) -> String {
    format!(
        r#"kind: playbook
name: cut
steps:
  - name: cut
    isolate:
      url: "{base}/isolate"
      body: '{{"kind": "sse", "state": "abnormal"}}'
      headers: {{ content-type: application/json }}
      verify:
        url: "{base}{verify_path}"
        expect: {{ status: 200, json: {{ "/abnormal": "eq(0)" }} }}
        every: 50ms
        timeout: {timeout}
"#
    )
}

#[tokio::test]
async fn isolate_calls_the_endpoint_and_waits_until_the_effect_shows() {
    let state = Server {
        abnormal: AtomicI64::new(3),
        ..Server::default()
    };
    let (base, state) = server(state).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = isolate_playbook(&base, "/connections", "10s");

    // Under --dry-run the call is only planned.
    let dry = record(&run(dir.path(), &playbook, "", &["--dry-run"]).await, 0);
    assert_eq!(step(&dry, "cut")["status"], "planned");
    assert!(state.seen().is_empty(), "{:?}", state.seen());

    let run_ = record(&run(dir.path(), &playbook, "", &[]).await, 0);
    let cut = step(&run_, "cut");
    assert_eq!(cut["output"]["json"]["cut"], "started", "{cut:#}");
    assert_eq!(cut["output"]["verify"]["json"]["abnormal"], 0, "{cut:#}");
    assert_eq!(cut["output"]["verify"]["attempts"], 3, "{cut:#}");
    let seen = state.seen();
    assert_eq!(
        seen[0],
        r#"POST /isolate {"kind": "sse", "state": "abnormal"}"#
    );
    assert_eq!(seen.len(), 4, "one call, three looks: {seen:?}");
    assert_eq!(state.abnormal.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn isolate_fails_when_the_effect_never_shows() {
    let (base, state) = server(Server::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let playbook = isolate_playbook(&base, "/stuck", "500ms");
    let run_ = record(&run(dir.path(), &playbook, "", &[]).await, 1);
    let cut = step(&run_, "cut");
    let error = cut["error"].as_str().unwrap();
    assert!(
        error.contains("the isolation was not verified within 500ms"),
        "{error}"
    );
    assert!(
        error.contains("last: json /abnormal: got 5, want eq(0)"),
        "{error}"
    );
    assert!(state.seen().iter().any(|s| s.starts_with("POST /isolate")));
}

#[tokio::test]
async fn notify_reaches_a_webhook_receiver_and_queues_what_it_cannot_deliver() {
    let (base, state) = server(Server::default()).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rules = format!(
        "receivers:\n  ops: {{ kind: webhook, url: \"{base}/hook\" }}\n  down: {{ kind: webhook, url: \"http://127.0.0.1:{closed}/hook\" }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let playbook = r#"kind: playbook
name: tell
params:
  service: { default: orders }
steps:
  - name: tell
    notify:
      receivers: [ops, down]
      title: "{{ params.service }} isolated"
      message: "Cut the abnormal SSE connections of {{ params.service }}."
      timeout: 2s
"#;
    let run_ = record(&run(dir.path(), playbook, &rules, &[]).await, 0);
    let tell = step(&run_, "tell");
    assert_eq!(
        tell["output"]["delivered"],
        serde_json::json!(["ops"]),
        "{tell:#}"
    );
    assert_eq!(tell["output"]["queued"][0]["receiver"], "down", "{tell:#}");

    let hooks: Vec<String> = state
        .seen()
        .into_iter()
        .filter(|s| s.starts_with("POST /hook "))
        .collect();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let payload: Value = serde_json::from_str(hooks[0].trim_start_matches("POST /hook ")).unwrap();
    let alert = &payload["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "playbook_notify");
    assert_eq!(alert["labels"]["playbook_run"], run_["id"]);
    assert_eq!(alert["annotations"]["summary"], "orders isolated");
    assert_eq!(
        alert["annotations"]["description"],
        "Cut the abnormal SSE connections of orders."
    );

    // The undeliverable copy waits in the store's outbox.
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut store = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let queued: Vec<(String, String)> =
        sqlx::query_as("SELECT receiver, status FROM notifications")
            .fetch_all(&mut store)
            .await
            .unwrap();
    assert_eq!(queued, [("down".to_string(), "pending".to_string())]);
}

#[tokio::test]
async fn wait_until_check_passes_once_the_server_turns_healthy() {
    let state = Server {
        unhealthy_for: AtomicI64::new(3),
        ..Server::default()
    };
    let (base, state) = server(state).await;
    let rules = format!(
        "targets:\n  api: {{ kind: http, url: \"{base}\" }}\nchecks:\n  - {{ name: healthy, kind: http, target: api, request: {{ path: /health }}, expect: {{ status: 200 }} }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let playbook = "kind: playbook\nname: settle\nsteps:\n  - name: settle\n    wait: { until_check: healthy, timeout: 20s, every: 50ms }\n";
    let run_ = record(&run(dir.path(), playbook, &rules, &[]).await, 0);
    let settle = step(&run_, "settle");
    assert_eq!(settle["output"]["status"], "ok", "{settle:#}");
    assert_eq!(settle["output"]["attempts"], 4, "{settle:#}");
    let looks = state
        .seen()
        .iter()
        .filter(|s| s.starts_with("GET /health"))
        .count();
    assert_eq!(looks, 4);

    // A check that never passes fails the wait at its timeout.
    let state_never = Server {
        unhealthy_for: AtomicI64::new(i64::MAX),
        ..Server::default()
    };
    let (base, _never) = server(state_never).await;
    let rules = format!(
        "targets:\n  api: {{ kind: http, url: \"{base}\" }}\nchecks:\n  - {{ name: healthy, kind: http, target: api, request: {{ path: /health }}, expect: {{ status: 200 }} }}\n"
    );
    let playbook = "kind: playbook\nname: settle\nsteps:\n  - name: settle\n    wait: { until_check: healthy, timeout: 300ms, every: 50ms }\n";
    let run_ = record(&run(dir.path(), playbook, &rules, &[]).await, 1);
    let error = step(&run_, "settle")["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("check healthy did not pass within 300ms"),
        "{error}"
    );
}
