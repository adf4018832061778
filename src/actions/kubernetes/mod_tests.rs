use super::*;
use crate::config::{from_node, parse_yaml, path_text};

fn action(yaml: &str) -> Result<KubeAction, String> {
    from_node::<KubeAction>(&parse_yaml(yaml).unwrap(), None).map_err(|e| e.describe())
}

fn issues_of(yaml: &str) -> Vec<String> {
    let mut issues = Issues::default();
    action(yaml).unwrap().validate(&mut issues);
    issues
        .items
        .iter()
        .map(|(p, m)| format!("{}: {m}", path_text(p)))
        .collect()
}

#[test]
fn every_action_reads_from_yaml_and_back() {
    for yaml in [
        "{ action: rollout_restart, name: web }",
        "{ action: scale, resource: statefulset, name: db, namespace: data, replicas: 0 }",
        "{ action: delete_pod, selector: app=web, mode: percent:50, seed: 7, grace_period: 5s }",
        "{ action: cordon, node: node-a }",
        "{ action: uncordon, node: node-a }",
        "{ action: annotate, resource: pod, name: web-0, annotations: { team: sre, old: null } }",
        "{ action: apply, file: chaos/network-delay.yaml }",
        "{ action: apply, manifest: { apiVersion: v1, kind: ConfigMap, metadata: { name: x } } }",
    ] {
        let a = action(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert!(issues_of(yaml).is_empty(), "{yaml}: {:?}", issues_of(yaml));
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["action"], a.name());
        let back: KubeAction = serde_json::from_value(json).unwrap();
        assert_eq!(back, a, "{yaml}");
        assert!(!a.describe().is_empty());
    }
}

#[test]
fn defaults_are_a_deployment_and_one_pod() {
    let KubeAction::Scale(s) = action("{ action: scale, name: web, replicas: 2 }").unwrap() else {
        panic!()
    };
    assert_eq!(s.resource, Workload::Deployment);
    let KubeAction::DeletePod(d) = action("{ action: delete_pod, selector: app=web }").unwrap()
    else {
        panic!()
    };
    assert_eq!((d.mode, d.seed), (PodMode::One, None));
    assert!(
        d.describe()
            .starts_with("delete one pod matching `app=web` (chosen at random, random seed"),
        "{}",
        d.describe()
    );
}

#[test]
fn mistakes_name_the_field() {
    let e = action("{ action: scale, name: web, replicas: 2, replica: 3 }").unwrap_err();
    assert!(e.contains("unknown field `replica`"), "{e}");
    let e = action("{ action: reboot, node: a }").unwrap_err();
    assert!(e.contains("unknown variant `reboot`"), "{e}");
    let e = action("{ action: delete_pod, selector: a=b, mode: some }").unwrap_err();
    assert!(e.contains("fixed:N"), "{e}");
    let e = action("{ action: scale, name: web }").unwrap_err();
    assert!(e.contains("replicas"), "{e}");

    assert_eq!(
        issues_of("{ action: scale, resource: daemonset, name: Web, replicas: 1 }"),
        [
            "resource: a daemonset runs one pod per node and cannot be scaled",
            "name: name \"Web\" is not a valid object name: lowercase letters, digits, '-' and \
             '.', starting and ending with a letter or digit"
        ]
    );
    assert_eq!(
        issues_of("{ action: rollout_restart, resource: replicaset, name: web }"),
        ["resource: a replicaset has no rollout: restart the deployment that owns it"]
    );
    let found = issues_of("{ action: delete_pod, selector: ' ', namespace: Shop }");
    assert!(
        found[0].starts_with("selector: selector: a label selector is required"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("namespace: namespace \"Shop\""),
        "{found:?}"
    );
    let found = issues_of("{ action: annotate, resource: svc, name: x, annotations: {} }");
    assert!(
        found[0].starts_with("resource: unknown resource"),
        "{found:?}"
    );
    assert_eq!(found[1], "annotations: annotations: give at least one");
}
