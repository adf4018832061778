//! `patrol schema`: the JSON Schema of rule files, generated from the same serde structs that load
//! them (for yaml-language-server: `# yaml-language-server: $schema=patrol.schema.json`).

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::model::CheckCommon;
use super::service::ServiceConfig;
use super::suite::Suite;
use super::target::TargetSpec;
use crate::probe::ProbeSpec;

/// The rule-file schema as JSON (draft 2020-12).
pub fn rule_file_schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let common = generator.subschema_for::<CheckCommon>();
    let common = resolve(&generator, common.as_value());
    let check_variants: Vec<Value> = ProbeSpec::schemas(&mut generator)
        .into_iter()
        .map(|(kind, own)| merge_kind(kind, &[&common, &resolve(&generator, own.as_value())]))
        .collect();
    let target_variants: Vec<Value> = TargetSpec::schemas(&mut generator)
        .into_iter()
        .map(|(kind, own)| merge_kind(kind, &[&resolve(&generator, own.as_value())]))
        .collect();
    let mut defaults = common.clone();
    if let Some(props) = defaults
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        props.remove("name");
        props.remove("kind");
    }
    defaults.as_object_mut().map(|o| o.remove("required"));
    let receiver_variants: Vec<Value> = crate::alert::ReceiverSpec::schemas(&mut generator)
        .into_iter()
        .map(|(kind, own)| merge_kind(kind, &[&resolve(&generator, own.as_value())]))
        .collect();
    let route = generator.subschema_for::<crate::alert::route::Route>();
    let window = generator.subschema_for::<crate::alert::maintenance::MaintenanceWindow>();
    let inhibit = generator.subschema_for::<crate::alert::inhibit::InhibitRule>();
    let suite = generator.subschema_for::<Suite>();
    let service = generator.subschema_for::<ServiceConfig>();
    let playbooks = generator.subschema_for::<crate::config::PlaybooksConfig>();
    let defs: Map<String, Value> = generator
        .definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/patrol-sre/patrol/rule-file.schema.json",
        "title": "patrol rule file",
        "description": "Targets, defaults, checks and vars of a patrol rules directory.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "vars": {
                "description": "Values for ${var:NAME} references.",
                "type": "object",
                "additionalProperties": {"type": "string"}
            },
            "targets": {
                "description": "Named connections, by name.",
                "type": "object",
                "additionalProperties": {"oneOf": target_variants}
            },
            "defaults": defaults,
            "checks": {
                "type": "array",
                "items": {"oneOf": check_variants}
            },
            "suites": {
                "description": "Named sets of checks run together as one run.",
                "type": "object",
                "additionalProperties": suite
            },
            "receivers": {
                "description": "Where notifications go, by name (checks list them under `notify`).",
                "type": "object",
                "additionalProperties": {"oneOf": receiver_variants}
            },
            "routes": {
                "description": "Notification routing trees, matched in order (Alertmanager semantics).",
                "type": "array",
                "items": route
            },
            "maintenance": {
                "description": "Maintenance windows: cron + duration + matchers; matching alerts stay quiet.",
                "type": "array",
                "items": window
            },
            "inhibit_rules": {
                "description": "A firing source alert mutes target alerts with equal labels.",
                "type": "array",
                "items": inhibit
            },
            "services": {
                "description": "How each service's health score is computed.",
                "type": "object",
                "additionalProperties": service
            },
            "playbooks": playbooks
        },
        "$defs": defs
    })
}

/// The object schema behind a `$ref`, or the schema itself.
fn resolve(generator: &schemars::SchemaGenerator, schema: &Value) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str)
        && let Some(name) = r.rsplit('/').next()
        && let Some(def) = generator.definitions().get(name)
    {
        return def.clone();
    }
    schema.clone()
}

/// One object schema with the properties of every part, `kind` fixed to `kind`, nothing else allowed.
fn merge_kind(kind: &str, parts: &[&Value]) -> Value {
    let mut props = Map::new();
    let mut required: Vec<Value> = vec![json!("kind")];
    for part in parts {
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            props.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().filter(|v| v.as_str() != Some("kind")).cloned());
        }
    }
    props.insert("kind".into(), json!({"const": kind}));
    json!({
        "title": kind,
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_check_kind_with_shared_fields() {
        let s = rule_file_schema();
        let variants = s["properties"]["checks"]["items"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(variants.len(), ProbeSpec::KINDS.len());
        let http = variants.iter().find(|v| v["title"] == "http").unwrap();
        for field in ["name", "timeout", "baseline", "request", "expect", "kind"] {
            assert!(
                http["properties"].get(field).is_some(),
                "http lacks {field}"
            );
        }
        assert_eq!(http["additionalProperties"], false);
        assert!(
            s["properties"]["defaults"]["properties"]
                .get("name")
                .is_none()
        );
    }
}
