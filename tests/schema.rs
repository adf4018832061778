//! `patrol schema` is what editors validate against: every example rule file must satisfy it, and
//! the mistakes `validate` reports structurally (unknown fields, wrong kinds) must fail it too.

use std::path::PathBuf;

use patrol::config::schema::rule_file_schema;
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&rule_file_schema()).expect("the schema itself is valid JSON Schema")
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

#[test]
fn every_example_rule_file_satisfies_the_schema() {
    let v = validator();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let doc = yaml(&std::fs::read_to_string(&path).unwrap());
            let errors: Vec<String> = v
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 6);
}

#[test]
fn structural_mistakes_fail_the_schema() {
    let v = validator();
    let bad = [
        "checks:\n  - {name: a, kind: http, url: 'http://x', timout: 5s}\n",
        "checks:\n  - {name: a, kind: htpp}\n",
        "checks:\n  - {name: a, kind: sql, url: 'sqlite://x'}\n",
        "targets:\n  t: {kind: http, url: 'http://x', verify: false}\n",
        "chekcs: []\n",
        "defaults: {name: x}\n",
    ];
    for text in bad {
        assert!(!v.is_valid(&yaml(text)), "should fail: {text}");
    }
    let good = "defaults: {timeout: 5}\nchecks:\n  - {name: a, kind: dns, query_name: example.com, record_type: AAAA, every: 30s, crit: gt(100), baseline: {k: 4}}\n";
    let errors: Vec<String> = v.iter_errors(&yaml(good)).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
