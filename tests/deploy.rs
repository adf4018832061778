//! The deployment files are what users apply: every manifest parses, its arguments are ones patrol
//! accepts, the rules shipped in the ConfigMap validate, and the RBAC roles grant exactly what
//! patrol uses: the read-only inspection role every resource the kubernetes probe can read (from
//! the code's list) and nothing that writes; the actions role separately, not bound by default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use patrol::cli::Cli;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every document of every manifest.
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(deploy_dir().join("kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_saphyr::from_multiple::<Value>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                doc,
            ));
        }
    }
    out
}

fn container_args(doc: &Value) -> Vec<Vec<String>> {
    let spec = if doc["kind"] == "CronJob" {
        &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &doc["spec"]["template"]["spec"]
    };
    spec["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn manifests_are_kubernetes_objects_of_the_expected_kinds() {
    let kinds: Vec<String> = manifests()
        .iter()
        .filter(|(_, d)| d["kind"] != "Kustomization")
        .map(|(_, d)| d["kind"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "CronJob",
        "PersistentVolumeClaim",
        "ClusterRole",
        "ClusterRoleBinding",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    for (file, doc) in manifests() {
        assert!(
            doc["apiVersion"].is_string() && doc["metadata"]["name"].is_string()
                || doc["kind"] == "Kustomization",
            "{file}"
        );
    }
}

#[test]
fn container_arguments_are_accepted_by_patrol() {
    let mut seen = 0;
    for (file, doc) in manifests() {
        if doc["kind"] != "Deployment" && doc["kind"] != "CronJob" {
            continue;
        }
        for args in container_args(&doc) {
            let argv = std::iter::once("patrol".to_string()).chain(args.clone());
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{file}: {args:?}: {e}"));
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
}

#[test]
fn the_configmap_rules_validate() {
    let (_, cm) = manifests()
        .into_iter()
        .find(|(_, d)| d["kind"] == "ConfigMap")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in cm["data"].as_object().unwrap() {
        std::fs::write(dir.path().join(name), text.as_str().unwrap()).unwrap();
    }
    let rules =
        patrol::config::load(&[dir.path().to_path_buf()]).unwrap_or_else(|d| panic!("{d:#?}"));
    assert!(
        rules.suites.contains_key("nightly"),
        "the CronJob runs the nightly suite"
    );
}

#[test]
fn the_systemd_unit_runs_the_daemon_with_accepted_arguments() {
    let unit = std::fs::read_to_string(deploy_dir().join("systemd/patrol.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert!(argv[0].ends_with("/patrol"));
    Cli::try_parse_from(std::iter::once("patrol").chain(argv[1..].iter().copied()))
        .unwrap_or_else(|e| panic!("{exec}: {e}"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
}

/// The document of `kind` named `name`, with its file.
fn manifest(kind: &str, name: &str) -> (String, Value) {
    manifests()
        .into_iter()
        .find(|(_, d)| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

/// The files kustomization.yaml applies.
fn kustomized_files() -> Vec<String> {
    let (_, k) = manifest_of_kind("Kustomization");
    k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn manifest_of_kind(kind: &str) -> (String, Value) {
    manifests()
        .into_iter()
        .find(|(_, d)| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in deploy/kubernetes"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// (API group, resource, verb) of every resource rule of a role; non-resource rules apart.
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

const READ_VERBS: &[&str] = &["get", "list", "watch"];

#[test]
fn the_inspection_role_grants_exactly_what_the_probe_reads() {
    use patrol::probe::kubernetes::BuiltIn;
    use patrol::probe::kubernetes::resources::PROBE_VERBS;
    let (file, role) = manifest("ClusterRole", "patrol-inspect");
    let granted = grants(&role);
    let wanted: BTreeSet<(String, String, String)> = BuiltIn::NAMES
        .iter()
        .flat_map(|(b, _)| {
            let api = b.api_resource();
            PROBE_VERBS
                .iter()
                .map(move |v| (api.group.clone(), api.plural.clone(), v.to_string()))
        })
        .collect();
    assert_eq!(
        granted, wanted,
        "{file}: every resource a check can name, with exactly the probe's verbs, and nothing else"
    );
    for rule in role["rules"].as_array().unwrap() {
        let verbs = strings(&rule["verbs"]);
        assert!(
            verbs.iter().all(|v| READ_VERBS.contains(&v.as_str())),
            "{file}: a write verb in the read-only role: {rule}"
        );
        for urls in strings(&rule["nonResourceURLs"]) {
            assert!(urls.starts_with('/'), "{file}: {urls}");
            assert_eq!(verbs, ["get"], "{file}: non-resource URLs are only read");
        }
    }
}

#[test]
fn the_inspection_role_is_bound_to_patrols_service_account() {
    let (_, sa) = manifest("ServiceAccount", "patrol");
    let (file, binding) = manifest("ClusterRoleBinding", "patrol-inspect");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "patrol-inspect");
    let subject = &binding["subjects"][0];
    assert_eq!(
        (&subject["kind"], &subject["name"], &subject["namespace"]),
        (
            &Value::from("ServiceAccount"),
            &sa["metadata"]["name"],
            &sa["metadata"]["namespace"]
        ),
        "{file}"
    );
    assert_eq!(
        sa["automountServiceAccountToken"], true,
        "in_cluster checks need the account's token"
    );
    assert!(kustomized_files().contains(&file), "{file} is applied");
}

/// What each action does to which resource (src/actions/kubernetes/): the verbs the actions role
/// must grant. (group, resource, verbs)
const ACTION_GRANTS: &[(&str, &str, &[&str])] = &[
    // rollout_restart and scale: read the workload, patch it; delete_pod's revert reads the
    // controllers of the deleted pods.
    ("apps", "deployments", &["get", "patch"]),
    ("apps", "statefulsets", &["get", "patch"]),
    ("apps", "daemonsets", &["get", "patch"]),
    ("apps", "replicasets", &["get", "patch"]),
    // delete_pod: list by selector, delete the chosen ones; annotate.
    ("", "pods", &["get", "list", "patch", "delete"]),
    // cordon / uncordon.
    ("", "nodes", &["get", "patch"]),
    // apply of a Chaos Mesh experiment, and its revert.
    (
        "chaos-mesh.org",
        "podchaos",
        &["get", "create", "patch", "delete"],
    ),
    (
        "chaos-mesh.org",
        "networkchaos",
        &["get", "create", "patch", "delete"],
    ),
];

#[test]
fn the_actions_role_is_separate_and_not_bound_by_default() {
    let (file, role) = manifest("ClusterRole", "patrol-actions");
    let granted = grants(&role);
    for (group, resource, verbs) in ACTION_GRANTS {
        for verb in *verbs {
            let grant = (group.to_string(), resource.to_string(), verb.to_string());
            assert!(granted.contains(&grant), "{file}: {grant:?} missing");
        }
    }
    assert!(
        granted
            .iter()
            .all(|(g, r, v)| g != "*" && r != "*" && v != "*"),
        "{file}: no wildcards"
    );
    let (inspect_file, _) = manifest("ClusterRole", "patrol-inspect");
    assert_ne!(file, inspect_file, "the actions role is a file of its own");

    let applied = kustomized_files();
    assert!(applied.contains(&file), "the role is defined by kustomize");
    let (binding_file, binding) = manifest("ClusterRoleBinding", "patrol-actions");
    assert_eq!(binding["roleRef"]["name"], "patrol-actions");
    assert!(
        !applied.contains(&binding_file),
        "{binding_file} must not be applied by default"
    );
    for (file, doc) in manifests() {
        let binds_actions = doc["roleRef"]["name"] == "patrol-actions";
        assert!(
            !(binds_actions && applied.contains(&file)),
            "{file} binds the actions role by default"
        );
    }
}

#[test]
fn every_manifest_is_applied_or_documented_as_optional() {
    let applied = kustomized_files();
    let kustomization =
        std::fs::read_to_string(deploy_dir().join("kubernetes/kustomization.yaml")).unwrap();
    for (file, doc) in manifests() {
        if doc["kind"] == "Kustomization" || applied.contains(&file) {
            continue;
        }
        assert!(
            kustomization.contains(&format!("# - {file}")),
            "{file} is neither applied nor offered (commented) in kustomization.yaml"
        );
    }
    for file in &applied {
        assert!(
            deploy_dir().join("kubernetes").join(file).exists(),
            "kustomization.yaml names a missing {file}"
        );
    }
}
