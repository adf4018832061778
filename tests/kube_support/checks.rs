//! Running kubernetes checks against a [`Cluster`] in tests: rule files with a target for it,
//! one run through the engine, and the results by series.

use std::collections::BTreeMap;

use patrol::config::{RuleSet, load_with_env};
use patrol::result::{CheckResult, Status, Value};

use super::Cluster;

/// Loads `checks` (YAML list items) with a target `k8s` for `cluster`.
pub fn rules(cluster: &Cluster, checks: &str) -> RuleSet {
    let file = cluster
        .dir()
        .join(format!("rules-{}.yaml", uuid::Uuid::now_v7().simple()));
    let text = format!("{}checks:\n{checks}", cluster.targets_yaml("k8s"));
    std::fs::write(&file, text).unwrap();
    load_with_env(&[file], &BTreeMap::new()).unwrap_or_else(|d| panic!("{d:#?}"))
}

/// A check `c` on target `k8s` with `fields` (YAML lines, 4-space indented).
pub fn check(fields: &str) -> String {
    format!("  - name: c\n    kind: kubernetes\n    target: k8s\n{fields}")
}

/// Runs the check `c` once through the engine (measure + judge).
pub async fn run(rules: &RuleSet) -> Vec<CheckResult> {
    let c = rules.check("c").expect("check c");
    patrol::engine::execute_check(c, &patrol::engine::Known::default(), "run-1", "rev")
        .await
        .results
}

pub async fn run_fields(cluster: &Cluster, fields: &str) -> Vec<CheckResult> {
    run(&rules(cluster, &check(fields))).await
}

/// series → value of results that carry one.
pub fn by_series(results: &[CheckResult]) -> BTreeMap<String, Value> {
    results
        .iter()
        .filter_map(|r| r.value.clone().map(|v| (r.series.clone(), v)))
        .collect()
}

pub fn num(results: &[CheckResult], series: &str) -> f64 {
    match by_series(results).get(series) {
        Some(Value::Num(n)) => *n,
        other => panic!("series {series:?}: {other:?} in {results:#?}"),
    }
}

pub fn single(results: &[CheckResult]) -> f64 {
    assert_eq!(results.len(), 1, "{results:#?}");
    num(results, "")
}

/// Runs the check and expects `error` with a message containing each of `parts`.
pub async fn expect_error(k: &Cluster, fields: &str, parts: &[&str]) {
    let r = run_fields(k, fields).await;
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].status, Status::Error, "{r:#?}");
    for part in parts {
        assert!(
            r[0].message.contains(part),
            "{:?} lacks {part:?}",
            r[0].message
        );
    }
}
