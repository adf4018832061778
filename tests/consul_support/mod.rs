//! An in-process Consul server for the tests (Debian ships no `consul` package:
//! `apt-cache policy consul` → `Candidate: (none)`). It is NOT a real Consul: it speaks the real
//! Consul HTTP API shapes (<https://developer.hashicorp.com/consul/api-docs>) for the parts patrol
//! uses, on a random loopback port (axum):
//!
//! - KV: `GET /v1/kv/<key>` (`[{"LockIndex","Key","Flags","Value":"<base64>","CreateIndex",
//!   "ModifyIndex"}]`, 404 when absent; `?raw`, `?recurse`, `?keys` with `?separator=`),
//!   `PUT /v1/kv/<key>` (body = value, `?flags=`; answers `true`), `DELETE /v1/kv/<key>`
//!   (`?recurse` for a prefix).
//! - Health: `GET /v1/health/service/<name>` (`[{"Node","Service","Checks"}]`, each node's
//!   `serfHealth` check included as Consul does; `?passing` keeps instances whose checks all pass).
//! - Status: `GET /v1/status/leader` (`""` without a leader), `GET /v1/status/peers`.
//!
//! Every response carries `X-Consul-Index`, `X-Consul-KnownLeader` and `X-Consul-LastContact`.
//! The raft index is one global counter: every write (KV or catalog) takes the next number.
//!
//! Blocking queries (`?index=N&wait=5s`, wait defaulting to 5m and capped at 10m like Consul's)
//! on KV and health wait until the index of *what was asked* (the key, the prefix, the service)
//! is above N or the wait passes, then answer with the current state. They wait on a
//! [`tokio::sync::watch`] channel that every write signals, never on a timer. Two deliberate
//! simplifications, both on the side of fewer spurious wake-ups than Consul has: a single key's
//! index is that key's own (Consul answers with the whole KV table's), and something that never
//! existed answers index 1 (Consul falls back to the table's index). No wait jitter is added, so
//! tests can time `wait`.
//!
//! ACLs: a server started with a token answers 403 `ACL not found` to every KV and health request
//! that does not carry it (`X-Consul-Token`, `Authorization: Bearer`, or `?token=`). Like Consul,
//! `/v1/status/*` needs no token.
//!
//! Datacenters: the server is `dc1`; `?dc=` naming a datacenter it does not know answers 500
//! `No path to datacenter`, as Consul does ([`FakeConsul::add_datacenter`] adds names).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Consul's default blocking wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// Consul's longest blocking wait.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);
/// The index of something that never existed (Consul never answers 0).
const NEVER: u64 = 1;

/// The running fake; it stops with the test's runtime.
pub struct FakeConsul {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    shared: Arc<Shared>,
}

struct Shared {
    store: Mutex<Store>,
    /// Carries the raft index after each write; blocking queries wait on it.
    changes: watch::Sender<u64>,
    requests: Mutex<Vec<String>>,
    token: Option<String>,
}

#[derive(Default)]
struct Store {
    /// The raft index: the last write's number.
    index: u64,
    kv: BTreeMap<String, KvEntry>,
    /// Deleted keys and the index of their deletion, so that a watch on a prefix wakes on deletes.
    graveyard: BTreeMap<String, u64>,
    instances: BTreeMap<String, Instance>,
    /// Per service name, the index of the last change to any of its instances.
    service_index: BTreeMap<String, u64>,
    /// Nodes whose `serfHealth` is not passing.
    node_health: BTreeMap<String, String>,
    leader: Option<String>,
    datacenters: BTreeSet<String>,
}

#[derive(Clone)]
struct KvEntry {
    value: Vec<u8>,
    flags: u64,
    create_index: u64,
    modify_index: u64,
}

#[derive(Clone)]
struct Instance {
    service: String,
    id: String,
    node: String,
    port: u16,
    status: String,
}

impl FakeConsul {
    /// A server without ACLs, with a leader, knowing datacenter `dc1`.
    pub async fn start() -> FakeConsul {
        FakeConsul::serve(None).await
    }

    /// Every KV and health request must carry this token (X-Consul-Token header,
    /// `Authorization: Bearer`, or ?token=); otherwise 403 with body "ACL not found" (as Consul
    /// answers). `/v1/status/*` needs none, as in Consul.
    pub async fn start_with_token(token: &str) -> FakeConsul {
        FakeConsul::serve(Some(token.to_string())).await
    }

    async fn serve(token: Option<String>) -> FakeConsul {
        let store = Store {
            leader: Some("127.0.0.1:8300".into()),
            datacenters: BTreeSet::from(["dc1".to_string()]),
            ..Store::default()
        };
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            changes: watch::Sender::new(0),
            requests: Mutex::default(),
            token,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = router(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeConsul { url, shared }
    }

    /// Sets a key; returns the new raft index (one global counter shared by KV and catalog, like Consul).
    pub fn put(&self, key: &str, value: &[u8]) -> u64 {
        self.put_many(&[(key, value)])
    }

    /// Sets several keys at one index (like a /v1/txn).
    pub fn put_many(&self, entries: &[(&str, &[u8])]) -> u64 {
        self.shared.write(|store, index| {
            for (key, value) in entries {
                store.put(key, value.to_vec(), 0, index);
            }
        })
    }

    /// Deletes a key (a no-op write when absent, as in Consul); returns the new raft index.
    pub fn delete(&self, key: &str) -> u64 {
        self.shared.write(|store, index| store.delete(key, index))
    }

    /// Registers (or replaces) a service instance with one service check in `status` (passing|warning|critical).
    pub fn register(&self, service: &str, id: &str, node: &str, port: u16, status: &str) -> u64 {
        assert!(
            ["passing", "warning", "critical"].contains(&status),
            "not a Consul check status: {status}"
        );
        let instance = Instance {
            service: service.into(),
            id: id.into(),
            node: node.into(),
            port,
            status: status.into(),
        };
        self.shared
            .write(|store, index| store.register(instance, index))
    }

    /// Removes a service instance; returns the new raft index.
    pub fn deregister(&self, id: &str) -> u64 {
        self.shared
            .write(|store, index| store.deregister(id, index))
    }

    /// Sets a node's `serfHealth` check (passing|warning|critical): every instance on the node
    /// then carries it, as Consul's health endpoint shows node checks with service checks.
    pub fn set_node_health(&self, node: &str, status: &str) -> u64 {
        self.shared.write(|store, index| {
            if status == "passing" {
                store.node_health.remove(node);
            } else {
                store.node_health.insert(node.into(), status.into());
            }
            store.touch_services_on(node, index);
        })
    }

    /// `None`: no leader (GET /v1/status/leader answers "\"\"").
    pub fn set_leader(&self, leader: Option<&str>) {
        self.shared.lock().leader = leader.map(str::to_string);
    }

    /// Makes `?dc=name` answer like the local datacenter.
    pub fn add_datacenter(&self, name: &str) {
        self.shared.lock().datacenters.insert(name.into());
    }

    /// The current raft index.
    pub fn index(&self) -> u64 {
        self.shared.lock().index
    }

    /// "METHOD path?query" of every request received, in order (to prove blocking queries pass ?index=).
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one write at the next raft index and wakes the blocking queries; the index.
    fn write(&self, change: impl FnOnce(&mut Store, u64)) -> u64 {
        let index = {
            let mut store = self.lock();
            store.index += 1;
            let index = store.index;
            change(&mut store, index);
            index
        };
        self.changes.send_replace(index);
        index
    }

    fn token_of(&self, headers: &HeaderMap, query: &Params) -> Option<String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        header("x-consul-token")
            .map(str::to_string)
            .or_else(|| {
                header("authorization")?
                    .strip_prefix("Bearer ")
                    .map(str::to_string)
            })
            .or_else(|| query.get("token").map(str::to_string))
    }
}

impl Store {
    fn put(&mut self, key: &str, value: Vec<u8>, flags: u64, index: u64) {
        let create_index = self.kv.get(key).map_or(index, |e| e.create_index);
        self.graveyard.remove(key);
        self.kv.insert(
            key.into(),
            KvEntry {
                value,
                flags,
                create_index,
                modify_index: index,
            },
        );
    }

    fn delete(&mut self, key: &str, index: u64) {
        if self.kv.remove(key).is_some() {
            self.graveyard.insert(key.into(), index);
        }
    }

    fn delete_prefix(&mut self, prefix: &str, index: u64) {
        let keys: Vec<String> = self.keys_under(prefix).cloned().collect();
        for key in keys {
            self.delete(&key, index);
        }
    }

    fn keys_under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.kv.keys().filter(move |k| k.starts_with(prefix))
    }

    /// The index of one key: its last write or deletion.
    fn key_index(&self, key: &str) -> u64 {
        let live = self.kv.get(key).map(|e| e.modify_index);
        let dead = self.graveyard.get(key).copied();
        live.or(dead).unwrap_or(NEVER)
    }

    /// The index of a prefix: the last write or deletion of any key under it.
    fn prefix_index(&self, prefix: &str) -> u64 {
        let live = self.keys_under(prefix).map(|k| self.kv[k].modify_index);
        let dead = self
            .graveyard
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i);
        live.chain(dead).max().unwrap_or(NEVER)
    }

    fn register(&mut self, instance: Instance, index: u64) {
        if let Some(old) = self.instances.get(&instance.id) {
            // A re-registration under another name changes the old service too.
            self.service_index.insert(old.service.clone(), index);
        }
        self.service_index.insert(instance.service.clone(), index);
        self.instances.insert(instance.id.clone(), instance);
    }

    fn deregister(&mut self, id: &str, index: u64) {
        if let Some(old) = self.instances.remove(id) {
            self.service_index.insert(old.service, index);
        }
    }

    fn touch_services_on(&mut self, node: &str, index: u64) {
        let services: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.node == node)
            .map(|i| i.service.clone())
            .collect();
        for service in services {
            self.service_index.insert(service, index);
        }
    }

    fn service_index(&self, service: &str) -> u64 {
        self.service_index.get(service).copied().unwrap_or(NEVER)
    }

    fn node_status(&self, node: &str) -> &str {
        self.node_health.get(node).map_or("passing", String::as_str)
    }
}

/// Query parameters in order; Consul's flags (`?recurse`) have no value.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/kv/", get(kv_get).put(kv_put).delete(kv_delete))
        .route(
            "/v1/kv/{*key}",
            get(kv_get_key).put(kv_put_key).delete(kv_delete_key),
        )
        .route("/v1/health/service/{name}", get(health_service))
        .route("/v1/status/leader", get(status_leader))
        .route("/v1/status/peers", get(status_peers))
        .layer(middleware::from_fn_with_state(shared.clone(), gatekeeper))
        .with_state(shared)
}

/// Records every request, then applies the ACL and datacenter checks Consul applies before
/// answering, and adds the headers every Consul answer carries.
async fn gatekeeper(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), |p| p.to_string());
    shared
        .requests
        .lock()
        .unwrap()
        .push(format!("{} {target}", request.method()));
    let params = params_of(request.uri().query());
    let mut response = match refusal(&shared, request.headers(), request.uri().path(), &params) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    let (index, leader) = {
        let store = shared.lock();
        (store.index, store.leader.is_some())
    };
    let headers = response.headers_mut();
    // A handler that answered for a key, prefix or service has set its own index already.
    if !headers.contains_key("x-consul-index") {
        headers.insert("x-consul-index", HeaderValue::from(index.max(NEVER)));
    }
    headers.insert(
        "x-consul-knownleader",
        HeaderValue::from_static(if leader { "true" } else { "false" }),
    );
    headers.insert("x-consul-lastcontact", HeaderValue::from_static("0"));
    response
}

/// Why Consul would not answer this request, if it would not.
fn refusal(shared: &Shared, headers: &HeaderMap, path: &str, params: &Params) -> Option<Response> {
    if let Some(dc) = params.get("dc")
        && !shared.lock().datacenters.contains(dc)
    {
        return Some(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No path to datacenter",
        ));
    }
    let needs_token = shared.token.is_some() && !path.starts_with("/v1/status/");
    if needs_token && shared.token_of(headers, params) != shared.token {
        return Some(text(StatusCode::FORBIDDEN, "ACL not found"));
    }
    None
}

fn params_of(query: Option<&str>) -> Params {
    let pairs = query
        .and_then(|q| {
            Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().ok()?).ok()
        })
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    Params(pairs)
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_string()).into_response()
}

/// A JSON answer stating the index of what was asked.
fn json_at(index: u64, body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert("x-consul-index", HeaderValue::from(index));
    response
}

fn not_found_at(index: u64) -> Response {
    let mut response = StatusCode::NOT_FOUND.into_response();
    response
        .headers_mut()
        .insert("x-consul-index", HeaderValue::from(index));
    response
}

/// What a blocking query waits for (`?index=`) and how long at most (`?wait=`).
struct Blocking {
    min_index: u64,
    wait: Duration,
}

/// The blocking parameters, or the words of Consul's 400 for a bad one.
fn blocking_params(params: &Params) -> Result<Blocking, &'static str> {
    let min_index = match params.get("index") {
        None => 0,
        Some(i) => i.parse().map_err(|_| "Invalid index")?,
    };
    let wait = match params.get("wait") {
        None => DEFAULT_WAIT,
        Some(w) => humantime::parse_duration(w).map_err(|_| "Invalid wait time")?,
    };
    Ok(Blocking {
        min_index,
        wait: wait.min(MAX_WAIT),
    })
}

/// Waits until `index_of` the store is above the query's index or its wait passes (at once for
/// index 0 or an index already passed); the store at that moment.
async fn block_until_changed<'a>(
    shared: &'a Shared,
    blocking: &Blocking,
    index_of: impl Fn(&Store) -> u64,
) -> MutexGuard<'a, Store> {
    let deadline = tokio::time::Instant::now() + blocking.wait;
    let mut changes = shared.changes.subscribe();
    loop {
        // Marked seen before looking, so a write after the look still wakes the wait below.
        changes.borrow_and_update();
        {
            let store = shared.lock();
            if blocking.min_index == 0 || index_of(&store) > blocking.min_index {
                return store;
            }
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            // The wait passed (or the server is going away): answer with what there is.
            _ => return shared.lock(),
        }
    }
}

async fn kv_get(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    kv_read(&shared, "", &Params(params)).await
}

async fn kv_get_key(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    kv_read(&shared, &key, &Params(params)).await
}

async fn kv_read(shared: &Shared, key: &str, params: &Params) -> Response {
    let blocking = match blocking_params(params) {
        Ok(b) => b,
        Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
    };
    let listing = params.has("recurse") || params.has("keys");
    let store = block_until_changed(shared, &blocking, |s| {
        if listing {
            s.prefix_index(key)
        } else {
            s.key_index(key)
        }
    })
    .await;
    if params.has("keys") {
        let index = store.prefix_index(key);
        let keys = key_list(&store, key, params.get("separator"));
        return if keys.is_empty() {
            not_found_at(index)
        } else {
            json_at(index, json!(keys))
        };
    }
    if params.has("recurse") {
        let index = store.prefix_index(key);
        let entries: Vec<Value> = store
            .keys_under(key)
            .map(|k| entry_json(k, &store.kv[k]))
            .collect();
        return if entries.is_empty() {
            not_found_at(index)
        } else {
            json_at(index, Value::Array(entries))
        };
    }
    let index = store.key_index(key);
    match store.kv.get(key) {
        None => not_found_at(index),
        Some(entry) if params.has("raw") => {
            let mut response = entry.value.clone().into_response();
            response
                .headers_mut()
                .insert("x-consul-index", HeaderValue::from(index));
            response
        }
        Some(entry) => json_at(index, json!([entry_json(key, entry)])),
    }
}

/// `?keys`: the keys under `prefix`, each cut after the first `separator` past the prefix.
fn key_list(store: &Store, prefix: &str, separator: Option<&str>) -> Vec<String> {
    let cut = |key: &String| -> String {
        let rest = &key[prefix.len()..];
        match separator
            .filter(|s| !s.is_empty())
            .and_then(|s| rest.find(s).map(|at| at + s.len()))
        {
            Some(end) => key[..prefix.len() + end].to_string(),
            None => key.clone(),
        }
    };
    let mut keys: Vec<String> = store.keys_under(prefix).map(cut).collect();
    keys.dedup();
    keys
}

fn entry_json(key: &str, entry: &KvEntry) -> Value {
    // Consul shows an empty value as null.
    let value = (!entry.value.is_empty())
        .then(|| base64::engine::general_purpose::STANDARD.encode(&entry.value));
    json!({
        "LockIndex": 0,
        "Key": key,
        "Flags": entry.flags,
        "Value": value,
        "CreateIndex": entry.create_index,
        "ModifyIndex": entry.modify_index,
    })
}

async fn kv_put(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    kv_write(&shared, "", &Params(params), body)
}

async fn kv_put_key(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    kv_write(&shared, &key, &Params(params), body)
}

fn kv_write(shared: &Shared, key: &str, params: &Params, body: Bytes) -> Response {
    if key.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Missing key name");
    }
    let flags = match params.get("flags").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(f)) => f,
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "Invalid flags"),
    };
    let index = shared.write(|store, index| store.put(key, body.to_vec(), flags, index));
    json_at(index, json!(true))
}

async fn kv_delete(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    kv_remove(&shared, "", &Params(params))
}

async fn kv_delete_key(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    kv_remove(&shared, &key, &Params(params))
}

fn kv_remove(shared: &Shared, key: &str, params: &Params) -> Response {
    let recurse = params.has("recurse");
    if key.is_empty() && !recurse {
        return text(StatusCode::BAD_REQUEST, "Missing key name");
    }
    let index = shared.write(|store, index| {
        if recurse {
            store.delete_prefix(key, index);
        } else {
            store.delete(key, index);
        }
    });
    json_at(index, json!(true))
}

async fn health_service(
    State(shared): State<Arc<Shared>>,
    Path(service): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let params = Params(params);
    let blocking = match blocking_params(&params) {
        Ok(b) => b,
        Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
    };
    let store = block_until_changed(&shared, &blocking, |s| s.service_index(&service)).await;
    let mut instances: Vec<&Instance> = store
        .instances
        .values()
        .filter(|i| i.service == service)
        .collect();
    instances.sort_by(|a, b| (&a.node, &a.id).cmp(&(&b.node, &b.id)));
    let entries: Vec<Value> = instances
        .into_iter()
        .filter(|i| !params.has("passing") || all_passing(&store, i))
        .map(|i| service_entry_json(&store, i))
        .collect();
    json_at(store.service_index(&service), Value::Array(entries))
}

fn all_passing(store: &Store, instance: &Instance) -> bool {
    instance.status == "passing" && store.node_status(&instance.node) == "passing"
}

fn service_entry_json(store: &Store, i: &Instance) -> Value {
    json!({
        "Node": {
            "ID": "",
            "Node": i.node,
            "Address": "127.0.0.1",
            "Datacenter": "dc1",
            "TaggedAddresses": {},
            "Meta": {},
        },
        "Service": {
            "ID": i.id,
            "Service": i.service,
            "Tags": [],
            "Address": "",
            "Meta": {},
            "Port": i.port,
        },
        "Checks": [
            {
                "Node": i.node,
                "CheckID": "serfHealth",
                "Name": "Serf Health Status",
                "Status": store.node_status(&i.node),
                "Notes": "",
                "Output": "Agent alive and reachable",
                "ServiceID": "",
                "ServiceName": "",
                "ServiceTags": [],
            },
            {
                "Node": i.node,
                "CheckID": format!("service:{}", i.id),
                "Name": format!("Service '{}' check", i.service),
                "Status": i.status,
                "Notes": "",
                "Output": format!("check says {}", i.status),
                "ServiceID": i.id,
                "ServiceName": i.service,
                "ServiceTags": [],
            },
        ],
    })
}

async fn status_leader(State(shared): State<Arc<Shared>>) -> Response {
    let leader = shared.lock().leader.clone().unwrap_or_default();
    axum::Json(json!(leader)).into_response()
}

async fn status_peers(State(shared): State<Arc<Shared>>) -> Response {
    // The raft peers stay configured while no leader is elected.
    let peer = shared
        .lock()
        .leader
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8300".into());
    axum::Json(json!([peer])).into_response()
}
