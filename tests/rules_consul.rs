//! Rules kept in Consul KV (`--rules consul://host:port/prefix`): `patrol validate`, `patrol run`
//! and `patrol daemon` as users run them (the built binary as a process), against the in-process
//! Consul of tests/consul_support — NOT a real Consul (Debian has no `consul` package), but a
//! server speaking Consul's real KV HTTP API: base64 values, `X-Consul-Index`, `?recurse`,
//! blocking queries on `?index=&wait=`, ACL tokens answered with 403 `ACL not found`.

#[path = "consul_support/mod.rs"]
mod consul_support;
#[path = "daemon_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use consul_support::FakeConsul;
use serde_json::Value;
use support::{Spawned, WAIT, checks_yaml, http_check, ok_runs, sample, target_server};

const PREFIX: &str = "patrol/rules";

/// `consul://127.0.0.1:PORT/patrol/rules` for the fake.
fn source_of(consul: &FakeConsul) -> String {
    format!(
        "{}/{PREFIX}",
        consul.url.replacen("http://", "consul://", 1)
    )
}

fn key(name: &str) -> String {
    format!("{PREFIX}/{name}")
}

/// A rule file with one TCP check per name, against a port that is listening.
fn tcp_checks(port: u16, names: &[&str]) -> String {
    let lines: String = names
        .iter()
        .map(|n| format!("  - {{name: {n}, kind: tcp, address: \"127.0.0.1:{port}\"}}\n"))
        .collect();
    format!("checks:\n{lines}")
}

/// A listening TCP port for the checks (kept open while the listener lives).
fn listening_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A rule file whose line 5 has a broken condition (column 11).
const BROKEN: &str =
    "checks:\n  - name: broken\n    kind: tcp\n    address: 127.0.0.1:1\n    crit: gt(\n";

/// Runs `patrol ARGS` in `dir` with only the given Consul environment; bounded by [`WAIT`].
async fn patrol(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("PATROL_STORE")
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_CACERT")
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("patrol finishes in time")
        .unwrap()
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The recursive listings of the prefix the fake received.
fn listings(consul: &FakeConsul) -> Vec<String> {
    consul
        .requests()
        .into_iter()
        .filter(|r| r.starts_with(&format!("GET /v1/kv/{PREFIX}/")) && r.contains("recurse"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_run_read_one_snapshot_of_the_prefix() {
    let consul = FakeConsul::start().await;
    let (_listener, port) = listening_port();
    consul.put(&key("web.yaml"), tcp_checks(port, &["web_up"]).as_bytes());
    let last_rule = consul.put(&key("team/db.yml"), tcp_checks(port, &["db_up"]).as_bytes());
    // Not rule files: another extension, a hidden folder, a sibling prefix, a folder key, a drill.
    consul.put(&key("README.md"), b"not: [yaml");
    consul.put(&key(".draft/wip.yaml"), BROKEN.as_bytes());
    consul.put("patrol/rules-old/old.yaml", BROKEN.as_bytes());
    consul.put(&key("team/"), b"");
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);

    let out = patrol(dir.path(), &["validate", &source, "--format", "json"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["checks"], 2);
    assert_eq!(
        report["files"],
        serde_json::json!([
            format!("{source}/team/db.yml"),
            format!("{source}/web.yaml")
        ])
    );
    let revision = report["revision"].as_str().unwrap().to_string();
    assert!(
        revision.ends_with(&format!("@consul:{last_rule}")),
        "the highest ModifyIndex of the rule keys: {revision}"
    );
    assert_eq!(listings(&consul).len(), 1, "one snapshot");

    let out = patrol(
        dir.path(),
        &[
            "run",
            "--rules",
            &source,
            "--store",
            "sqlite://s.db",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let results: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut checks: Vec<&str> = results
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    checks.sort_unstable();
    assert_eq!(checks, ["db_up", "web_up"]);
    for r in &results {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(
            r["revision"],
            revision.as_str(),
            "results carry the revision"
        );
    }
    assert_eq!(listings(&consul).len(), 2, "one snapshot per command");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_key_is_named_with_its_line_and_column() {
    let consul = FakeConsul::start().await;
    let (_listener, port) = listening_port();
    consul.put(&key("good.yaml"), tcp_checks(port, &["up"]).as_bytes());
    consul.put(&key("bad.yaml"), BROKEN.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);
    let named = format!("{source}/bad.yaml:5:11: error: condition");

    let out = patrol(dir.path(), &["validate", &source], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&named),
        "{}",
        both(&out)
    );

    let out = patrol(
        dir.path(),
        &["run", "--rules", &source, "--store", "sqlite://s.db"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains(&named), "{}", both(&out));
    assert!(
        !dir.path().join("s.db").exists(),
        "nothing ran, not even the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_prefix_and_an_unreachable_consul_are_clear_errors() {
    let consul = FakeConsul::start().await;
    consul.put("elsewhere/rules.yaml", b"checks: []");
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);

    let out = patrol(dir.path(), &["validate", &source], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains(&format!(
            "no rule files under {source} (keys ending in .yaml or .yml)"
        )),
        "{}",
        both(&out)
    );

    let (listener, closed) = listening_port();
    drop(listener);
    let out = patrol(
        dir.path(),
        &["validate", &format!("consul://127.0.0.1:{closed}/{PREFIX}")],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains(&format!("cannot reach Consul at http://127.0.0.1:{closed}")),
        "{}",
        both(&out)
    );

    let out = patrol(dir.path(), &["validate", "http://127.0.0.1:1/rules"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("unsupported rules source http://"),
        "{}",
        both(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_consul_http_token_and_is_never_shown() {
    let token = "acl-token-5f3c9a1e-never-shown";
    let consul = FakeConsul::start_with_token(token).await;
    let (_listener, port) = listening_port();
    consul.put(&key("web.yaml"), tcp_checks(port, &["up"]).as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);

    let refused = patrol(dir.path(), &["validate", &source], &[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", both(&refused));
    let text = both(&refused);
    assert!(
        text.contains("Consul refused to list the keys (403 Forbidden: ACL not found)")
            && text.contains("CONSUL_HTTP_TOKEN"),
        "{text}"
    );

    let wrong = patrol(
        dir.path(),
        &["validate", &source],
        &[("CONSUL_HTTP_TOKEN", "a-wrong-token-value")],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(2), "{}", both(&wrong));
    assert!(
        !both(&wrong).contains("a-wrong-token-value"),
        "{}",
        both(&wrong)
    );

    let accepted = patrol(
        dir.path(),
        &["run", "--rules", &source, "--store", "sqlite://s.db"],
        &[("CONSUL_HTTP_TOKEN", token), ("RUST_LOG", "debug")],
    )
    .await;
    assert_eq!(accepted.status.code(), Some(0), "{}", both(&accepted));
    assert!(!both(&accepted).contains(token), "{}", both(&accepted));
    assert!(
        !consul.requests().iter().any(|r| r.contains(token)),
        "the token travels in a header, never in the URL"
    );
}

/// `patrol daemon` with its own arguments and environment (the shared `DaemonProcess` always
/// passes `--rules rules`, which would win over a bootstrap file, and cannot set variables); the
/// process itself is the shared [`Spawned`].
struct Daemon {
    process: Spawned,
    http: reqwest::Client,
}

impl Daemon {
    /// Starts the daemon in `dir` (store `d.db`, port chosen by itself) and waits until it is
    /// ready; `Err((exit code, stderr))` when it exits instead.
    async fn start(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Daemon, (Option<i32>, String)> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_patrol"));
        cmd.current_dir(dir)
            .args([
                "daemon",
                "--store",
                "sqlite://d.db",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--timezone", "UTC"])
            .args(args)
            .env_remove("PATROL_API_TOKEN")
            .env_remove("PATROL_STORE")
            .env_remove("CONSUL_HTTP_TOKEN")
            .env_remove("CONSUL_CACERT")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = Daemon {
            process: Spawned::spawn(&mut cmd).await?,
            http: reqwest::Client::new(),
        };
        daemon
            .wait_until("ready", || async {
                daemon
                    .get("/readyz")
                    .await
                    .is_some_and(|r| r.status() == 200)
            })
            .await;
        Ok(daemon)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.process.port)
    }

    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        self.http.get(self.url(path)).send().await.ok()
    }

    async fn json(&self, path: &str) -> Value {
        self.get(path).await.unwrap().json().await.unwrap()
    }

    async fn status(&self) -> Value {
        self.json("/api/v1/status").await
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.unwrap().text().await.unwrap()
    }

    async fn wait_until<Fut>(&self, what: &str, cond: impl Fn() -> Fut)
    where
        Fut: std::future::Future<Output = bool>,
    {
        self.process.wait_until(what, cond).await
    }

    fn terminate(&self) -> (Option<i32>, String) {
        self.process.terminate()
    }
}

fn revision_of(status: &Value) -> String {
    status["revision"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_consul_with_blocking_queries_and_refuses_invalid_keys() {
    let consul = FakeConsul::start().await;
    let (port, _) = target_server().await;
    let first = http_check("first", port, "/ok", "every: 1s");
    let second = http_check("second", port, "/ok", "every: 1s");
    let started_at = consul.put(
        &key("r.yaml"),
        checks_yaml(std::slice::from_ref(&first)).as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--rules", &source_of(&consul)], &[])
        .await
        .unwrap();
    let start_revision = revision_of(&d.status().await);
    assert!(
        start_revision.ends_with(&format!("@consul:{started_at}")),
        "{start_revision}"
    );

    // A changed key applies through the watch, within the bound.
    let changed_at = consul.put(
        &key("r.yaml"),
        checks_yaml(&[first.clone(), second.clone()]).as_bytes(),
    );
    d.wait_until("the changed rules (Consul watch)", || async {
        revision_of(&d.status().await).ends_with(&format!("@consul:{changed_at}"))
    })
    .await;
    d.wait_until("the new check runs", || async {
        ok_runs(&d.metrics().await, "second").is_some()
    })
    .await;
    let watching = consul.requests();
    assert!(
        watching
            .iter()
            .any(|r| r.contains("recurse") && r.contains("index=") && r.contains("wait=")),
        "the watch uses blocking queries: {watching:#?}"
    );

    // An invalid key never replaces the rules in force.
    let applied = d.status().await;
    consul.put(&key("bad.yaml"), BROKEN.as_bytes());
    d.wait_until("the refused reload", || async {
        !d.status().await["last_reload_error"].is_null()
    })
    .await;
    let refused = d.status().await;
    assert_eq!(
        refused["revision"], applied["revision"],
        "the old revision keeps running"
    );
    let problem = &refused["last_reload_error"]["problems"][0];
    assert_eq!(
        problem["file"],
        format!("{}/bad.yaml", source_of(&consul)),
        "{refused}"
    );
    assert_eq!(
        (&problem["line"], &problem["column"]),
        (&5.into(), &11.into())
    );
    assert_eq!(refused["reload_failures"], 1, "one refusal per change");
    assert_eq!(
        sample(&d.metrics().await, "patrol_config_reload_failures_total"),
        Some(1.0)
    );
    let runs_before = ok_runs(&d.metrics().await, "second").unwrap();
    d.wait_until("checks still running on the old revision", || async {
        ok_runs(&d.metrics().await, "second").unwrap_or(0.0) > runs_before
    })
    .await;
    // An asked-for reload reads Consul again and is refused the same way.
    let asked = d.http.post(d.url("/api/v1/reload")).send().await.unwrap();
    assert_eq!(asked.status(), 422);
    let asked: Value = asked.json().await.unwrap();
    assert_eq!(asked["revision"], applied["revision"], "{asked}");

    // Fixed: the next revision applies and the error clears.
    let fixed_at = consul.put(&key("bad.yaml"), b"# fixed\n");
    d.wait_until("the fixed rules", || async {
        let s = d.status().await;
        s["last_reload_error"].is_null()
            && revision_of(&s).ends_with(&format!("@consul:{fixed_at}"))
    })
    .await;
    let asked = d.http.post(d.url("/api/v1/reload")).send().await.unwrap();
    assert_eq!(asked.status(), 200, "a reload from Consul on request");

    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("watching consul://"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_does_not_start_on_invalid_rules_in_consul() {
    let consul = FakeConsul::start().await;
    consul.put(&key("bad.yaml"), BROKEN.as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);
    let Err((code, log)) = Daemon::start(dir.path(), &["--rules", &source], &[]).await else {
        panic!("the daemon started on invalid rules");
    };
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains(&format!("{source}/bad.yaml:5:11: error: condition")),
        "{log}"
    );
    assert!(
        log.contains("problem(s) in the rules; not starting"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_file_names_consul_and_its_token_by_reference() {
    let token = "acl-token-bootstrap-7d41-never-shown";
    let consul = FakeConsul::start_with_token(token).await;
    let (port, _) = target_server().await;
    let first = http_check("first", port, "/ok", "every: 1s");
    consul.put(
        &key("r.yaml"),
        checks_yaml(std::slice::from_ref(&first)).as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("patrol.yaml"),
        format!(
            "rules_source: {}\nconsul_token: ${{env:TEAM_CONSUL_TOKEN}}\n",
            source_of(&consul)
        ),
    )
    .unwrap();
    let d = Daemon::start(
        dir.path(),
        &["--config", "patrol.yaml"],
        &[("TEAM_CONSUL_TOKEN", token), ("RUST_LOG", "debug")],
    )
    .await
    .unwrap();
    assert!(revision_of(&d.status().await).contains("@consul:"));
    // The watch carries the token too.
    let changed_at = consul.put(
        &key("r.yaml"),
        checks_yaml(&[first, http_check("second", port, "/ok", "every: 1s")]).as_bytes(),
    );
    d.wait_until("the changed rules", || async {
        revision_of(&d.status().await).ends_with(&format!("@consul:{changed_at}"))
    })
    .await;
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(token), "the token never reaches the log");

    // Without the variable the bootstrap file is refused, located.
    let Err((code, log)) = Daemon::start(dir.path(), &["--config", "patrol.yaml"], &[]).await
    else {
        panic!("the daemon started without its token");
    };
    assert_eq!(code, Some(2), "{log}");
    assert!(
        log.contains("patrol.yaml:2:15: error: environment variable TEAM_CONSUL_TOKEN is not set"),
        "{log}"
    );
}

/// A TCP proxy in front of a Consul: switched to another server or cut off (live connections
/// dropped, new ones closed at once), as an outage or a restart looks to patrol.
struct Proxy {
    port: u16,
    /// Where connections go (`None`: down), and a generation bumped on every switch.
    target: tokio::sync::watch::Sender<(Option<String>, u64)>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (target, _) = tokio::sync::watch::channel((Some(address_of(upstream)), 0));
        let targets = target.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut changes = targets.subscribe();
                let (to, generation) = changes.borrow_and_update().clone();
                let Some(to) = to else { continue };
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = changes.wait_for(|(_, g)| *g != generation) => {}
                    }
                });
            }
        });
        Proxy { port, target }
    }

    /// Sends new connections to `upstream` (`None`: refuses them); cuts the live ones.
    fn switch(&self, upstream: Option<&str>) {
        self.target.send_modify(|(to, generation)| {
            *to = upstream.map(address_of);
            *generation += 1;
        });
    }
}

/// `127.0.0.1:PORT` of `http://127.0.0.1:PORT`.
fn address_of(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_backs_off_during_an_outage_and_follows_a_restarted_consul() {
    let before = FakeConsul::start().await;
    let (port, _) = target_server().await;
    let first = http_check("first", port, "/ok", "every: 1s");
    for i in 0..5 {
        before.put(&format!("unrelated/{i}"), b"x");
    }
    let old_index = before.put(
        &key("r.yaml"),
        checks_yaml(std::slice::from_ref(&first)).as_bytes(),
    );
    let proxy = Proxy::start(&before.url).await;
    let dir = tempfile::tempdir().unwrap();
    let source = format!("consul://127.0.0.1:{}/{PREFIX}", proxy.port);
    let d = Daemon::start(dir.path(), &["--rules", &source], &[])
        .await
        .unwrap();
    d.wait_until("the watch's blocking query", || async {
        listings(&before).iter().any(|r| r.contains("index="))
    })
    .await;

    proxy.switch(None);
    d.wait_until("the outage logged with its back-off", || async {
        d.process.log().contains("retrying in 1s")
    })
    .await;
    d.wait_until("a longer back-off for the next failure", || async {
        d.process.log().contains("retrying in 2s")
    })
    .await;
    assert!(
        revision_of(&d.status().await).ends_with(&format!("@consul:{old_index}")),
        "an outage is not a reload"
    );

    // Consul comes back restarted: a fresh raft index, lower than the one the watch knew.
    let after = FakeConsul::start().await;
    let new_index = after.put(
        &key("r.yaml"),
        checks_yaml(&[first, http_check("second", port, "/ok", "every: 1s")]).as_bytes(),
    );
    assert!(new_index < old_index);
    proxy.switch(Some(&after.url));
    d.wait_until("the rules of the restarted Consul", || async {
        revision_of(&d.status().await).ends_with(&format!("@consul:{new_index}"))
    })
    .await;
    let later = after.put(&key("more.yaml"), b"# blocking again\n");
    d.wait_until(
        "a change after the restart (the watch blocks again)",
        || async { revision_of(&d.status().await).ends_with(&format!("@consul:{later}")) },
    )
    .await;
    assert!(
        listings(&after)
            .iter()
            .any(|r| r.contains(&format!("index={new_index}"))),
        "{:#?}",
        listings(&after)
    );
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
}

/// `validate --rules`, a drill's steady-state checks and the shadow report take the Consul
/// source like `run` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_drill_and_shadow_report_read_rules_from_consul() {
    let consul = FakeConsul::start().await;
    let (_listener, port) = listening_port();
    consul.put(
        &key("web.yaml"),
        format!(
            "checks:\n  - {{name: web_up, kind: tcp, address: \"127.0.0.1:{port}\"}}\n  \
             - {{name: web_shadow, kind: tcp, address: \"127.0.0.1:{port}\", mode: shadow}}\n"
        )
        .as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let source = source_of(&consul);

    let out = patrol(dir.path(), &["validate", "--rules", &source], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(both(&out).contains("ok: 2 checks"), "{}", both(&out));

    let drill = dir.path().join("drill.yaml");
    std::fs::write(
        &drill,
        "kind: drill\nname: from-consul\nsteady_state:\n  - { check: web_up }\n\
         faults:\n  - { at: 0s, for: 1s, exec: { inject: [true], revert: [true] } }\n",
    )
    .unwrap();
    let out = patrol(
        dir.path(),
        &[
            "drill",
            drill.to_str().unwrap(),
            "--rules",
            &source,
            "--dry-run",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["steady_state"][0]["check"], "web_up", "{plan}");

    let out = patrol(
        dir.path(),
        &[
            "shadow",
            "report",
            "--rules",
            &source,
            "--store",
            "sqlite://s.db",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web_shadow"),
        "the shadow check without results is listed: {}",
        both(&out)
    );
    assert_eq!(listings(&consul).len(), 3, "one snapshot per command");
}
