//! `kind: http` against real axum servers on loopback (plain HTTP and HTTPS with generated
//! certificates): every measured value, every expectation and its message, and the errors.

mod net_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use net_support::{
    Rules, TestCa, assert_contains, assert_quicker_than, check_from, check_item, closed_port,
    judged, load_errors_of, lone_check_yaml, measure, number, run, run_lone, serve_http,
    serve_https_for,
};
use patrol::config::Check;
use patrol::result::{Status, Value};

fn app() -> Router {
    Router::new()
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move { StatusCode::from_u16(code).unwrap() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/json",
            get(|| async {
                Json(serde_json::json!({
                    "status": "UP",
                    "count": 42,
                    "ratio": 0.25,
                    "ok": true,
                    "items": [{"id": "a"}, {"id": "b"}]
                }))
            }),
        )
        .route(
            "/headers",
            get(|| async {
                (
                    [("x-version", "2.1.0"), ("cache-control", "no-store")],
                    "hello patrol",
                )
            }),
        )
        .route(
            "/bytes/{n}",
            get(|Path(n): Path<usize>| async move { "x".repeat(n) }),
        )
        .route("/redirect", get(|| async { Redirect::to("/json") }))
        .route("/echo", any(echo))
}

/// Echoes what the request carried, so tests can assert method, headers and body.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Json(serde_json::json!({
        "method": method.as_str(),
        "token": h("x-token"),
        "trace": h("x-trace"),
        "content_type": h(header::CONTENT_TYPE.as_str()),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn server() -> SocketAddr {
    patrol::install_crypto_provider();
    serve_http(app()).await
}

/// Rules with one http target `api` at `addr` and the given checks (YAML list items).
fn rules(addr: SocketAddr, checks: &str) -> String {
    format!("targets:\n  api: {{ kind: http, url: \"http://{addr}\" }}\nchecks:\n{checks}")
}

/// The given checks (YAML list items) against target `api`, served by a fresh [`app`].
async fn api_rules(checks: &str) -> Rules {
    let addr = server().await;
    Rules::new().file("r.yaml", &rules(addr, checks))
}

/// The http check `c` against a fresh [`app`] as target `api`; `fields` are the rest of its YAML
/// lines (`request: { path: /json }`).
async fn api_check(fields: &str) -> (Rules, Arc<Check>) {
    let item = check_item(&format!("name: c\nkind: http\ntarget: api\n{fields}"));
    let rules = api_rules(&item).await;
    let check = rules.check("c");
    (rules, check)
}

#[tokio::test]
async fn latency_is_the_default_value_and_2xx_is_ok() {
    let (_r, check) = api_check("request: { path: /json }").await;
    let m = measure(&check).await.unwrap();
    assert_eq!(m.unit, "ms");
    assert!(m.failures.is_empty(), "{:?}", m.failures);
    match &m.samples[0].value {
        Value::Num(ms) => assert!(*ms > 0.0 && *ms < 5000.0, "{ms}"),
        other => panic!("latency is a number, got {other:?}"),
    }
    let r = judged(&check, Ok(m));
    assert_eq!(r.status, Status::Ok, "{}", r.message);
}

#[tokio::test]
async fn status_value_and_default_expectation_reject_5xx() {
    let (_r, check) = api_check("value: status\nrequest: { path: /status/503 }").await;
    let r = run(&check).await;
    assert_eq!(r.value, Some(Value::Num(503.0)));
    assert_eq!(r.unit, "");
    assert_eq!(r.status, Status::Crit);
    assert_eq!(r.message, "expect.status: got 503, want 2xx or 3xx");
}

#[tokio::test]
async fn explicit_status_expectation_replaces_the_default() {
    let rules = api_rules(
        "  - { name: wanted-503, kind: http, target: api, request: { path: /status/503 }, expect: { status: 503 } }\n  \
         - { name: wanted-200, kind: http, target: api, request: { path: /status/404 }, expect: { status: 200 } }\n",
    )
    .await;
    assert_eq!(run(&rules.check("wanted-503")).await.status, Status::Ok);
    let r = run(&rules.check("wanted-200")).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(r.message, "expect.status: got 404, want eq(200)");
}

#[tokio::test]
async fn json_values_by_jsonpath() {
    let rules = api_rules(
        r#"  - { name: count, kind: http, target: api, request: { path: /json }, value: "json:$.count", crit: gt(40) }
  - { name: state, kind: http, target: api, request: { path: /json }, value: "json:$.status" }
  - { name: flag, kind: http, target: api, request: { path: /json }, value: "json:$.ok" }
  - { name: first, kind: http, target: api, request: { path: /json }, value: "json:$.items[*].id" }
  - { name: absent, kind: http, target: api, request: { path: /json }, value: "json:$.nope" }
"#,
    )
    .await;
    let r = run(&rules.check("count")).await;
    assert_eq!(r.value, Some(Value::Num(42.0)));
    assert_eq!(
        r.status,
        Status::Crit,
        "crit: gt(40) applies to the JSON number"
    );
    assert_eq!(r.message, "value 42 matches crit gt(40)");
    let text = |name: &str| {
        let c = rules.check(name);
        async move { run(&c).await }
    };
    assert_eq!(text("state").await.value, Some(Value::Text("UP".into())));
    assert_eq!(text("flag").await.value, Some(Value::Text("true".into())));
    assert_eq!(text("first").await.value, Some(Value::Text("a".into())));
    let absent = text("absent").await;
    assert_eq!(absent.status, Status::Crit);
    assert_eq!(absent.value, None);
    assert_eq!(absent.message, "json $.nope: no match");
}

#[tokio::test]
async fn header_and_body_size_values() {
    let rules = api_rules(
        r#"  - { name: version, kind: http, target: api, request: { path: /headers }, value: "header:X-Version" }
  - { name: missing, kind: http, target: api, request: { path: /headers }, value: "header:X-Nope" }
  - { name: size, kind: http, target: api, request: { path: /bytes/1234 }, value: body_bytes }
"#,
    )
    .await;
    let r = run(&rules.check("version")).await;
    assert_eq!(
        (r.status, r.value),
        (Status::Ok, Some(Value::Text("2.1.0".into())))
    );
    let r = run(&rules.check("missing")).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (Status::Crit, "header X-Nope: missing")
    );
    let r = run(&rules.check("size")).await;
    assert_eq!(
        (r.status, r.value, r.unit.as_str()),
        (Status::Ok, Some(Value::Num(1234.0)), "bytes")
    );
}

#[tokio::test]
async fn each_failed_expectation_is_named() {
    let (_r, check) = api_check(
        r#"request: { path: /json }
expect:
  latency_ms: lt(0)
  json: { "$.status": eq("DOWN"), "$.ratio": "between(0, 0.2)", "$.gone": 1 }
  body_matches: '"healthy"'
  headers: { Content-Type: matches("xml"), X-Absent: "1" }"#,
    )
    .await;
    let m = measure(&check).await.unwrap();
    let f = &m.failures;
    assert_eq!(f.len(), 7, "{f:#?}");
    assert!(
        f[0].starts_with("expect.latency_ms: got ") && f[0].ends_with(", want lt(0)"),
        "{}",
        f[0]
    );
    assert_eq!(f[1], "expect.json $.gone: no match");
    assert_eq!(f[2], "expect.json $.ratio: got 0.25, want between(0, 0.2)");
    assert_eq!(f[3], r#"expect.json $.status: got "UP", want eq("DOWN")"#);
    assert!(
        f[4].starts_with(r#"expect.body_matches: body does not match "\"healthy\"""#),
        "{}",
        f[4]
    );
    assert_eq!(
        f[5],
        r#"expect.headers Content-Type: got "application/json", want matches("xml")"#
    );
    assert_eq!(f[6], "expect.headers X-Absent: missing");
    let r = judged(&check, Ok(m));
    assert_eq!(r.status, Status::Crit);
    assert!(
        r.message.contains("expect.json $.status: got \"UP\"") && r.message.contains("; "),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn met_expectations_leave_the_check_ok() {
    let (_r, check) = api_check(
        r#"request: { path: /headers }
expect:
  status: 200
  latency_ms: lt(5000)
  body_matches: "^hello \\w+$"
  headers: { X-Version: matches("^2\\."), Cache-Control: no-store }"#,
    )
    .await;
    let r = run(&check).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(r.message, "");
}

#[tokio::test]
async fn redirects_are_followed_unless_disabled() {
    let rules = api_rules(
        r#"  - { name: follow, kind: http, target: api, value: status, request: { path: /redirect } }
  - { name: stay, kind: http, target: api, value: status, request: { path: /redirect, follow_redirects: false } }
"#,
    )
    .await;
    let r = run(&rules.check("follow")).await;
    assert_eq!((r.status, r.value), (Status::Ok, Some(Value::Num(200.0))));
    let r = run(&rules.check("stay")).await;
    assert_eq!(
        (r.status, r.value),
        (Status::Ok, Some(Value::Num(303.0))),
        "3xx meets the default expectation"
    );
}

#[tokio::test]
async fn method_body_and_headers_of_target_and_request_are_sent() {
    let addr = server().await;
    let yaml = format!(
        r#"targets:
  api:
    kind: http
    url: "http://{addr}"
    headers: {{ X-Token: "${{env:API_TOKEN}}", X-Trace: from-target }}
checks:
  - name: c
    kind: http
    target: api
    request:
      method: post
      path: /echo
      headers: {{ X-Trace: from-request, Content-Type: text/plain }}
      body: "ping body"
    value: "json:$.token"
    expect:
      json: {{ "$.method": POST, "$.trace": from-request, "$.body": ping body, "$.content_type": text/plain }}
"#
    );
    let rules = Rules::new()
        .env("API_TOKEN", "tok-123456")
        .file("r.yaml", &yaml);
    let r = run(&rules.check("c")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    // The token came from the environment, so the engine masks it in the stored value.
    assert_eq!(r.value, Some(Value::Text(patrol::secrets::MASK.into())));
}

#[tokio::test]
async fn request_url_works_without_a_target() {
    let addr = server().await;
    let r = run_lone(
        "c",
        &format!("kind: http, value: status, request: {{ url: \"http://{addr}/status/204\" }}"),
    )
    .await;
    assert_eq!((r.status, r.value), (Status::Ok, Some(Value::Num(204.0))));
}

#[tokio::test]
async fn inline_url_is_joined_with_the_path() {
    let addr = server().await;
    let r = run_lone(
        "c",
        &format!(
            "kind: http, url: \"http://{addr}/status\", value: status, request: {{ path: \"202\" }}"
        ),
    )
    .await;
    assert_eq!(r.value, Some(Value::Num(202.0)));
}

#[tokio::test]
async fn connection_refused_is_an_error_without_credentials() {
    let port = closed_port().await;
    let yaml = format!(
        "targets:\n  down: {{ kind: http, url: \"http://admin:${{env:PW}}@127.0.0.1:{port}/x?key=${{env:PW}}\" }}\nchecks:\n  - {{ name: c, kind: http, target: down }}\n"
    );
    let rules = Rules::new()
        .env("PW", "hunter2-secret")
        .file("r.yaml", &yaml);
    let check = rules.check("c");
    let err = measure(&check).await.unwrap_err();
    assert_contains(&err.0, &format!("request to 127.0.0.1:{port} failed"));
    assert_contains(&err.0.to_lowercase(), "connection refused");
    assert!(
        !err.0.contains("hunter2") && !err.0.contains("admin"),
        "{err}"
    );
    let r = judged(&check, Err(err));
    assert_eq!(r.status, Status::Error);
}

#[tokio::test]
async fn slow_response_times_out_as_error() {
    let (_r, check) = api_check("timeout: 300ms\nrequest: { path: /slow }").await;
    let t0 = Instant::now();
    let r = run(&check).await;
    assert_quicker_than(t0, Duration::from_secs(2));
    assert_eq!(r.status, Status::Error);
    assert_contains(&r.message, "timed out");
}

#[tokio::test]
async fn cert_days_left_needs_https() {
    let (_r, check) = api_check("value: cert_days_left").await;
    let err = measure(&check).await.unwrap_err();
    assert_contains(&err.0, "cert_days_left needs an https URL");
}

#[tokio::test]
async fn https_with_untrusted_certificate_is_an_error() {
    let (addr, _leaf) = serve_https_for(app(), &TestCa::new(), 30).await;
    let r = run_lone(
        "c",
        &format!("kind: http, url: \"https://{addr}\", request: {{ path: /json }}"),
    )
    .await;
    assert_eq!(r.status, Status::Error);
    assert_contains(&r.message, &format!("request to {addr} failed"));
    assert!(
        r.message.contains("UnknownIssuer") || r.message.contains("unknown issuer"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn https_insecure_skip_verify_still_reads_the_certificate() {
    let (addr, leaf) = serve_https_for(app(), &TestCa::new(), 30).await;
    let yaml = format!(
        "targets:\n  tls: {{ kind: http, url: \"https://{addr}\", tls: {{ insecure_skip_verify: true }} }}\nchecks:\n  - {{ name: c, kind: http, target: tls, request: {{ path: /json }}, value: cert_days_left, warn: lt(40) }}\n"
    );
    let (_r, check) = check_from(&yaml, "c");
    let r = run(&check).await;
    assert_eq!(r.unit, "days");
    leaf.assert_days_left(number(&r.value));
    assert_eq!(r.status, Status::Warn, "{}", r.message);
}

#[tokio::test]
async fn https_with_ca_file_relative_to_the_rule_file_verifies() {
    let ca = TestCa::new();
    let (addr, leaf) = serve_https_for(app(), &ca, 90).await;
    let yaml = format!(
        "targets:\n  tls: {{ kind: http, url: \"https://{addr}\", tls: {{ ca_file: certs/ca.pem }} }}\nchecks:\n  - {{ name: c, kind: http, target: tls, request: {{ path: /json }}, value: \"json:$.status\", expect: {{ status: 200 }} }}\n  - {{ name: days, kind: http, target: tls, request: {{ path: /json }}, value: cert_days_left }}\n"
    );
    let rules = Rules::new();
    std::fs::create_dir(rules.path().join("certs")).unwrap();
    let rules = rules.file("certs/ca.pem", &ca.pem()).file("r.yaml", &yaml);
    let r = run(&rules.check("c")).await;
    assert_eq!(
        (r.status, r.value),
        (Status::Ok, Some(Value::Text("UP".into()))),
        "{}",
        r.message
    );
    let r = run(&rules.check("days")).await;
    leaf.assert_days_left(number(&r.value));
}

#[tokio::test]
async fn many_checks_share_clients_and_run_concurrently() {
    let mut checks = String::new();
    for i in 0..200 {
        checks.push_str(&format!(
            "  - {{ name: c{i}, kind: http, target: api, request: {{ path: /status/200 }} }}\n"
        ));
    }
    let all = api_rules(&checks).await.load().checks;
    assert_eq!(all.len(), 200);
    let t0 = Instant::now();
    let results = futures::future::join_all(all.iter().map(|c| run(c))).await;
    assert!(
        results.iter().all(|r| r.status == Status::Ok),
        "{:?}",
        results.iter().find(|r| r.status != Status::Ok)
    );
    assert_quicker_than(t0, Duration::from_secs(5));
}

#[test]
fn cert_days_left_on_a_plain_http_url_is_rejected_when_loading() {
    let text = load_errors_of(&lone_check_yaml(
        "c",
        "kind: http, url: \"http://127.0.0.1:1\", value: cert_days_left",
    ));
    assert_contains(&text, "cert_days_left needs an https URL");
}
