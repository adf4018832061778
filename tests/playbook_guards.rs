//! The guardrails of playbook runs end to end: the real binary, real stores (a fresh PostgreSQL
//! database or a SQLite file), a real HTTP server (axum on a random loopback port) for the steps
//! and as the webhook receiver, and a real daemon for the approval API.
//!
//! - `lock:`: two concurrent runs, one runs, the other is refused (exit 3) naming the holder; an
//!   expired lock (a crashed holder) is taken over;
//! - `rate_limit:`: the run beyond the limit is refused and a `playbook_refused` notification
//!   reaches the receiver, or waits in the outbox while the receiver is down;
//! - approvals: one that times out fails its step and rolls back; one decided through the
//!   daemon's API (link from the webhook notification) lets the run go on, the approver recorded;
//! - `playbooks.enabled: false` refuses;
//! - the store's lock, admission and decision races on both backends.

mod common;
mod daemon_support;

use common::streams;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use chrono::Utc;
use patrol::store::{Admission, ApprovalDecision, NewApproval, OutboxStatus, Store};
use serde_json::Value;
use tokio::sync::watch;

use common::on_both_backends;

/// Longest any wait in these tests lasts.
const WAIT: Duration = Duration::from_secs(30);

/// A loopback HTTP server: `/hook` records webhook notifications, `/hold` answers only once
/// released (each arrival counted), `/fail` answers 500, anything else 200 `{}`. Every request is
/// logged as "METHOD /path body".
struct Server {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
    hooks: Arc<Mutex<Vec<Value>>>,
    arrived: watch::Receiver<usize>,
    release: watch::Sender<bool>,
}

impl Server {
    async fn start() -> Server {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (arrived_tx, arrived) = watch::channel(0usize);
        let (release, release_rx) = watch::channel(false);
        let arrived_tx = Arc::new(arrived_tx);
        let (log, hook_log) = (seen.clone(), hooks.clone());
        let app = Router::new().fallback(move |method: Method, uri: Uri, body: String| {
            let (log, hook_log) = (log.clone(), hook_log.clone());
            let (arrived_tx, mut release_rx) = (arrived_tx.clone(), release_rx.clone());
            async move {
                let path = uri.path().to_string();
                if path == "/hook" {
                    hook_log
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                    return (StatusCode::OK, "{}".to_string());
                }
                log.lock().unwrap().push(format!("{method} {path} {body}"));
                match path.as_str() {
                    "/hold" => {
                        arrived_tx.send_modify(|n| *n += 1);
                        let _ = tokio::time::timeout(WAIT, release_rx.wait_for(|r| *r)).await;
                        (StatusCode::OK, "{}".to_string())
                    }
                    "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom".to_string()),
                    _ => (StatusCode::OK, "{}".to_string()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server {
            base,
            seen,
            hooks,
            arrived,
            release,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The first webhook notification whose alert is `alertname`, waiting for it.
    async fn hook(&self, alertname: &str) -> Value {
        wait_for(&format!("a {alertname} notification"), || {
            self.hooks
                .lock()
                .unwrap()
                .iter()
                .find(|h| h["alerts"][0]["labels"]["alertname"] == alertname)
                .cloned()
        })
        .await
    }
}

/// Polls `found` (every 20 ms, at most [`WAIT`]) until it gives something.
async fn wait_for<T>(what: &str, found: impl Fn() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(t) = found() {
            return t;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scratch directory with a rules file and playbooks, and the store the runs share.
struct Setup {
    dir: tempfile::TempDir,
    store_url: String,
}

impl Setup {
    /// `rules` is the rules file's text; `store_url` a fresh store (see [`sqlite_url`],
    /// [`common::fresh_pg_database`]).
    fn new(rules: &str, store_url: String) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
        Setup { dir, store_url }
    }

    fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn store(&self) -> Store {
        Store::open(&self.store_url).await.unwrap()
    }

    fn command(&self, playbook: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
        cmd.args(["playbook", "run"])
            .arg(playbook)
            .arg("--rules")
            .arg(self.dir.path().join("rules.yaml"))
            .args(["--store", &self.store_url, "--format", "json"])
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("PATROL_STORE")
            .env_remove("PATROL_EXTERNAL_URL")
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, playbook: &Path, args: &[&str]) -> Output {
        tokio::time::timeout(WAIT, self.command(playbook, args).output())
            .await
            .expect("the run ends in time")
            .unwrap()
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("guards.db").display())
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", streams(out)))
}

/// Rules with a webhook receiver `ops` at `hook_url` told about playbooks.
fn rules_notifying(hook_url: &str, more: &str) -> String {
    format!(
        "receivers:\n  ops: {{ kind: webhook, url: \"{hook_url}\" }}\nplaybooks:\n  notify: [ops]\n{more}"
    )
}

#[tokio::test]
async fn of_two_concurrent_runs_under_one_lock_one_runs_and_the_other_is_refused() {
    let server = Server::start().await;
    let setup = Setup::new(
        &rules_notifying(&format!("{}/hook", server.base), ""),
        common::fresh_pg_database().await,
    );
    // Migrated once before the two processes share it.
    setup.store().await;
    let file = setup.playbook(
        "hold",
        &format!(
            "kind: playbook\nname: hold\nlock: \"{{{{ params.db }}}}\"\nparams: {{ db: {{ default: db1 }} }}\nsteps:\n  - {{ name: work, http: {{ method: POST, url: \"{}/hold\", timeout: 60s }} }}\n",
            server.base
        ),
    );
    let a = tokio::spawn(setup.command(&file, &[]).output());
    let b = tokio::spawn(setup.command(&file, &[]).output());
    let mut arrived = server.arrived.clone();
    tokio::time::timeout(WAIT, arrived.wait_for(|n| *n >= 1))
        .await
        .expect("one run reaches its step")
        .unwrap();
    // The other ends while the first still holds the lock.
    let (refused, running) = wait_for("the refused run", || {
        if a.is_finished() {
            Some((true, false))
        } else if b.is_finished() {
            Some((false, true))
        } else {
            None
        }
    })
    .await;
    let (refused, running) = if refused && !running { (a, b) } else { (b, a) };
    let refused = refused.await.unwrap().unwrap();
    assert_eq!(refused.status.code(), Some(3), "{}", streams(&refused));
    assert_eq!(
        *server.arrived.borrow(),
        1,
        "the refused run did not run its step"
    );
    server.release.send(true).unwrap();
    let ran = tokio::time::timeout(WAIT, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ran.status.code(), Some(0), "{}", streams(&ran));
    let (ran, refused) = (json_of(&ran), json_of(&refused));
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["key"], "hold:db1");
    let error = refused["error"].as_str().unwrap();
    let holder = format!(
        "lock hold:db1 is held by run {} (patrol on ",
        ran["id"].as_str().unwrap()
    );
    assert!(error.starts_with(&holder), "{error}");
    assert_eq!(server.seen(), vec!["POST /hold ".to_string()]);
    // Released at the end: the next run takes it.
    let store = setup.store().await;
    assert_eq!(store.playbook_lock("hold:db1").await.unwrap(), None);
    let hook = server.hook("playbook_refused").await;
    assert_eq!(hook["alerts"][0]["annotations"]["summary"], error);
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_and_a_live_one_refuses() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let setup = Setup::new("playbooks: {}\n", sqlite_url(scratch.path()));
    let store = setup.store().await;
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    // A holder that crashed an hour ago (its lock expired), and one still running elsewhere.
    store
        .acquire_playbook_lock(
            "fix:old",
            "crashed-run",
            "gone:1",
            now - hour,
            now - hour / 2,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .acquire_playbook_lock("fix:live", "live-run", "elsewhere:2", now, now + hour)
        .await
        .unwrap()
        .unwrap();
    let file = setup.playbook(
        "fix",
        &format!(
            "kind: playbook\nname: fix\nlock: \"{{{{ params.db }}}}\"\nparams: {{ db: {{ required: true }} }}\nsteps:\n  - {{ name: work, http: {{ method: POST, url: \"{}/work/{{{{ params.db }}}}\" }} }}\n",
            server.base
        ),
    );
    let out = setup.run(&file, &["--param", "db=old"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert_eq!(
        store.playbook_lock("fix:old").await.unwrap(),
        None,
        "released"
    );
    let out = setup.run(&file, &["--param", "db=live"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", streams(&out));
    let error = json_of(&out)["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("lock fix:live is held by run live-run (patrol on elsewhere:2) since "),
        "{error}"
    );
    assert_eq!(server.seen(), vec!["POST /work/old ".to_string()]);
    assert_eq!(
        store
            .playbook_lock("fix:live")
            .await
            .unwrap()
            .unwrap()
            .run_id,
        "live-run",
        "a refused run leaves the holder's lock alone"
    );
}

fn limited_playbook(setup: &Setup, server: &Server) -> PathBuf {
    setup.playbook(
        "limited",
        &format!(
            "kind: playbook\nname: limited\nrate_limit: 2/h\nsteps:\n  - {{ name: poke, http: {{ method: POST, url: \"{}/poke\" }} }}\n",
            server.base
        ),
    )
}

#[tokio::test]
async fn the_run_beyond_the_rate_limit_is_refused_and_the_receiver_told() {
    let server = Server::start().await;
    let setup = Setup::new(
        &rules_notifying(&format!("{}/hook", server.base), ""),
        common::fresh_pg_database().await,
    );
    let file = limited_playbook(&setup, &server);
    for _ in 0..2 {
        let out = setup.run(&file, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    }
    let out = setup.run(&file, &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", streams(&out));
    let run = json_of(&out);
    assert_eq!(run["status"], "refused");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.starts_with("rate limit 2/1h reached for limited: 2 runs since "),
        "{error}"
    );
    assert!(error.contains("; next allowed at "), "{error}");
    assert_eq!(server.seen().len(), 2, "the third run did not run its step");
    let hook = server.hook("playbook_refused").await;
    let alert = &hook["alerts"][0];
    assert_eq!(alert["labels"]["playbook"], "limited");
    assert_eq!(alert["labels"]["key"], "limited");
    assert_eq!(alert["annotations"]["summary"], error);
    assert_eq!(alert["annotations"]["run_id"], run["id"]);
    // Delivered by the run itself, and recorded so: no daemon sends it again.
    let store = setup.store().await;
    let sent = store.outbox(Some(OutboxStatus::Sent), 10).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        store
            .outbox(Some(OutboxStatus::Pending), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_refusal_waits_in_the_outbox_while_the_receiver_is_down() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let down = format!("http://127.0.0.1:{}/hook", daemon_support::free_port());
    let setup = Setup::new(&rules_notifying(&down, ""), sqlite_url(scratch.path()));
    let file = limited_playbook(&setup, &server);
    for _ in 0..2 {
        let out = setup.run(&file, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    }
    let out = setup.run(&file, &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", streams(&out));
    let store = setup.store().await;
    let pending = store.outbox(Some(OutboxStatus::Pending), 10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let entry = &pending[0];
    assert_eq!(entry.receiver, "ops");
    assert_eq!(entry.attempts, 1, "tried once right away");
    assert!(entry.last_error.is_some());
    let alert = &entry.payload.alerts[0];
    assert_eq!(alert.labels["alertname"], "playbook_refused");
    assert_eq!(
        alert.annotations["summary"],
        json_of(&out)["error"].as_str().unwrap()
    );
}

#[tokio::test]
async fn an_approval_nobody_gives_times_out_fails_its_step_and_rolls_back() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let setup = Setup::new(
        &rules_notifying(&format!("{}/hook", server.base), ""),
        sqlite_url(scratch.path()),
    );
    let file = setup.playbook(
        "restart",
        &format!(
            "kind: playbook\nname: restart\napproval_timeout: 1s\nsteps:\n  - name: drain\n    http: {{ method: POST, url: \"{b}/drain\" }}\n    rollback:\n      - {{ name: undrain, http: {{ method: POST, url: \"{b}/undrain\" }} }}\n  - {{ name: restart, approve: true, http: {{ method: POST, url: \"{b}/restart\" }} }}\n",
            b = server.base
        ),
    );
    let out = setup.run(&file, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let run = json_of(&out);
    assert_eq!(run["status"], "rolled_back");
    assert_eq!(
        run["steps"][1]["error"],
        "approval of step restart timed out after 1s"
    );
    assert_eq!(
        server.seen(),
        vec!["POST /drain ".to_string(), "POST /undrain ".to_string()]
    );
    // The link was posted; the approval is stored expired.
    let hook = server.hook("playbook_approval").await;
    let id = hook["alerts"][0]["annotations"]["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("approval {id} of step restart")),
        "{stderr}"
    );
    let approval = setup.store().await.approval(&id).await.unwrap().unwrap();
    assert_eq!(approval.decision, Some(ApprovalDecision::Expired));
    assert_eq!(approval.step.as_deref(), Some("restart"));
    assert_eq!(approval.run_id, run["id"].as_str().unwrap());
}

#[tokio::test]
async fn an_approval_given_through_the_daemons_api_lets_the_run_go_on() {
    let server = Server::start().await;
    let rules = rules_notifying(
        &format!("{}/hook", server.base),
        &format!(
            "checks:\n  - {{ name: up, kind: http, url: \"{}/up\", every: 1h }}\n",
            server.base
        ),
    );
    let daemon = daemon_support::DaemonProcess::start(&[("r.yaml", &rules)], &[]).await;
    let setup = Setup {
        dir: tempfile::tempdir().unwrap(),
        store_url: daemon.store_url(),
    };
    std::fs::write(setup.dir.path().join("rules.yaml"), &rules).unwrap();
    let file = setup.playbook(
        "restart",
        &format!(
            "kind: playbook\nname: restart\nsteps:\n  - {{ name: restart, approve: true, http: {{ method: POST, url: \"{}/restart\" }} }}\n",
            server.base
        ),
    );
    let run = tokio::spawn(
        setup
            .command(&file, &["--external-url", &daemon.url("")])
            .output(),
    );
    let hook = server.hook("playbook_approval").await;
    let annotations = &hook["alerts"][0]["annotations"];
    let link = annotations["approve_url"].as_str().unwrap().to_string();
    let id = annotations["approval_id"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&daemon.url(&format!("/api/v1/approvals/{id}?token="))),
        "{link}"
    );
    let token = link.split("token=").nth(1).unwrap().to_string();
    let http = reqwest::Client::new();

    // Listed as pending, without its token.
    let pending = daemon.get_json("/api/v1/approvals").await;
    assert_eq!(pending["approvals"][0]["id"], id.as_str());
    assert_eq!(pending["approvals"][0]["step"], "restart");
    assert!(!pending.to_string().contains(&token));
    // The page behind the link, with its buttons.
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Approve step restart of playbook restart?"),
        "{page}"
    );
    assert!(page.contains("value=\"approve\""), "{page}");

    let decide = |token: String, url: String| {
        let http = http.clone();
        async move {
            http.post(url)
                .json(&serde_json::json!({"token": token, "decision": "approve", "by": "alice"}))
                .send()
                .await
                .unwrap()
        }
    };
    let url = daemon.url(&format!("/api/v1/approvals/{id}"));
    let wrong = decide("0".repeat(64), url.clone()).await;
    assert_eq!(wrong.status(), 403);
    let unknown = decide(token.clone(), daemon.url("/api/v1/approvals/nope")).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        http.get(daemon.url(&format!("/api/v1/approvals/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let ok = decide(token.clone(), url.clone()).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["decided_by"], "api:alice");
    let again = decide(token.clone(), url.clone()).await;
    assert_eq!(again.status(), 409);

    let out = tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let record = json_of(&out);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["steps"][0]["approver"], "api:alice");
    // The daemon's check polls /up meanwhile; the playbook's POST came once, after the approval.
    let posts: Vec<String> = server
        .seen()
        .into_iter()
        .filter(|s| s.starts_with("POST"))
        .collect();
    assert_eq!(posts, vec!["POST /restart ".to_string()]);
}

#[tokio::test]
async fn disabled_playbooks_are_refused() {
    let server = Server::start().await;
    let scratch = tempfile::tempdir().unwrap();
    let setup = Setup::new(
        &rules_notifying(&format!("{}/hook", server.base), "  enabled: false\n"),
        sqlite_url(scratch.path()),
    );
    let file = setup.playbook(
        "fix",
        &format!(
            "kind: playbook\nname: fix\nsteps:\n  - {{ name: poke, http: {{ method: POST, url: \"{}/poke\" }} }}\n",
            server.base
        ),
    );
    let out = setup.run(&file, &["--yes"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", streams(&out));
    let run = json_of(&out);
    assert_eq!(run["status"], "refused");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("playbooks are disabled"),
        "{run}"
    );
    assert!(server.seen().is_empty());
    let hook = server.hook("playbook_refused").await;
    assert_eq!(hook["alerts"][0]["labels"]["playbook"], "fix");
}

// --- the store under concurrency, on both backends -------------------------------------------

/// Several stores (pools) on one database, as several processes would have.
async fn stores(url: &str, n: usize) -> Vec<Store> {
    let first = Store::open(url).await.unwrap();
    let mut all = vec![first];
    for _ in 1..n {
        all.push(Store::open(url).await.unwrap());
    }
    all
}

async fn twenty_concurrent_acquires_leave_one_holder(url: &str) {
    let stores = stores(url, 5).await;
    let now = Utc::now();
    let later = now + chrono::Duration::minutes(5);
    // Once on a free key, once on a key whose holder's lock expired.
    stores[0]
        .acquire_playbook_lock(
            "p:expired",
            "dead",
            "gone:1",
            now - chrono::Duration::hours(1),
            now - chrono::Duration::minutes(1),
        )
        .await
        .unwrap()
        .unwrap();
    for key in ["p:free", "p:expired"] {
        let tries = (0..20).map(|i| {
            let store = stores[i % stores.len()].clone();
            async move {
                store
                    .acquire_playbook_lock(key, &format!("run-{i}"), "h:1", now, later)
                    .await
                    .unwrap()
                    .is_ok()
                    .then_some(i)
            }
        });
        let winners: Vec<usize> = futures::future::join_all(tries)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(winners.len(), 1, "{key}: {winners:?}");
        let holder = stores[0].playbook_lock(key).await.unwrap().unwrap();
        assert_eq!(holder.run_id, format!("run-{}", winners[0]));
    }
}

async fn twenty_concurrent_admissions_under_3_admit_3(url: &str) {
    let stores = stores(url, 5).await;
    let now = Utc::now();
    let tries = (0..20).map(|i| {
        let store = stores[i % stores.len()].clone();
        async move {
            store
                .admit_playbook_run(
                    "p",
                    "p:k",
                    &format!("run-{i}"),
                    3,
                    now - chrono::Duration::hours(1),
                    now,
                )
                .await
                .unwrap()
        }
    });
    let outcomes = futures::future::join_all(tries).await;
    let admitted = outcomes
        .iter()
        .filter(|o| **o == Admission::Admitted)
        .count();
    assert_eq!(admitted, 3, "{outcomes:?}");
}

async fn of_concurrent_decisions_the_first_wins(url: &str) {
    let stores = stores(url, 4).await;
    let now = Utc::now();
    let input = serde_json::json!({});
    stores[0]
        .create_approval(&NewApproval {
            id: "a1",
            run_id: "r1",
            playbook: "p",
            step: Some("s"),
            description: "d",
            input: &input,
            token_hash: "h",
            created_at: now,
            expires_at: now + chrono::Duration::minutes(5),
        })
        .await
        .unwrap();
    let tries = (0..12).map(|i| {
        let store = stores[i % stores.len()].clone();
        let decision = if i % 2 == 0 {
            ApprovalDecision::Approved
        } else {
            ApprovalDecision::Denied
        };
        async move {
            store
                .decide_approval("a1", decision, &format!("api:u{i}"), Utc::now())
                .await
                .unwrap()
                .then_some((i, decision))
        }
    });
    let winners: Vec<(usize, ApprovalDecision)> = futures::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = stores[0].approval("a1").await.unwrap().unwrap();
    assert_eq!(stored.decision, Some(winners[0].1));
    assert_eq!(stored.decided_by, Some(format!("api:u{}", winners[0].0)));
    // An open approval cannot be marked expired before its time.
    assert!(
        !stores[0]
            .decide_approval("a1", ApprovalDecision::Expired, "timeout", Utc::now())
            .await
            .unwrap()
    );
}

on_both_backends!(
    twenty_concurrent_acquires_leave_one_holder,
    twenty_concurrent_admissions_under_3_admit_3,
    of_concurrent_decisions_the_first_wins,
);
