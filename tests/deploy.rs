//! The deployment files are what users apply: every manifest parses, its arguments are ones patrol
//! accepts, and the rules shipped in the ConfigMap validate.

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
