//! Discovery as the API server offers it: `/version`, `/api`, `/apis`, and each group version's
//! resource list (plural, kind, scope, verbs, `/status`), from the store's registry.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::server::json_response;
use super::store::ObjectStore;

/// `/version`, `/api`, `/apis`, `/api/v1` and `/apis/{group}/{version}`.
pub fn answer(s: &ObjectStore, path: &str) -> Option<Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body = match segs.as_slice() {
        ["version"] => json!({
            "major": "1", "minor": "37", "gitVersion": "v1.37.0-patrol-test",
            "gitCommit": "0000000", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"
        }),
        ["api"] => {
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        }
        ["apis"] => api_groups(s),
        ["api", v] => resource_list(s, "", v),
        ["apis", g, v] => resource_list(s, g, v),
        _ => return None,
    };
    Some(json_response(StatusCode::OK, body))
}

fn api_groups(s: &ObjectStore) -> Value {
    let mut groups: Vec<(String, String)> = s
        .resources()
        .iter()
        .filter(|r| !r.group.is_empty())
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let groups: Vec<Value> = groups
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(s: &ObjectStore, group: &str, version: &str) -> Value {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let mut resources = Vec::new();
    for r in s
        .resources()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural, "singularName": r.kind.to_ascii_lowercase(), "namespaced": r.namespaced,
            "kind": r.kind, "verbs": verbs
        }));
        resources.push(json!({
            "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
            "kind": r.kind, "verbs": ["get", "patch", "update"]
        }));
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}
