//! Playbook triggers through `patrol daemon`: a failing check drives a service's health score
//! low and its `on_low_score` playbook runs; an alert that fires starts its check's `on_failure`
//! playbook once per episode and links the run from the notification; `POST
//! /api/v1/playbooks/{name}/runs` starts one by hand; `patrol validate` and the daemon refuse a
//! rule naming a playbook that does not exist. Real processes, a real HTTP service and webhook
//! receiver on loopback, a real SQLite store.

mod common;
#[path = "daemon_support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{DaemonProcess, WAIT};

/// The service the checks measure and the playbooks act on, and the webhook receiver.
struct Lab {
    port: u16,
    /// Status `/health` answers with.
    health: Arc<AtomicU16>,
    /// Bodies POSTed to `/fix` (what the playbooks did).
    fixes: Arc<Mutex<Vec<Value>>>,
    /// Notifications POSTed to `/hook`.
    notifications: Arc<Mutex<Vec<Value>>>,
}

impl Lab {
    async fn start() -> Lab {
        let health = Arc::new(AtomicU16::new(500));
        let fixes = Arc::new(Mutex::new(Vec::new()));
        let notifications = Arc::new(Mutex::new(Vec::new()));
        let (h, f, n) = (health.clone(), fixes.clone(), notifications.clone());
        let app = axum::Router::new()
            .route(
                "/health",
                axum::routing::get(move || {
                    let code = h.load(Ordering::SeqCst);
                    async move { (axum::http::StatusCode::from_u16(code).unwrap(), "state") }
                }),
            )
            .route(
                "/fix",
                axum::routing::post(move |body: String| {
                    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    f.lock().unwrap().push(value);
                    async { "fixed" }
                }),
            )
            .route(
                "/hook",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    n.lock().unwrap().push(body);
                    async { "ok" }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Lab {
            port,
            health,
            fixes,
            notifications,
        }
    }

    fn fixes(&self) -> Vec<Value> {
        self.fixes.lock().unwrap().clone()
    }

    /// A playbook `name` that POSTs `body` (a template) to `/fix`.
    fn playbook(&self, name: &str, body: &str) -> String {
        format!(
            "kind: playbook\nname: {name}\nsteps:\n  - name: fix\n    http:\n      method: POST\n      url: \"http://127.0.0.1:{}/fix\"\n      headers: {{content-type: application/json}}\n      body: '{body}'\n",
            self.port
        )
    }
}

/// A directory with `rules/r.yaml` and `playbooks/<name>.yaml` for each playbook.
fn lab_dir(rules: &str, playbooks: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/r.yaml"), rules).unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    for (name, text) in playbooks {
        std::fs::write(dir.path().join(format!("playbooks/{name}.yaml")), text).unwrap();
    }
    dir
}

/// Polls `probe` every 50 ms until it returns something, at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The firing notifications received so far that carry an alert named `alertname`.
fn firing_alerts(lab: &Lab, alertname: &str) -> Vec<Value> {
    lab.notifications
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "firing")
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == alertname && a["status"] == "firing")
        .collect()
}

/// The stored run `id` through the API once it has ended (not `running`).
async fn finished_run(d: &DaemonProcess, url: &str) -> Value {
    eventually("the playbook run to end", || async {
        let r = d.http.get(url).send().await.ok()?;
        if r.status() != 200 {
            return None;
        }
        let run: Value = r.json().await.ok()?;
        (run["status"] != "running").then_some(run)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_drives_the_score_low_and_its_playbook_runs() {
    let lab = Lab::start().await;
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
routes:
  - receiver: ops
    matchers: ['alertname="score_low"']
    group_wait: 0s
    group_interval: 1s
services:
  shop:
    model: weighted
    components: [{{check: shop-health, normalize: "linear(0, 1)", weight: 1}}]
    low_score: {{below: 70, times: 1}}
    on_low_score: fix
checks:
  - name: shop-health
    kind: http
    url: "http://127.0.0.1:{port}/health"
    value: "json:$.ratio"
    every: 1s
    service: shop
"#,
        port = lab.port
    );
    let fix = lab.playbook(
        "fix",
        r#"{"kind": "{{ trigger.kind }}", "service": "{{ trigger.service }}", "score": {{ trigger.score }}}"#,
    );
    let d = DaemonProcess::start_in(lab_dir(&rules, &[("fix", fix)]), &[]).await;

    // The service answers 500: no ratio, the weighted score is 0, below 70 once → score_low.
    let fixed = eventually("the playbook's POST", || async {
        lab.fixes().into_iter().next()
    })
    .await;
    assert_eq!(fixed["kind"], "score_low", "{fixed}");
    assert_eq!(fixed["service"], "shop");
    assert!(fixed["score"].as_f64().unwrap() < 70.0, "{fixed}");

    let listed = d.get_json("/api/v1/playbook-runs").await;
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{listed}");
    assert_eq!(runs[0]["playbook"], "fix");
    assert_eq!(runs[0]["trigger"]["kind"], "score_low");
    assert_eq!(runs[0]["trigger"]["event"]["service"], "shop");
    assert_eq!(runs[0]["started_by"], "score_low:shop");
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let run = finished_run(&d, &d.url(&format!("/api/v1/playbook-runs/{id}"))).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // The score_low alert fired in the same pass and links the run.
    let alert = eventually("the score_low notification", || async {
        firing_alerts(&lab, "score_low").into_iter().next()
    })
    .await;
    let link = alert["annotations"]["playbook_run"].as_str().unwrap();
    assert_eq!(
        link,
        d.url(&format!("/api/v1/playbook-runs/{id}")),
        "{alert}"
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_starts_its_on_failure_playbook_once_per_episode_and_links_the_run() {
    let lab = Lab::start().await;
    let rules = format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
checks:
  - name: api-health
    kind: http
    url: "http://127.0.0.1:{port}/health"
    every: 1s
    service: api
    notify: [ops]
    on_failure: diagnose
    alert: {{failure_threshold: 2, success_threshold: 1, flap: {{window: 0s}}}}
"#,
        port = lab.port
    );
    let body = r#"{"kind": "{{ trigger.kind }}", "check": "{{ trigger.check.name }}", "status": "{{ trigger.result.status }}", "fingerprint": "{{ trigger.alert.fingerprint }}", "link": "{{ trigger.alert.annotations.playbook_run }}"}"#;
    let diagnose = lab.playbook("diagnose", body);
    let d = DaemonProcess::start_in(lab_dir(&rules, &[("diagnose", diagnose)]), &[]).await;

    // result → alert → playbook: the firing notification links the run it started.
    let alert = eventually("the firing notification", || async {
        firing_alerts(&lab, "api-health").into_iter().next()
    })
    .await;
    let link = alert["annotations"]["playbook_run"]
        .as_str()
        .unwrap_or_else(|| panic!("no playbook_run annotation: {alert}"))
        .to_string();
    assert!(link.starts_with(&d.url("/api/v1/playbook-runs/")), "{link}");
    let run = finished_run(&d, &link).await;
    assert_eq!(run["playbook"], "diagnose");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["started_by"], "alert:api-health");
    assert_eq!(run["trigger"]["kind"], "on_failure");
    assert_eq!(run["trigger"]["check"]["service"], "api");
    assert_eq!(run["trigger"]["alert"]["fingerprint"], alert["fingerprint"]);
    assert_eq!(run["trigger"]["result"]["check"], "api-health");
    let fixes = lab.fixes();
    assert_eq!(fixes.len(), 1, "{fixes:?}");
    assert_eq!(fixes[0]["kind"], "on_failure");
    assert_eq!(fixes[0]["check"], "api-health");
    assert_eq!(
        fixes[0]["link"],
        link.as_str(),
        "the trigger carries the link too"
    );

    // More failing results of the same episode start nothing more.
    let failing_now = result_count(&d).await;
    eventually("three more failing results", || async {
        (result_count(&d).await >= failing_now + 3).then_some(())
    })
    .await;
    assert_eq!(lab.fixes().len(), 1, "one run per firing, not per result");

    // A new episode (recover, fail again) starts a second run with its own link.
    lab.health.store(200, Ordering::SeqCst);
    eventually("the resolved notification", || async {
        let seen = lab.notifications.lock().unwrap().clone();
        seen.iter().any(|n| n["status"] == "resolved").then_some(())
    })
    .await;
    lab.health.store(500, Ordering::SeqCst);
    let second = eventually("the second run", || async { lab.fixes().get(1).cloned() }).await;
    assert_ne!(second["link"], link.as_str(), "{second}");
    assert_eq!(lab.fixes().len(), 2);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

async fn result_count(d: &DaemonProcess) -> usize {
    let results = d
        .get_json("/api/v1/results?check=api-health&limit=1000")
        .await;
    results["results"]
        .as_array()
        .or_else(|| results.as_array())
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_starts_a_playbook_behind_the_token() {
    let lab = Lab::start().await;
    lab.health.store(200, Ordering::SeqCst);
    let rules = format!(
        "checks:\n  - {{name: quiet, kind: http, url: \"http://127.0.0.1:{}/health\", every: 1h}}\n",
        lab.port
    );
    let mut manual = lab.playbook(
        "manual",
        r#"{"kind": "{{ trigger.kind }}", "note": "{{ params.note }}"}"#,
    );
    manual = manual.replace("steps:\n", "params:\n  note: {required: true}\nsteps:\n");
    let d = DaemonProcess::start_in(
        lab_dir(&rules, &[("manual", manual)]),
        &["--api-token", "s3cret"],
    )
    .await;
    let post = |path: &str, body: Value, token: Option<&str>| {
        let mut req = d.http.post(d.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let path = "/api/v1/playbooks/manual/runs";

    let no_token = post(path, json!({"params": {"note": "x"}}), None)
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);

    let unknown = post("/api/v1/playbooks/nope/runs", json!({}), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("manual"), "{body}");

    let missing = post(path, json!({}), Some("s3cret")).await.unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`note` is required"),
        "{body}"
    );
    let extra = post(
        path,
        json!({"params": {"note": "x", "bogus": "y"}}),
        Some("s3cret"),
    )
    .await
    .unwrap();
    assert_eq!(extra.status(), 400);

    // A dry run renders the POST but does not send it.
    let dry = post(
        path,
        json!({"params": {"note": "dry"}, "dry_run": true}),
        Some("s3cret"),
    )
    .await
    .unwrap();
    assert_eq!(dry.status(), 202);
    let dry: Value = dry.json().await.unwrap();
    let run = finished_run(&d, &d.url(dry["url"].as_str().unwrap())).await;
    assert_eq!(run["dry_run"], true);
    assert_eq!(run["steps"][0]["status"], "planned", "{run}");
    assert!(lab.fixes().is_empty());

    let started = post(path, json!({"params": {"note": "hello"}}), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await.unwrap();
    let id = started["run_id"].as_str().unwrap();
    assert_eq!(started["url"], format!("/api/v1/playbook-runs/{id}"));
    let run = finished_run(&d, &d.url(started["url"].as_str().unwrap())).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["started_by"], "api");
    assert_eq!(run["params"]["note"], "hello");
    assert_eq!(lab.fixes(), vec![json!({"kind": "api", "note": "hello"})]);

    // A broken playbook refuses the reload; the last good set keeps running.
    let playbooks = d.dir.path().join("playbooks");
    std::fs::write(
        playbooks.join("broken.yaml"),
        "kind: playbook\nname: broken\nsteps:\n  - teleport: {}\n",
    )
    .unwrap();
    let reload = post("/api/v1/reload", json!({}), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(reload.status(), 422);
    let reload: Value = reload.json().await.unwrap();
    assert!(reload.to_string().contains("broken.yaml"), "{reload}");
    let again = post(path, json!({"params": {"note": "still"}}), Some("s3cret"))
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    eventually("the run after the refused reload", || async {
        (lab.fixes().len() == 2).then_some(())
    })
    .await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

fn validate_in(dir: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::patrol_bin())
        .current_dir(dir)
        .arg("validate")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn validate_and_the_daemon_refuse_an_on_failure_naming_a_missing_playbook() {
    let rules = "\
checks:
  - name: api
    kind: http
    url: http://127.0.0.1:1/health
    on_failure: restart-api
";
    let fix = "kind: playbook\nname: fix\nsteps:\n  - wait: 1s\n".to_string();
    let dir = lab_dir(rules, &[("fix", fix)]);
    let (code, out) = validate_in(dir.path());
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "rules/r.yaml:5:17: error: unknown playbook `restart-api` in `on_failure`; playbooks in `playbooks`: fix"
        ),
        "{out}"
    );

    let daemon = support::daemon_command(dir.path(), "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(daemon.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&daemon.stderr);
    assert!(stderr.contains("rules/r.yaml:5:17"), "{stderr}");

    // Renamed to an existing playbook, both accept it.
    std::fs::write(
        dir.path().join("rules/r.yaml"),
        rules.replace("restart-api", "fix"),
    )
    .unwrap();
    let (code, out) = validate_in(dir.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(", 1 playbook (revision"), "{out}");
}

#[test]
fn validate_reports_playbook_problems_with_positions() {
    let rules = "targets:\n  db: {kind: postgres, url: \"postgres://127.0.0.1:1/x\"}\n";
    let bad = "\
kind: playbook
name: bad
steps:
  - teleport: {to: mars}
  - name: render
    http: {url: \"http://x/{{ params.a \"}
  - sql: {target: nowhere, statement: SELECT 1}
";
    let dir = lab_dir(rules, &[("bad", bad.to_string())]);
    let (code, out) = validate_in(dir.path());
    assert_eq!(code, Some(2), "{out}");
    for at in [
        "playbooks/bad.yaml:4:5:",
        "playbooks/bad.yaml:6:17:",
        "playbooks/bad.yaml:7:19:",
    ] {
        assert!(out.contains(at), "{at} missing in:\n{out}");
    }
    assert!(out.contains("unknown field `teleport`"), "{out}");
    assert!(out.contains("nowhere"), "{out}");
}
