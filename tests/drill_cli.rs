//! `patrol drill` end to end with the real binary: invalid drills, dry runs, a steady state that
//! does not hold, a passing drill with a proxy fault and an exec fault against a real HTTP
//! server, a wall-time abort, SIGINT/SIGTERM during a fault, and SIGKILL followed by `--recover`.

mod drill_support;

use std::process::Stdio;
use std::time::Duration;

use drill_support::{World, free_port, health_server, report_of, signal, streams};
use patrol::chaos::fault::JournalStatus;
use patrol::store::Store;

#[tokio::test]
async fn an_invalid_drill_exits_2_with_file_line_col() {
    let w = World::new();
    let file = w.write(
        "bad.yaml",
        "kind: drill\nname: bad\nfaults:\n  - { at: 1s, for: 2s, proxy: { proxy: nowhere, latency: 1s } }\n",
    );
    let out = w.drill(&[file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("{}:4:40: error: unknown proxy `nowhere`", file.display());
    assert!(stderr.contains(&want), "{}", streams(&out));
    assert!(
        !w.path("patrol.db").exists(),
        "nothing is opened for an invalid drill"
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_touches_nothing() {
    let w = World::new();
    let api = health_server().await;
    let file = w.write(
        "drill.yaml",
        &format!(
            "kind: drill\nname: dry\nsteady_state:\n  - {{ name: health, kind: http, url: 'http://{api}/health' }}\n\
             faults:\n  - {{ at: 0s, for: 1s, {} }}\n",
            w.exec_fault()
        ),
    );
    let out = w.drill(&[file.to_str().unwrap(), "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("#1 at 0s for 1s: exec"), "{stdout}");
    assert!(
        stdout.contains("blast radius"),
        "the plan shows the blast radius: {stdout}"
    );
    assert_eq!(w.exec_log(), "", "nothing was injected");
    assert!(
        !w.path("patrol.db").exists(),
        "the store was not even opened"
    );
    assert!(!w.path("reports").exists(), "no report is written");

    let out = w
        .drill(&[file.to_str().unwrap(), "--dry-run", "--format", "json"])
        .await;
    let plan = report_of(&out);
    assert_eq!(plan["faults"][0]["kind"], "exec");
    assert_eq!(plan["steady_state"][0]["check"], "health");
}

#[tokio::test]
async fn a_steady_state_that_does_not_hold_injects_nothing_and_exits_1() {
    let w = World::new();
    let closed = free_port().await;
    let file = w.write(
        "drill.yaml",
        &format!(
            "kind: drill\nname: unsteady\nsteady_state:\n  - {{ name: health, kind: http, url: 'http://127.0.0.1:{closed}/health', timeout: 2s }}\n\
             faults:\n  - {{ at: 0s, for: 1s, {} }}\n",
            w.exec_fault()
        ),
    );
    let out = w.drill(&[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "failed");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not hold before the drill"),
        "{reason}"
    );
    assert!(reason.contains("check health is error"), "{reason}");
    assert_eq!(report["faults"][0]["outcome"], "not injected");
    assert_eq!(w.exec_log(), "", "nothing was injected");
    let run = report["run_id"].as_str().unwrap();
    let entries = w.journal().await.of_run(run).await.unwrap();
    assert!(entries.is_empty(), "nothing journaled: {entries:?}");
}

#[tokio::test]
async fn a_drill_with_a_proxy_fault_and_an_exec_fault_passes() {
    let w = World::new();
    let api = health_server().await;
    let port = free_port().await;
    let rules = w.write(
        "rules.yaml",
        &format!(
            "checks:\n  - name: api-health\n    kind: http\n    url: http://127.0.0.1:{port}/health\n    \
             expect: {{ status: 200, json: {{ \"$.status\": eq(\"UP\") }} }}\n    timeout: 3s\n"
        ),
    );
    let file = w.write(
        "drill.yaml",
        &format!(
            "kind: drill
name: api-latency
steady_state: [ {{ check: api-health }} ]
proxies:
  - {{ name: lb, listen: '127.0.0.1:{port}', upstream: '{api}' }}
workload:
  http: {{ url: 'http://127.0.0.1:{port}/health', rate: 20/s, timeout: 3s }}
faults:
  - {{ at: 500ms, for: 1s, {exec} }}
  - {{ at: 1s, for: 2s, proxy: {{ proxy: lb, latency: 200ms }} }}
abort_when:
  - {{ check: api-health, failures: 3 }}
  - {{ wall_time: {{ above: 1m }} }}
verify:
  success_rate: ge(0.95)
  latency_p99: lt(3s)
  recovery: lt(10s)
  checks: {{ api-health: ok }}
rollback:
  - {{ command: [sh, -c, 'echo rollback >> {log}'] }}
drain: 1s
probe_interval: 500ms
",
            exec = w.exec_fault(),
            log = w.path("exec.log").display()
        ),
    );
    let out = w
        .drill(&[
            file.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--format",
            "json",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "passed", "{report:#}");
    assert_eq!(report["name"], "api-latency");
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2);
    for f in faults {
        assert_eq!(f["outcome"], "reverted", "{f:#}");
        assert!(
            f["injected_at"].is_string() && f["reverted_at"].is_string(),
            "{f:#}"
        );
        assert!(f["journal_id"].is_i64(), "{f:#}");
    }
    assert_eq!(faults[1]["kind"], "proxy");
    assert!(
        faults[1]["description"]
            .as_str()
            .unwrap()
            .contains("latency 200ms")
    );
    // The proxy fault really slowed requests down: some took at least its latency.
    let http = &report["workload"]["http"];
    assert!(http["requests"].as_u64().unwrap() > 20, "{http:#}");
    assert!(
        http["latency_ms"]["max"].as_f64().unwrap() >= 200.0,
        "{http:#}"
    );
    assert_eq!(report["steady_state"]["before"]["holds"], true);
    assert_eq!(report["steady_state"]["after"]["holds"], true);
    assert!(
        !report["steady_state"]["during"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(report["recovery_ms"].as_f64().is_some(), "{report:#}");
    let verify = report["verify"].as_array().unwrap();
    let whats: Vec<&str> = verify.iter().map(|v| v["what"].as_str().unwrap()).collect();
    assert_eq!(
        whats,
        [
            "success_rate",
            "latency_p99",
            "recovery",
            "check api-health"
        ]
    );
    assert!(verify.iter().all(|v| v["pass"] == true), "{verify:#?}");
    assert_eq!(w.exec_log(), "injected\nreverted\nrollback\n");
    assert!(w.active_faults().await.is_empty());
    assert_eq!(w.report_files("json").len(), 1);
    let md = std::fs::read_to_string(&w.report_files("md")[0]).unwrap();
    assert!(md.starts_with("# Drill api-latency: PASSED"), "{md}");
    let store = Store::open(&w.store_url()).await.unwrap();
    let runs = store
        .recent_drill_runs(Some("api-latency"), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "passed");
    assert_eq!(runs[0].report["run_id"], report["run_id"]);
}

/// A drill holding an exec fault and a proxy fault for a minute (steady state: the server).
async fn long_fault_drill(w: &World, extra: &str) -> std::path::PathBuf {
    let api = health_server().await;
    let port = free_port().await;
    w.write(
        "drill.yaml",
        &format!(
            "kind: drill
name: long-fault
steady_state:
  - {{ name: health, kind: http, url: 'http://{api}/health' }}
proxies:
  - {{ name: lb, listen: '127.0.0.1:{port}', upstream: '{api}' }}
faults:
  - {{ at: 0s, for: 60s, {exec} }}
  - {{ at: 0s, for: 60s, proxy: {{ proxy: lb, down: true }} }}
{extra}drain: 1s
probe_interval: 500ms
",
            exec = w.exec_fault()
        ),
    )
}

#[tokio::test]
async fn a_wall_time_abort_reverts_everything_and_exits_3() {
    let w = World::new();
    let file = long_fault_drill(&w, "abort_when: [ { wall_time: { above: 2s } } ]\n").await;
    let out = w.drill(&[file.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", streams(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "aborted");
    assert!(
        report["reason"].as_str().unwrap().contains("wall time"),
        "{report:#}"
    );
    for f in report["faults"].as_array().unwrap() {
        assert_eq!(f["outcome"], "reverted", "{f:#}");
    }
    assert_eq!(w.exec_log(), "injected\nreverted\n");
    assert!(w.active_faults().await.is_empty());
    assert_eq!(
        w.report_files("json").len(),
        1,
        "the aborted drill is reported"
    );
}

/// Starts the long drill, waits until its exec fault is injected, sends `sig`, and returns the
/// finished output.
async fn interrupted(w: &World, sig: i32) -> std::process::Output {
    let file = long_fault_drill(w, "").await;
    let child = w
        .drill_command(&[file.to_str().unwrap(), "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.wait_for_exec_log("injected").await;
    signal(child.id().unwrap(), sig);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("patrol ends soon after the signal")
        .unwrap()
}

async fn assert_rolled_back(w: &World, out: &std::process::Output, name: &str) {
    assert_eq!(out.status.code(), Some(3), "{}", streams(out));
    let report = report_of(out);
    assert_eq!(report["status"], "aborted");
    assert_eq!(report["reason"], format!("interrupted by {name}"));
    for f in report["faults"].as_array().unwrap() {
        assert_eq!(f["outcome"], "reverted", "{f:#}");
    }
    assert_eq!(w.exec_log(), "injected\nreverted\n", "the exec revert ran");
    assert!(
        w.active_faults().await.is_empty(),
        "nothing active in the journal"
    );
}

#[tokio::test]
async fn sigint_during_a_fault_reverts_it_and_exits_3() {
    let w = World::new();
    let out = interrupted(&w, libc::SIGINT).await;
    assert_rolled_back(&w, &out, "SIGINT").await;
}

#[tokio::test]
async fn sigterm_during_a_fault_reverts_it_and_exits_3() {
    let w = World::new();
    let out = interrupted(&w, libc::SIGTERM).await;
    assert_rolled_back(&w, &out, "SIGTERM").await;
}

#[tokio::test]
async fn after_sigkill_recover_reverts_what_the_journal_holds() {
    let w = World::new();
    let out = interrupted(&w, libc::SIGKILL).await;
    assert_eq!(out.status.code(), None, "killed");
    assert_eq!(
        w.exec_log(),
        "injected\n",
        "a killed patrol reverted nothing"
    );
    let active = w.active_faults().await;
    assert!(
        active
            .iter()
            .any(|e| e.kind == "exec" && e.status == JournalStatus::Injected),
        "{active:#?}"
    );

    let out = w.drill(&["--recover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exec fault #0"), "{stdout}");
    assert!(stdout.contains("reverted"), "{stdout}");
    assert_eq!(w.exec_log(), "injected\nreverted\n");
    assert!(w.active_faults().await.is_empty());

    let out = w.drill(&["--recover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to recover"));
}

#[test]
fn the_example_drills_are_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .current_dir(root)
        .args(["validate", "rules/", "playbooks/drills/"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drills = std::fs::read_dir(format!("{root}/playbooks/drills"))
        .unwrap()
        .count();
    assert!(drills >= 3);
    assert!(stdout.contains(&format!(", {drills} drills (")), "{stdout}");
}

#[tokio::test]
async fn after_sigkill_the_daemon_reverts_leftover_faults_when_it_starts() {
    let w = World::new();
    let out = interrupted(&w, libc::SIGKILL).await;
    assert_eq!(out.status.code(), None, "killed");
    assert_eq!(w.exec_log(), "injected\n");
    std::fs::create_dir_all(w.path("rules")).unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_patrol"))
        .current_dir(w.dir.path())
        .args(["daemon", "--rules", "rules", "--listen", "127.0.0.1:0"])
        .arg("--store")
        .arg(w.store_url())
        .env_remove("PATROL_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The daemon reverts before it starts inspecting: the exec fault's revert command runs.
    w.wait_for_exec_log("reverted").await;
    assert!(w.active_faults().await.is_empty());
    daemon.kill().await.unwrap();
}
