//! `patrol validate --online` with kubernetes checks, on the built binary against the in-process
//! API server of `kube_support` (403s configured as RBAC would answer them): each check lists
//! what it reads once (`limit=1`, its own namespace and selectors), and a refusal is reported at
//! the check, naming the verb and resource to grant and the role file; a target that does not
//! answer is reported once, not again for each of its checks. The refusals need the in-process
//! server, so these tests are skipped on a real cluster.

mod common;
mod kube_support;

use std::path::Path;

use kube_support::{Cluster, Resource};

/// Runs `patrol validate --online rules/k.yaml` in `dir`: (exit code, stdout, stderr).
async fn validate_online(dir: &Path) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(common::patrol_bin())
        .current_dir(dir)
        .args(["validate", "--online", "rules/k.yaml"])
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes rules/k.yaml in `dir` with `targets` and `checks` (YAML list items); returns its text.
fn write_rules(dir: &Path, targets: &str, checks: &str) -> String {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let text = format!("{targets}checks:\n{checks}");
    std::fs::write(dir.join("rules/k.yaml"), &text).unwrap();
    text
}

/// `rules/k.yaml:LINE:5` of the check `name` in `text`.
fn place(text: &str, name: &str) -> String {
    let line = text
        .lines()
        .position(|l| l == format!("  - name: {name}"))
        .unwrap_or_else(|| panic!("no check {name}"));
    format!("rules/k.yaml:{}:5", line + 1)
}

fn check(name: &str, fields: &str) -> String {
    format!("  - name: {name}\n    kind: kubernetes\n    target: k8s\n{fields}")
}

const ROLE: &str = "deploy/kubernetes/rbac-inspect.yaml";

#[tokio::test]
async fn refused_lists_are_reported_at_each_check_with_verb_and_resource() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("403s are configured in the in-process server") {
        return;
    }
    {
        let mut s = k.store();
        for plural in ["pods", "deployments", "nodes"] {
            s.forbidden.push(("list".into(), plural.into()));
        }
    }
    let checks = [
        check(
            "pods-crashloop",
            "    resource: pod\n    value: crashloop\n    crit: gt(0)\n",
        ),
        check(
            "web-available",
            "    resource: deployment\n    namespace: all\n    value: available_ratio\n",
        ),
        check("nodes-ready", "    resource: node\n    value: not_ready\n"),
        check(
            "warnings",
            "    resource: event\n    value: warning_events\n",
        ),
        check("jobs", "    resource: job\n    value: job_failed\n"),
    ];
    let text = write_rules(k.dir(), &k.targets_yaml("k8s"), &checks.concat());
    let (code, stdout, stderr) = validate_online(k.dir()).await;
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let want = [
        format!(
            "{}: error: check pods-crashloop: patrol may not list pods in namespace shop \
             (forbidden); grant \"list\" on \"pods\" (see {ROLE})",
            place(&text, "pods-crashloop")
        ),
        format!(
            "{}: error: check web-available: patrol may not list deployments in all namespaces \
             (forbidden); grant \"list\" on \"deployments\" in API group \"apps\" cluster-wide \
             (a ClusterRoleBinding) (see {ROLE})",
            place(&text, "web-available")
        ),
        format!(
            "{}: error: check nodes-ready: patrol may not list nodes (forbidden); grant \"list\" \
             on \"nodes\" cluster-wide (a ClusterRoleBinding) (see {ROLE})",
            place(&text, "nodes-ready")
        ),
    ];
    let mut got: Vec<&str> = stdout.lines().collect();
    got.sort();
    let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want, "stderr:\n{stderr}");
    assert!(stderr.contains("3 problems found"), "{stderr}");
}

#[tokio::test]
async fn granted_lists_pass_and_are_tried_once_with_the_checks_selectors() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("the test reads the in-process server's request log") {
        return;
    }
    let checks = [
        check(
            "checkout-restarts",
            "    resource: pod\n    selector: app=checkout\n    field_selector: status.phase=Running\n    value: restarts\n",
        ),
        check(
            "web-available",
            "    resource: deployment\n    value: available_ratio\n",
        ),
    ];
    write_rules(k.dir(), &k.targets_yaml("k8s"), &checks.concat());
    let (code, stdout, stderr) = validate_online(k.dir()).await;
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ok: 2 checks, 1 targets"), "{stdout}");
    let s = k.store();
    let lists: Vec<(&str, &str)> = s
        .requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/namespaces/"))
        .map(|r| (r.path.as_str(), r.query.as_str()))
        .collect();
    assert_eq!(lists.len(), 2, "one list per check: {lists:#?}");
    let (path, query) = lists
        .iter()
        .find(|(p, _)| p.ends_with("/pods"))
        .expect("the pods are listed");
    assert_eq!(*path, "/api/v1/namespaces/shop/pods");
    for part in [
        "limit=1",
        "labelSelector=app%3Dcheckout",
        "fieldSelector=status.phase%3DRunning",
    ] {
        assert!(query.split('&').any(|q| q == part), "{part} not in {query}");
    }
}

#[tokio::test]
async fn other_kinds_refused_or_missing_are_reported_at_the_check() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("the kinds and 403s are the in-process server's") {
        return;
    }
    {
        let mut s = k.store();
        s.register(Resource::new(
            "chaos-mesh.org/v1alpha1",
            "PodChaos",
            "podchaos",
            true,
        ));
        s.forbidden.push(("list".into(), "podchaos".into()));
    }
    let checks = [
        check(
            "experiments",
            "    resource: {api_version: chaos-mesh.org/v1alpha1, kind: PodChaos}\n    value: count\n",
        ),
        check(
            "widgets",
            "    resource: {api_version: example.com/v1, kind: Widget}\n    value: count\n",
        ),
    ];
    let text = write_rules(k.dir(), &k.targets_yaml("k8s"), &checks.concat());
    let (code, stdout, stderr) = validate_online(k.dir()).await;
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0],
        format!(
            "{}: error: check experiments: patrol may not list podchaos in namespace shop \
             (forbidden); grant \"list\" on \"podchaos\" in API group \"chaos-mesh.org\" (add a \
             rule for it to {ROLE})",
            place(&text, "experiments")
        )
    );
    let widgets = format!(
        "{}: error: check widgets: cannot discover kind Widget in example.com/v1: the API \
         server does not serve it (is its CustomResourceDefinition installed?)",
        place(&text, "widgets")
    );
    assert_eq!(lines[1], widgets);
}

#[tokio::test]
async fn an_unreachable_api_server_is_reported_once_at_its_target() {
    let k = Cluster::start().await;
    if k.skip_on_real_cluster("the test points a target at a closed port") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = k.dir().join("closed-kubeconfig");
    std::fs::write(
        &kubeconfig,
        kube_support::kubeconfig_text(&format!("http://127.0.0.1:{port}"), "shop"),
    )
    .unwrap();
    let targets = format!(
        "targets:\n  k8s:\n    kind: kubernetes\n    kubeconfig: {}\n",
        kubeconfig.display()
    );
    let checks = [
        check("a", "    resource: pod\n    value: count\n"),
        check("b", "    resource: node\n    value: count\n"),
    ];
    write_rules(k.dir(), &targets, &checks.concat());
    let (code, stdout, stderr) = validate_online(k.dir()).await;
    assert_eq!(code, Some(2), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the target, not each check: {stdout}");
    assert!(
        lines[0].starts_with("rules/k.yaml:2:3: error: target \"k8s\" (kubernetes at "),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("unreachable"), "{}", lines[0]);
}
