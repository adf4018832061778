use super::*;
use crate::chaos::fault::FaultSpec;
use crate::chaos::fault::test_support::{issues_of, spec_of};

fn fault(yaml: &str) -> KubernetesFault {
    match spec_of("kubernetes", yaml) {
        FaultSpec::Kubernetes(k) => k,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fault_is_a_target_and_an_action_with_its_fields() {
    let f =
        fault("{ target: k8s, action: delete_pod, selector: app=web, mode: fixed:2, seed: 42 }");
    assert_eq!(f.target, "k8s");
    let KubeAction::DeletePod(d) = &f.action else {
        panic!("{f:?}")
    };
    assert_eq!((d.selector.as_str(), d.seed), ("app=web", Some(42)));
    assert_eq!(f.ready_timeout(), DEFAULT_READY_TIMEOUT);
    let spec = FaultSpec::Kubernetes(f);
    assert!(issues_of(&spec).is_empty(), "{:?}", issues_of(&spec));
    let described = spec.describe();
    assert!(
        described.starts_with("delete 2 pods matching `app=web` (chosen at random, seed 42)"),
        "{described}"
    );
    assert!(described.contains("wait up to 2m"), "{described}");
    assert!(described.contains("blast radius"), "{described}");
}

#[test]
fn the_journal_form_reads_back_as_the_same_fault() {
    for yaml in [
        "{ target: k8s, action: delete_pod, selector: app=web, ready_timeout: 30s }",
        "{ target: k8s, action: scale, name: web, replicas: 0 }",
        "{ target: k8s, action: cordon, node: node-a }",
        "{ target: k8s, action: apply, file: chaos.yaml, namespace: shop }",
    ] {
        let spec = spec_of("kubernetes", yaml);
        let json = spec.to_json();
        assert_eq!(json["target"], "k8s", "{json}");
        assert!(json["action"].is_string(), "{json}");
        let back = FaultSpec::from_json("kubernetes", &json).unwrap();
        assert_eq!(back.to_json(), json);
        assert_eq!(back.describe(), spec.describe());
    }
}

#[test]
fn mistakes_are_reported_by_field() {
    let node = crate::config::parse_yaml("{ action: scale, name: web, replicas: 1 }").unwrap();
    let e = FaultSpec::from_node("kubernetes", &node)
        .unwrap()
        .unwrap_err();
    assert!(
        e.describe().contains("missing field `target`"),
        "{}",
        e.describe()
    );
    let node =
        crate::config::parse_yaml("{ target: k, action: delete_pod, selector: a=b, replicas: 1 }")
            .unwrap();
    let e = FaultSpec::from_node("kubernetes", &node)
        .unwrap()
        .unwrap_err();
    assert!(
        e.describe().contains("unknown field `replicas`"),
        "{}",
        e.describe()
    );

    let found = issues_of(&spec_of(
        "kubernetes",
        "{ target: k, action: annotate, resource: pod, name: p, annotations: {a: b} }",
    ));
    assert_eq!(
        found,
        [
            "action: action `annotate` is not a drill fault; use one of: delete_pod, scale, cordon, apply"
        ]
    );
    let found = issues_of(&spec_of(
        "kubernetes",
        "{ target: ' ', action: scale, name: web, replicas: 1, ready_timeout: 5s }",
    ));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("target: target: the name"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("ready_timeout: `ready_timeout` applies to"),
        "{found:?}"
    );
}

#[test]
fn every_action_field_is_visible_to_the_loader() {
    let fields = FaultSpec::fields("kubernetes").unwrap();
    for f in [
        "target",
        "action",
        "ready_timeout",
        "selector",
        "mode",
        "seed",
        "replicas",
        "node",
        "manifest",
        "file",
        "namespace",
        "name",
        "resource",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
}

#[test]
fn the_schema_accepts_the_fault_fields_next_to_the_action() {
    let mut generator = schemars::SchemaGenerator::default();
    let schema = generator.subschema_for::<KubernetesFault>();
    let mut root = serde_json::to_value(generator.definitions()).unwrap();
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains("KubernetesFault"), "{text}");
    let fault = root["KubernetesFault"].take();
    let rendered = fault.to_string();
    for word in [
        "target",
        "ready_timeout",
        "delete_pod",
        "selector",
        "replicas",
    ] {
        assert!(rendered.contains(word), "{word} in {rendered}");
    }
}

#[test]
fn states_round_trip() {
    let state = KubernetesState {
        target: "k8s".into(),
        cluster: KubernetesTarget {
            kubeconfig: Some("/etc/k.yaml".into()),
            ..Default::default()
        },
        summary: "scaled".into(),
        undo: Undo::Restore {
            object: crate::actions::kubernetes::Workload::Deployment.object("shop", "web"),
            restore: Restore::Patch(serde_json::json!({"spec": {"replicas": 3}})),
        },
    };
    let json = serde_json::to_value(&state).unwrap();
    let back: KubernetesState = serde_json::from_value(json).unwrap();
    assert_eq!(back, state);
}
