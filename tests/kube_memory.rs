//! Probe memory in the store, through `restarts_increase`: the restart counts a run saw are
//! stored with the run, so the next run compares with them — in another `patrol run` process,
//! in a daemon after a restart, on SQLite and on PostgreSQL. A check whose measuring settings
//! changed starts afresh; a check that does not remember stores nothing.
//!
//! The Kubernetes API is the in-process server of `kube_support` (restart counts are changed in
//! its object store between runs), so these tests are skipped on a real cluster.

mod common;
mod daemon_support;
mod kube_support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kube_support::Cluster;
use kube_support::checks::{by_series, rules};
use patrol::engine::{RunOptions, run_checks, select_checks};
use patrol::result::{CheckResult, RunRecord, Status, StatusCounts, Value};
use patrol::store::{ProbeMemory, Store};
use serde_json::json;

const INCREASE_CHECK: &str = "  - name: restarts-up\n    kind: kubernetes\n    target: k8s\n    resource: pod\n    selector: app=checkout\n    value: restarts_increase\n    crit: gt(0)\n";

const RESTARTS_CHECK: &str = "  - name: restarts-now\n    kind: kubernetes\n    target: k8s\n    resource: pod\n    selector: app=checkout\n    value: restarts\n";

/// Sets the restart count of the seeded pod `name`.
fn set_restarts(k: &Cluster, name: &str, restarts: i64) {
    let mut store = k.store();
    let mut pod = store.get("", "pods", &k.namespace, name).unwrap();
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts);
    store.insert(pod);
}

/// Replaces the pod `name` by a new one of the same name (another UID) with `restarts`.
fn replace_pod(k: &Cluster, name: &str, restarts: i64) {
    let mut store = k.store();
    let mut pod = store.remove("", "pods", &k.namespace, name).unwrap();
    pod["metadata"]["uid"] = json!(uuid::Uuid::now_v7().to_string());
    pod["status"]["containerStatuses"][0]["restartCount"] = json!(restarts);
    store.insert(pod);
}

/// Writes the rules file with the checks (YAML list items) and a target `k8s` for `k`.
fn write_rules(k: &Cluster, dir: &Path, checks: &str) -> std::path::PathBuf {
    let file = dir.join("rules.yaml");
    std::fs::write(&file, format!("{}checks:\n{checks}", k.targets_yaml("k8s"))).unwrap();
    file
}

/// series → (value, status) of the JSON lines of one check.
fn by_series_json(lines: &[serde_json::Value], check: &str) -> BTreeMap<String, (f64, String)> {
    lines
        .iter()
        .filter(|l| l["check"] == check)
        .map(|l| {
            let value = l["value"]
                .as_f64()
                .unwrap_or_else(|| panic!("no value: {l}"));
            let status = l["status"].as_str().unwrap().to_string();
            (l["series"].as_str().unwrap().to_string(), (value, status))
        })
        .collect()
}

#[tokio::test]
async fn restarts_increase_is_counted_across_patrol_run_invocations() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("restart counts are the kubelet's") {
        return;
    }
    let rules = write_rules(&k, k.dir(), INCREASE_CHECK);
    let store = format!("sqlite://{}", k.dir().join("patrol.db").display());

    let (code, first) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 0, "{first:#?}");
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["value"], serde_json::Value::Null);
    assert_eq!(first[0]["message"], "no value measured");

    set_restarts(&k, "checkout-7d9f-c", 9);
    replace_pod(&k, "checkout-7d9f-b", 3);
    let (code, second) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 1, "an increase is crit: {second:#?}");
    let got = by_series_json(&second, "restarts-up");
    let crit = || "crit".to_string();
    let ok = || "ok".to_string();
    assert_eq!(
        got,
        BTreeMap::from([
            ("checkout-7d9f-a".into(), (0.0, ok())),
            // A replaced pod counts its own restarts, from 0.
            ("checkout-7d9f-b".into(), (3.0, crit())),
            ("checkout-7d9f-c".into(), (2.0, crit())),
        ])
    );

    let (code, third) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 0, "nothing restarted since: {third:#?}");
    assert!(
        by_series_json(&third, "restarts-up")
            .values()
            .all(|(v, _)| *v == 0.0),
        "{third:#?}"
    );
}

/// Runs every check of `rules` through the engine into the store at `url` (opened anew, as
/// another process would) and returns the results of `check`.
async fn run_into(url: &str, rules: &patrol::config::RuleSet, check: &str) -> Vec<CheckResult> {
    let store = Store::open(url).await.unwrap();
    let checks = select_checks(rules, &[], &[]).unwrap();
    let outcome = run_checks(rules, &checks, &store, &RunOptions::default())
        .await
        .unwrap();
    outcome
        .results
        .into_iter()
        .filter(|r| r.check == check)
        .collect()
}

async fn stored_memories(url: &str) -> HashMap<String, ProbeMemory> {
    let store = Store::open(url).await.unwrap();
    store
        .probe_memories(&["restarts-up".into(), "restarts-now".into()])
        .await
        .unwrap()
}

/// The engine reads the memory before the run and stores what the probe left with the run.
async fn memory_is_stored_with_the_run(url: &str) {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("restart counts are the kubelet's") {
        return;
    }
    let rules = rules(&k, &format!("{INCREASE_CHECK}{RESTARTS_CHECK}"));
    let first = run_into(url, &rules, "restarts-up").await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].value, None);

    let stored = stored_memories(url).await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["restarts-up"],
        "a check that does not remember stores nothing"
    );
    let memory = &stored["restarts-up"];
    let check = rules.check("restarts-up").unwrap();
    assert_eq!(memory.fingerprint, check.measure_fingerprint);
    assert_eq!(memory.state["pods"].as_object().unwrap().len(), 3);
    assert_eq!(memory.state["pods"]["checkout-7d9f-c"]["restarts"], 7);

    set_restarts(&k, "checkout-7d9f-c", 10);
    let second = run_into(url, &rules, "restarts-up").await;
    assert_eq!(by_series(&second)["checkout-7d9f-c"], Value::Num(3.0));
    assert_eq!(by_series(&second)["checkout-7d9f-a"], Value::Num(0.0));

    // Another selector measures other pods: the memory of the old settings does not apply.
    let changed = INCREASE_CHECK.replace("app=checkout", "app=checkout,tier!=none");
    let rules = kube_support::checks::rules(&k, &format!("{changed}{RESTARTS_CHECK}"));
    let check = rules.check("restarts-up").unwrap();
    assert_ne!(check.measure_fingerprint, memory.fingerprint);
    let fresh = run_into(url, &rules, "restarts-up").await;
    assert_eq!(fresh.len(), 1, "{fresh:#?}");
    assert_eq!(fresh[0].value, None, "a changed check starts afresh");
    let replaced = &stored_memories(url).await["restarts-up"];
    assert_eq!(replaced.fingerprint, check.measure_fingerprint);
    assert_eq!(replaced.state["pods"]["checkout-7d9f-c"]["restarts"], 10);
}

fn run_record(id: &str) -> RunRecord {
    let now = chrono::Utc::now();
    RunRecord {
        id: id.into(),
        started_at: now,
        finished_at: now,
        revision: "rev".into(),
        trigger: "test".into(),
        counts: StatusCounts::default(),
    }
}

fn memory(check: &str, n: i64) -> ProbeMemory {
    ProbeMemory {
        check: check.into(),
        fingerprint: format!("f{n}"),
        state: json!({"n": n}),
        updated_at: chrono::Utc::now(),
    }
}

/// The daemon's batches: several runs of one check in a batch leave the last memory; a later
/// batch replaces it; a failed batch leaves the memory as it was.
async fn batches_keep_the_last_memory_of_a_check(url: &str) {
    let store = Store::open(url).await.unwrap();
    let batch = [(run_record("r1"), vec![]), (run_record("r2"), vec![])];
    store
        .save_runs_with_memory(
            &batch,
            &[],
            &[memory("a", 1), memory("b", 2), memory("a", 3)],
            &[],
        )
        .await
        .unwrap();
    let names = ["a".to_string(), "b".to_string(), "c".to_string()];
    let got = store.probe_memories(&names).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got["a"].fingerprint.as_str(), &got["a"].state),
        ("f3", &json!({"n": 3}))
    );
    assert_eq!(got["b"].state, json!({"n": 2}));

    store
        .save_run_with_memory(&run_record("r3"), &[], &[], &[memory("b", 4)])
        .await
        .unwrap();
    assert_eq!(
        store.probe_memories(&names).await.unwrap()["b"].state,
        json!({"n": 4})
    );

    // The run id r3 exists: the batch fails, and its memory is not kept either.
    let refused = store
        .save_run_with_memory(&run_record("r3"), &[], &[], &[memory("a", 5)])
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.probe_memories(&names).await.unwrap()["a"].state,
        json!({"n": 3})
    );
}

common::on_both_backends!(
    memory_is_stored_with_the_run,
    batches_keep_the_last_memory_of_a_check
);

#[tokio::test]
async fn the_daemon_keeps_the_memory_across_a_restart() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("restart counts are the kubelet's") {
        return;
    }
    let yaml = format!("{}checks:\n{INCREASE_CHECK}", k.targets_yaml("k8s"));
    let mut d = daemon_support::DaemonProcess::start(&[("r.yaml", &yaml)], &[]).await;
    let first = run_in_daemon(&d).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].value, None);
    let (code, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");

    set_restarts(&k, "checkout-7d9f-c", 8);
    // The same directory (rules and store), a new process.
    let dir = std::mem::replace(&mut d.dir, tempfile::tempdir().unwrap());
    drop(d);
    let d = daemon_support::DaemonProcess::start_in(dir, &[]).await;
    let second = run_in_daemon(&d).await;
    assert_eq!(
        by_series(&second)["checkout-7d9f-c"],
        Value::Num(1.0),
        "{second:#?}"
    );
    let c = second
        .iter()
        .find(|r| r.series == "checkout-7d9f-c")
        .unwrap();
    assert_eq!(c.status, Status::Crit);

    // Kept in the daemon between its runs too.
    set_restarts(&k, "checkout-7d9f-c", 11);
    let third = run_in_daemon(&d).await;
    assert_eq!(
        by_series(&third)["checkout-7d9f-c"],
        Value::Num(3.0),
        "{third:#?}"
    );
}

/// Starts a run of every check through the API and waits until the daemon stored it.
async fn run_in_daemon(d: &daemon_support::DaemonProcess) -> Vec<CheckResult> {
    let started: serde_json::Value = d
        .http
        .post(d.url("/api/v1/runs"))
        .json(&json!({"checks": ["restarts-up"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = d.url(started["url"].as_str().unwrap());
    // The run is stored by the daemon's batch writer shortly after it finishes.
    let deadline = std::time::Instant::now() + daemon_support::WAIT;
    loop {
        let r = d.http.get(&url).send().await.unwrap();
        if r.status() == 200 {
            let body: serde_json::Value = r.json().await.unwrap();
            return serde_json::from_value(body["results"].clone()).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run {url} was not stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A drill's steady state compares with what `patrol run` stored: restarts since that run break
/// the steady state before anything is injected.
#[tokio::test]
async fn a_drill_steady_state_compares_with_the_stored_memory() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("restart counts are the kubelet's") {
        return;
    }
    let rules = write_rules(&k, k.dir(), INCREASE_CHECK);
    let store = format!("sqlite://{}", k.dir().join("patrol.db").display());
    let (code, _) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 0);
    set_restarts(&k, "checkout-7d9f-c", 9);
    let drill = k.dir().join("drill.yaml");
    std::fs::write(
        &drill,
        "kind: drill\nname: pods-stable\nsteady_state:\n  - { check: restarts-up }\n\
         faults:\n  - { at: 0s, for: 1s, exec: { inject: [true], revert: [true] } }\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(common::patrol_bin())
        .arg("drill")
        .arg(&drill)
        .arg("--rules")
        .arg(&rules)
        .args(["--store", &store, "--format", "json", "--report-dir"])
        .arg(k.dir().join("reports"))
        .env_remove("PATROL_STORE")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["status"], "failed");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("does not hold before"),
        "{report:#}"
    );
    let faults = report["faults"].as_array().cloned().unwrap_or_default();
    assert!(
        faults.iter().all(|f| f["injected_at"].is_null()),
        "nothing was injected: {faults:#?}"
    );
}
