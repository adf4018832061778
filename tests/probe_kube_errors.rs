//! Kubernetes checks that fail, and how: a missing object, an unknown kind, RBAC refusals, wrong
//! credentials, a dead API server, mistakes in rule files (reported at their field), and the
//! real `patrol run` binary against the API in `kube_support` (an in-process server, not a real
//! cluster; `PATROL_TEST_KUBECONFIG` switches to a real one, see `kube_support`).

mod common;
mod kube_support;

use std::collections::BTreeMap;

use kube_support::Cluster;
use kube_support::checks::expect_error;
use patrol::config::load_with_env;

#[tokio::test]
async fn a_missing_object_and_refusals_are_errors_in_the_servers_words() {
    let k = Cluster::start().await;
    expect_error(
        &k,
        "    resource: deployment\n    object_name: nope\n    value: available_ratio\n",
        &[
            "Deployment nope not found",
            &format!("deployments in namespace {}", k.namespace),
        ],
    )
    .await;
    expect_error(
        &k,
        "    resource: {api_version: example.com/v1, kind: Widget}\n    value: count\n",
        &["cannot discover kind Widget in example.com/v1"],
    )
    .await;
    if k.skip_on_real_cluster("RBAC of the test's own user is not ours to change") {
        return;
    }
    k.store()
        .forbidden
        .push(("list".into(), "deployments".into()));
    expect_error(
        &k,
        "    resource: deployment\n    value: available_ratio\n",
        &[
            &format!(
                "cannot list deployments in namespace {}: forbidden: patrol may not list",
                k.namespace
            ),
            "cannot list resource \"deployments\" in API group \"apps\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn wrong_credentials_and_a_dead_server_are_errors() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("the case is made by editing the in-process server's kubeconfig") {
        return;
    }
    let text = std::fs::read_to_string(k.kubeconfig()).unwrap();
    std::fs::write(
        k.kubeconfig(),
        text.replace(kube_support::server::TOKEN, "stolen-token"),
    )
    .unwrap();
    expect_error(
        &k,
        "    resource: pod\n    value: count\n",
        &["unauthorized"],
    )
    .await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = k.server().unwrap().url();
    std::fs::write(
        k.kubeconfig(),
        text.replace(&url, &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let started = std::time::Instant::now();
    expect_error(
        &k,
        "    resource: pod\n    value: count\n",
        &["cannot list pods"],
    )
    .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn mistakes_are_reported_at_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
targets:
  k8s:
    kind: kubernetes
    in_cluster: true
    context: prod
    namespace: Shop
checks:
  - name: a
    kind: kubernetes
    target: k8s
    resource: service
    value: count
  - name: b
    kind: kubernetes
    target: k8s
    resource: pod
    value: pvc_bound
    window: 1h
  - name: c
    kind: kubernetes
    target: k8s
    resource: node
    namespace: shop
    value: not_ready
  - name: d
    kind: kubernetes
    target: k8s
    resource: {api_version: a/b/c, kind: Thing}
    value: count
  - name: e
    kind: kubernetes
    target: k8s
    resource: pod
    value: readiness
";
    let file = dir.path().join("k.yaml");
    std::fs::write(&file, text).unwrap();
    let diags = load_with_env(&[file], &BTreeMap::new()).unwrap_err();
    let at = |line: u32, part: &str| {
        assert!(
            diags
                .iter()
                .any(|d| d.line == line && d.message.contains(part)),
            "no {part:?} at line {line}: {diags:#?}"
        );
    };
    at(5, "set either `in_cluster: true` or `context`");
    at(6, "namespace \"Shop\" is not a valid namespace name");
    at(11, "unknown resource \"service\"");
    at(17, "value pvc_bound applies to pvc only, not to pod");
    at(18, "`window` applies to value warning_events only");
    at(23, "nodes are not namespaced");
    at(28, "api_version \"a/b/c\" must be `group/version` or `v1`");
    at(
        34,
        "unknown value \"readiness\"; use one of: available_ratio",
    );
}

#[tokio::test]
async fn patrol_run_reports_the_cluster() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("the expected values are the seeded statuses") {
        return;
    }
    let text = format!(
        "{}checks:\n{}",
        k.targets_yaml("prod"),
        [
            "  - name: checkout-available",
            "    kind: kubernetes",
            "    target: prod",
            "    resource: deployment",
            "    object_name: checkout",
            "    value: available_ratio",
            "    crit: lt(1)",
            "  - name: crashloops",
            "    kind: kubernetes",
            "    target: prod",
            "    resource: pod",
            "    value: crashloop",
            "    crit: gt(0)",
            "  - name: nodes-not-ready",
            "    kind: kubernetes",
            "    target: prod",
            "    resource: node",
            "    value: not_ready",
            "    warn: gt(0)\n",
        ]
        .join("\n")
    );
    std::fs::write(k.dir().join("rules.yaml"), text).unwrap();
    let out = tokio::process::Command::new(common::patrol_bin())
        .args([
            "run",
            "--rules",
            "rules.yaml",
            "--format",
            "json",
            "--store",
            "sqlite://s.db",
        ])
        .current_dir(k.dir())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "crit fails the run: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: BTreeMap<String, serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l.get("check").is_some())
        .map(|l| (l["check"].as_str().unwrap().to_string(), l))
        .collect();
    let checkout = &lines["checkout-available"];
    assert_eq!(
        (checkout["series"].as_str(), checkout["status"].as_str()),
        (Some("checkout"), Some("crit"))
    );
    assert!(
        (checkout["value"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-6,
        "{checkout}"
    );
    assert_eq!(lines["crashloops"]["value"], 1.0);
    assert_eq!(lines["crashloops"]["status"], "crit");
    assert_eq!(lines["nodes-not-ready"]["value"], 1.0);
    assert_eq!(lines["nodes-not-ready"]["status"], "warn");
    assert_eq!(lines["nodes-not-ready"]["target"], "prod");
}

/// `patrol validate --online` on `file`: exit code and both streams.
async fn validate_online(file: &std::path::Path) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(common::patrol_bin())
        .args(["validate", "--online"])
        .arg(file)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn validate_online_asks_the_api_server_and_names_the_refusal() {
    let k = Cluster::start().await;
    let file = k.dir().join("targets.yaml");
    std::fs::write(&file, k.targets_yaml("prod")).unwrap();
    let (code, text) = validate_online(&file).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok: 0 checks, 1 targets"), "{text}");
    if k.skip_on_real_cluster("the refusal is made by the in-process server") {
        return;
    }
    let kubeconfig = std::fs::read_to_string(k.kubeconfig()).unwrap();
    std::fs::write(
        k.kubeconfig(),
        kubeconfig.replace(kube_support::server::TOKEN, "expired"),
    )
    .unwrap();
    let (code, text) = validate_online(&file).await;
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("targets.yaml:2:3: error:")
            && text.contains("cannot read the API server's version: unauthorized"),
        "{text}"
    );
    assert!(
        !text.contains("expired"),
        "the token is not printed: {text}"
    );
}
