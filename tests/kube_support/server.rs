//! The in-process API server's HTTP side: the real REST paths (`/api/v1/namespaces/{ns}/pods`,
//! `/apis/apps/v1/...`, `…/status`), discovery, `/version`, bearer-token authentication, 403s
//! configured by the test, and list / get / create / replace / patch / delete, every write
//! honouring `dryRun=All`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::patch;
use super::selectors::{fields_match, labels_match};
use super::store::{ObjectStore, Resource, SeenRequest};

pub type Shared = Arc<Mutex<ObjectStore>>;

/// The bearer token the generated kubeconfig carries; anything else is 401.
pub const TOKEN: &str = "patrol-test-token";

/// What a request path names.
#[derive(Debug)]
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

pub fn router(store: Shared) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(store)
}

async fn handle(
    State(store): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or_default().to_string();
    let mut s = store.lock().unwrap();
    s.requests.push(SeenRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: query.clone(),
    });
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {TOKEN}") {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let mut params = Params::parse(&query);
    if method == Method::DELETE {
        // DeleteOptions travel in the body: `{"dryRun": ["All"]}`.
        params.dry_run |= serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|o| o.get("dryRun").cloned())
            .is_some_and(|d| d.as_array().is_some_and(|a| a.contains(&json!("All"))));
    }
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    if let Some(r) = super::discovery::answer(&s, uri.path()) {
        return r;
    }
    let target = match parse_path(&s, uri.path()) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let verb = verb_of(&method, &target);
    if s.is_forbidden(verb, &target.resource.plural) {
        return forbidden(verb, &target);
    }
    match (method.as_str(), &target.name) {
        ("GET", None) => list(&s, &target, &params),
        ("GET", Some(name)) => get(&s, &target, name),
        ("POST", None) => create(&mut s, &target, &params, &body),
        ("PUT", Some(name)) => replace(&mut s, &target, name, &params, &body),
        ("PATCH", Some(name)) => patch_object(&mut s, &target, name, &params, &ctype, &body),
        ("DELETE", Some(name)) => delete(&mut s, &target, name, &params),
        ("DELETE", None) => delete_collection(&mut s, &target, &params),
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        ),
    }
}

/// Query parameters the server reads.
#[derive(Default)]
struct Params {
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<usize>,
    continue_at: usize,
    dry_run: bool,
}

impl Params {
    fn parse(query: &str) -> Params {
        let mut p = Params::default();
        for (k, v) in form_urlencoded(query) {
            match k.as_str() {
                "labelSelector" if !v.is_empty() => p.label_selector = Some(v),
                "fieldSelector" if !v.is_empty() => p.field_selector = Some(v),
                "limit" => p.limit = v.parse().ok().filter(|n| *n > 0),
                "continue" => p.continue_at = v.parse().unwrap_or(0),
                "dryRun" => p.dry_run = v == "All",
                _ => {}
            }
        }
        p
    }
}

fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).expect("a query string");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn verb_of(method: &Method, t: &Target) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => "unknown",
    }
}

/// `/api/v1/…` or `/apis/{group}/{version}/…`, then `namespaces/{ns}/{plural}[/{name}[/status]]`
/// or `{plural}[/{name}[/status]]`.
fn parse_path(s: &ObjectStore, path: &str) -> Result<Target, Box<Response>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(Box::new(not_found_path(path))),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(tail);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, sub] => (*p, Some(n.to_string()), Some(*sub)),
        _ => return Err(Box::new(not_found_path(path))),
    };
    let resource = s
        .resource(group, version, plural)
        .cloned()
        .ok_or_else(|| Box::new(not_found_path(path)))?;
    if sub.is_some_and(|x| x != "status") {
        return Err(Box::new(not_found_path(path)));
    }
    Ok(Target {
        namespace: namespace.filter(|_| resource.namespaced),
        resource,
        name,
        status: sub == Some("status"),
    })
}

fn list(s: &ObjectStore, t: &Target, p: &Params) -> Response {
    let mut matched = Vec::new();
    for obj in s.list(
        &t.resource.group,
        &t.resource.plural,
        t.namespace.as_deref(),
    ) {
        let labels_ok = p.label_selector.as_ref().map(|l| labels_match(l, &obj));
        let fields_ok = p.field_selector.as_ref().map(|f| fields_match(f, &obj));
        match (labels_ok, fields_ok) {
            (Some(Err(e)), _) | (_, Some(Err(e))) => {
                return status(StatusCode::BAD_REQUEST, "BadRequest", &e);
            }
            (Some(Ok(false)), _) | (_, Some(Ok(false))) => {}
            _ => matched.push(obj),
        }
    }
    let start = p.continue_at.min(matched.len());
    let end = p
        .limit
        .map_or(matched.len(), |l| (start + l).min(matched.len()));
    let mut metadata = json!({"resourceVersion": s.resource_version()});
    if end < matched.len() {
        metadata["continue"] = json!(end.to_string());
    }
    let items: Vec<Value> = matched[start..end].iter().map(strip_type).collect();
    json_response(
        StatusCode::OK,
        json!({
            "apiVersion": t.resource.api_version(),
            "kind": format!("{}List", t.resource.kind),
            "metadata": metadata,
            "items": items,
        }),
    )
}

/// List items come without apiVersion and kind, as from a real server.
fn strip_type(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

fn ns_of(t: &Target) -> String {
    t.namespace.clone().unwrap_or_default()
}

fn get(s: &ObjectStore, t: &Target, name: &str) -> Response {
    match s.get(&t.resource.group, &t.resource.plural, &ns_of(t), name) {
        Some(obj) => json_response(StatusCode::OK, obj),
        None => not_found(t, name),
    }
}

/// The request body as an object of the target's kind, its namespace and type filled in.
fn body_object(t: &Target, body: &[u8]) -> Result<Value, Box<Response>> {
    let mut obj: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("invalid body: {e}"),
        ))
    })?;
    if !obj.is_object() || !obj["metadata"].is_object() {
        return Err(Box::new(status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body needs metadata",
        )));
    }
    obj["apiVersion"] = json!(t.resource.api_version());
    obj["kind"] = json!(t.resource.kind);
    if let Some(ns) = &t.namespace {
        obj["metadata"]["namespace"] = json!(ns);
    }
    Ok(obj)
}

fn create(s: &mut ObjectStore, t: &Target, p: &Params, body: &[u8]) -> Response {
    let mut obj = match body_object(t, body) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    if obj["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        let prefix = obj["metadata"]["generateName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if prefix.is_empty() {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "metadata.name: Required value",
            );
        }
        obj["metadata"]["name"] = json!(format!(
            "{prefix}{}",
            &uuid::Uuid::now_v7().simple().to_string()[..5]
        ));
    }
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if s.get(&t.resource.group, &t.resource.plural, &ns_of(t), &name)
        .is_some()
    {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} {name:?} already exists", t.resource.qualified()),
        );
    }
    if p.dry_run {
        return json_response(StatusCode::CREATED, with_server_fields(obj));
    }
    json_response(StatusCode::CREATED, s.insert(obj))
}

/// What create fills in, for a dry run that stores nothing.
fn with_server_fields(mut obj: Value) -> Value {
    let meta = &mut obj["metadata"];
    if meta["uid"].is_null() {
        meta["uid"] = json!(uuid::Uuid::now_v7().to_string());
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!(super::store::now_text());
    }
    obj
}

fn replace(s: &mut ObjectStore, t: &Target, name: &str, p: &Params, body: &[u8]) -> Response {
    let Some(old) = s.get(&t.resource.group, &t.resource.plural, &ns_of(t), name) else {
        return not_found(t, name);
    };
    let mut obj = match body_object(t, body) {
        Ok(o) => o,
        Err(r) => return *r,
    };
    let sent_rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !sent_rv.is_empty()
        && sent_rv
            != old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified",
                t.resource.qualified()
            ),
        );
    }
    obj = keep_other_part(&old, obj, t.status);
    store_update(s, t, old, obj, p.dry_run)
}

fn patch_object(
    s: &mut ObjectStore,
    t: &Target,
    name: &str,
    p: &Params,
    ctype: &str,
    body: &[u8],
) -> Response {
    let patch_doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("invalid patch: {e}"),
            );
        }
    };
    let existing = s.get(&t.resource.group, &t.resource.plural, &ns_of(t), name);
    let apply = ctype.starts_with("application/apply-patch");
    let old = match existing {
        Some(o) => o,
        // Server-side apply creates what does not exist yet.
        None if apply => return create(s, t, p, body),
        None => return not_found(t, name),
    };
    let mut obj = old.clone();
    if ctype.starts_with("application/json-patch+json") {
        if let Err(e) = patch::json_patch(&mut obj, &patch_doc) {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &e);
        }
    } else {
        patch::merge(&mut obj, &patch_doc);
    }
    obj = keep_other_part(&old, obj, t.status);
    store_update(s, t, old, obj, p.dry_run)
}

/// A write to the object leaves its status alone; a write to `/status` changes only the status.
fn keep_other_part(old: &Value, new: Value, status_write: bool) -> Value {
    if status_write {
        let mut obj = old.clone();
        obj["status"] = new["status"].clone();
        return obj;
    }
    let mut obj = new;
    match old.get("status") {
        Some(st) => obj["status"] = st.clone(),
        None => drop(obj.as_object_mut().map(|m| m.remove("status"))),
    }
    obj
}

fn store_update(
    s: &mut ObjectStore,
    t: &Target,
    old: Value,
    mut obj: Value,
    dry_run: bool,
) -> Response {
    obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
    obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
    if !t.status && obj.get("spec") != old.get("spec") {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        obj["metadata"]["generation"] = json!(generation + 1);
    }
    if dry_run {
        return json_response(StatusCode::OK, obj);
    }
    obj["metadata"]["resourceVersion"] = json!(s.next_resource_version());
    s.put(&t.resource, obj.clone());
    json_response(StatusCode::OK, obj)
}

fn delete(s: &mut ObjectStore, t: &Target, name: &str, p: &Params) -> Response {
    let ns = ns_of(t);
    let Some(obj) = s.get(&t.resource.group, &t.resource.plural, &ns, name) else {
        return not_found(t, name);
    };
    if !p.dry_run {
        s.remove(&t.resource.group, &t.resource.plural, &ns, name);
    }
    json_response(StatusCode::OK, obj)
}

fn delete_collection(s: &mut ObjectStore, t: &Target, p: &Params) -> Response {
    let listed = list(
        s,
        t,
        &Params {
            label_selector: p.label_selector.clone(),
            field_selector: p.field_selector.clone(),
            ..Params::default()
        },
    );
    if !p.dry_run {
        for obj in s.list(
            &t.resource.group,
            &t.resource.plural,
            t.namespace.as_deref(),
        ) {
            let selected = p
                .label_selector
                .as_ref()
                .is_none_or(|l| labels_match(l, &obj) == Ok(true))
                && p.field_selector
                    .as_ref()
                    .is_none_or(|f| fields_match(f, &obj) == Ok(true));
            if selected {
                let name = obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                s.remove(&t.resource.group, &t.resource.plural, &ns_of(t), &name);
            }
        }
    }
    listed
}

pub(super) fn json_response(code: StatusCode, body: Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `Status` object, as the API server answers errors.
fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn not_found(t: &Target, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} {name:?} not found", t.resource.qualified()),
    )
}

fn not_found_path(path: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("the server could not find the requested resource ({path})"),
    )
}

fn forbidden(verb: &str, t: &Target) -> Response {
    let scope = match &t.namespace {
        Some(ns) => format!(" in the namespace {ns:?}"),
        None => " at the cluster scope".into(),
    };
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "{} is forbidden: User \"system:serviceaccount:patrol:patrol\" cannot {verb} resource {:?} in API group {:?}{scope}",
            t.resource.qualified(),
            t.resource.plural,
            t.resource.group
        ),
    )
}
