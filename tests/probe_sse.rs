//! `kind: sse` against real axum servers on loopback whose event streams the tests script byte by
//! byte: a flowing stream (events, first-event time, `retry:`, headers and `Last-Event-ID` as the
//! server received them), a stream that stalls after its headers, one that sends only comments,
//! a wrong content type, an early close, a server that never answers, a refused connection, HTTPS
//! with the target's CA, the shared WHATWG wire vectors, and the rule-file validation.

mod net_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::{self, Stream, StreamExt};
use net_support::{
    Rules, TestCa, assert_contains, assert_quicker_than, assert_starts_with, check_from,
    closed_port, judged_error, lone_check, measure, number, run, serve_http, serve_https_for,
};
use patrol::engine::{Known, execute_check};
use patrol::result::Status;

/// One step of a scripted stream: a chunk on the wire, a pause in ms, or silence forever.
#[derive(Clone, Debug)]
enum Step {
    Chunk(&'static str),
    Pause(u64),
    /// Sends nothing more, ever, and keeps the connection open.
    Stall,
}

use Step::{Chunk, Pause, Stall};

/// The body of a scripted stream: each `Chunk` is one write on the wire; the response ends after
/// the last step (unless it is `Stall`).
fn scripted(steps: Vec<Step>) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Chunk(text) => return Some((Ok(Bytes::from_static(text.as_bytes())), steps)),
                Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Stall => std::future::pending::<()>().await,
            }
        }
    })
}

/// Comment heartbeats every `every_ms`, forever.
fn heartbeats(every_ms: u64) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold((), move |()| async move {
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
        Some((Ok(Bytes::from_static(b": ping\n")), ()))
    })
}

fn streaming(
    content_type: &'static str,
    body: impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Request headers as the server received them, one entry per request.
type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// The flowing stream: `retry:`, five events within ~300 ms (the first after 200 ms, ids 42..46),
/// then a heartbeat every 100 ms for as long as the client listens.
async fn flowing(State(seen): State<Seen>, headers: HeaderMap) -> Response {
    seen.lock().unwrap().push(headers);
    let head = scripted(vec![
        Chunk("retry: 1500\n\n"),
        Pause(200),
        Chunk("id: 42\ndata: one\n\n"),
        Pause(20),
        Chunk(": hb\nid: 43\ndata: two\n\n"),
        // One event split inside its data and inside the CRLF pair that ends it.
        Chunk("id: 44\r\ndata: th"),
        Pause(20),
        Chunk("ree\r"),
        Chunk("\n\r\n"),
        Chunk("id: 45\ndata: four\n\nid: 46\nevent: update\ndata: five\n\n"),
    ]);
    streaming("text/event-stream", head.chain(heartbeats(100)))
}

fn app(seen: Seen) -> Router {
    Router::new()
        .route("/events", get(flowing))
        .route(
            "/stall",
            get(|| async { streaming("text/event-stream", scripted(vec![Stall])) }),
        )
        .route(
            "/stall-after-one",
            get(|| async {
                streaming(
                    "text/event-stream",
                    scripted(vec![Chunk("data: only\n\n"), Stall]),
                )
            }),
        )
        .route(
            "/comments",
            get(|| async { streaming("text/event-stream", heartbeats(50)) }),
        )
        .route(
            "/json",
            get(|| async {
                streaming(
                    "application/json",
                    scripted(vec![Chunk("data: {}\n\n"), Stall]),
                )
            }),
        )
        .route(
            "/closes",
            get(|| async {
                streaming(
                    "text/event-stream; charset=utf-8",
                    scripted(vec![Chunk("data: a\n\n"), Pause(50), Chunk("data: b\n\n")]),
                )
            }),
        )
        .route("/never", get(std::future::pending::<String>))
        .route(
            "/slow-headers",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                streaming("text/event-stream", scripted(vec![Stall]))
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                (StatusCode::from_u16(code).unwrap(), "upstream down")
            }),
        )
        .with_state(seen)
}

/// A fresh server on loopback and the headers of the requests it received.
async fn server() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    (serve_http(app(seen.clone())).await, seen)
}

/// An sse check `s` of `http://{addr}{path}`; `more` adds to its YAML flow mapping.
fn sse_check(addr: SocketAddr, path: &str, more: &str) -> (Rules, Arc<patrol::config::Check>) {
    lone_check(
        "s",
        &format!("kind: sse, url: \"http://{addr}{path}\"{more}"),
    )
}

/// A rule file with the http target `feed` of `addr` carrying a token header, and the check `s`
/// on it with `fields`.
fn on_feed_target(addr: SocketAddr, fields: &str) -> (Rules, Arc<patrol::config::Check>) {
    check_from(
        &format!(
            "targets:\n  feed: {{ kind: http, url: \"http://{addr}/\", headers: {{ X-Token: t0k3n }} }}\n\
             checks:\n  - {{ name: s, kind: sse, target: feed, {fields} }}\n"
        ),
        "s",
    )
}

#[tokio::test]
async fn a_flowing_stream_is_counted_timed_and_resumed_from_last_event_id() {
    let (addr, seen) = server().await;
    let (_rules, check) = on_feed_target(
        addr,
        "path: /events, headers: { X-Trace: abc }, last_event_id: \"41\", window: 1s, timeout: 3s, expect: { events: eq(5), max_gap: lt(1000) }",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(number(&r.value), 5.0, "five events, comments not counted");
    assert_eq!(r.unit, "");

    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let h = |name: &str| {
        received[0]
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(h("last-event-id").as_deref(), Some("41"));
    assert_eq!(
        h("x-token").as_deref(),
        Some("t0k3n"),
        "the target's header"
    );
    assert_eq!(
        h("x-trace").as_deref(),
        Some("abc"),
        "the check's own header"
    );
    assert_eq!(h("accept").as_deref(), Some("text/event-stream"));
}

#[tokio::test]
async fn every_value_of_a_flowing_stream() {
    let (addr, _) = server().await;
    let value = |name: &'static str| async move {
        let (_rules, check) = sse_check(
            addr,
            "/events",
            &format!(", value: {name}, window: 1s, timeout: 3s"),
        );
        let r = run(&check).await;
        assert_eq!(r.status, Status::Ok, "{name}: {}", r.message);
        (number(&r.value), r.unit)
    };
    let (headers, first, gap, retry, events) = tokio::join!(
        value("time_to_headers_ms"),
        value("time_to_first_event_ms"),
        value("max_gap_ms"),
        value("retry_ms"),
        value("events"),
    );
    assert_eq!(headers.1, "ms");
    assert!(headers.0 > 0.0 && headers.0 < 200.0, "{headers:?}");
    // The first event leaves the server 200 ms after the headers.
    assert!(first.0 >= 200.0 && first.0 < 600.0, "{first:?}");
    assert!(first.0 > headers.0);
    // The longest silence is the 200 ms before the first event; heartbeats follow every 100 ms.
    assert!(gap.0 >= 190.0 && gap.0 < 500.0, "{gap:?}");
    assert_eq!(retry, (1500.0, "ms".to_string()));
    assert_eq!(events, (5.0, String::new()));
}

#[tokio::test]
async fn a_stream_that_stalls_after_its_headers_is_crit_within_the_window() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(addr, "/stall", ", window: 1s, timeout: 3s");
    let started = Instant::now();
    // The engine's own runner: the probe answers before the runner's timeout would.
    let judged = execute_check(&check, &Known::default(), "run", "rev").await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let r = &judged.results[0];
    assert_eq!(r.status, Status::Crit, "{}", r.message);
    assert_eq!(number(&r.value), 0.0);
    assert_eq!(
        r.message,
        "no event or comment within 1s: the stream stalled after its headers"
    );
}

#[tokio::test]
async fn a_stall_after_the_headers_reports_the_full_window_as_the_gap() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(
        addr,
        "/stall",
        ", value: max_gap_ms, window: 700ms, timeout: 2s",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(number(&r.value), 700.0);
    assert_contains(&r.message, "the stream stalled after its headers");
}

#[tokio::test]
async fn slow_headers_cut_the_window_short_but_never_the_timeout() {
    let (addr, _) = server().await;
    // Headers after 1 s: only ~0.9 s of the 1.5 s window fit into the 2 s timeout.
    let (_rules, check) = sse_check(addr, "/slow-headers", ", window: 1500ms, timeout: 2s");
    let started = Instant::now();
    let judged = execute_check(&check, &Known::default(), "run", "rev").await;
    assert_quicker_than(started, Duration::from_millis(2000));
    let r = &judged.results[0];
    assert_eq!(r.status, Status::Crit, "{}", r.message);
    assert_contains(
        &r.message,
        "the stream stalled after its headers (the 1s 500ms window was cut short by the 2s timeout)",
    );
}

#[tokio::test]
async fn a_stream_silent_after_one_event_fails_only_the_gap_expectation() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(
        addr,
        "/stall-after-one",
        ", window: 800ms, timeout: 2s, expect: { max_gap: lt(500) }",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(number(&r.value), 1.0);
    let gap = r
        .message
        .strip_prefix("expect.max_gap: got ")
        .and_then(|rest| rest.strip_suffix(" ms, want lt(500)"))
        .unwrap_or_else(|| panic!("{}", r.message));
    let gap: f64 = gap.parse().unwrap();
    assert!(
        (700.0..=800.0).contains(&gap),
        "silence after the only event: {gap}"
    );
}

#[tokio::test]
async fn comments_alone_keep_the_gap_small_but_count_no_events() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(
        addr,
        "/comments",
        ", window: 600ms, timeout: 2s, expect: { events: gt(0) }",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(number(&r.value), 0.0);
    assert_eq!(r.message, "expect.events: got 0, want gt(0)");

    let (_rules, check) = sse_check(
        addr,
        "/comments",
        ", value: max_gap_ms, window: 600ms, timeout: 2s",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Ok, "not a stall: {}", r.message);
    assert!(
        number(&r.value) < 200.0,
        "heartbeats every 50 ms: {:?}",
        r.value
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_named() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(addr, "/json", ", window: 300ms, timeout: 2s");
    let r = run(&check).await;
    assert_eq!(r.status, Status::Crit);
    assert_eq!(
        r.message,
        r#"expect.content_type: got "application/json", want "text/event-stream""#
    );
    // Saying which type is fine, or none at all.
    let (_rules, check) = sse_check(
        addr,
        "/json",
        ", window: 300ms, timeout: 2s, expect: { content_type: application/json }",
    );
    assert_eq!(run(&check).await.status, Status::Ok);
    let (_rules, check) = sse_check(
        addr,
        "/json",
        ", window: 300ms, timeout: 2s, expect: { content_type: \"\" }",
    );
    assert_eq!(run(&check).await.status, Status::Ok);
}

#[tokio::test]
async fn an_early_close_is_reported_unless_allowed() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(addr, "/closes", ", window: 1s, timeout: 2s");
    let started = Instant::now();
    let r = run(&check).await;
    assert_quicker_than(started, Duration::from_millis(700));
    assert_eq!(r.status, Status::Crit);
    assert_eq!(number(&r.value), 2.0);
    assert_starts_with(&r.message, "the server closed the stream after ");
    assert_contains(&r.message, "ms (2 events)");

    let (_rules, check) = sse_check(
        addr,
        "/closes",
        ", window: 1s, timeout: 2s, expect: { stays_open: false, events: eq(2) }",
    );
    let r = run(&check).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
}

#[tokio::test]
async fn a_status_other_than_200_is_crit() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(addr, "/status/503", ", window: 1s, timeout: 2s");
    let started = Instant::now();
    let r = run(&check).await;
    assert_quicker_than(started, Duration::from_millis(500));
    assert_eq!(r.status, Status::Crit);
    assert_eq!(r.value, None);
    assert_eq!(
        r.message,
        "status 503 Service Unavailable, want 200 (an EventSource gives up on any other status)"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error_within_the_timeout() {
    let (addr, _) = server().await;
    let (_rules, check) = sse_check(addr, "/never", ", window: 500ms, timeout: 1s");
    let started = Instant::now();
    let message = judged_error(&check).await;
    assert_quicker_than(started, Duration::from_millis(1100));
    assert_eq!(
        message,
        format!("no response headers from {addr} within 950ms (timeout 1s)")
    );
}

#[tokio::test]
async fn a_refused_connection_is_an_error() {
    let port = closed_port().await;
    let (_rules, check) = lone_check(
        "s",
        &format!("kind: sse, url: \"http://127.0.0.1:{port}/events\", timeout: 2s"),
    );
    let started = Instant::now();
    let message = judged_error(&check).await;
    assert_quicker_than(started, Duration::from_millis(1500));
    assert_starts_with(&message, &format!("request to 127.0.0.1:{port} failed: "));
    assert_contains(&message.to_lowercase(), "refused");
}

#[tokio::test]
async fn https_streams_trust_the_targets_ca_file() {
    let ca = TestCa::new();
    let (addr, _leaf) = serve_https_for(app(Seen::default()), &ca, 30).await;
    let rules = Rules::new().file("ca.pem", &ca.pem()).file(
        "r.yaml",
        &format!(
            "targets:\n  feed: {{ kind: http, url: \"https://127.0.0.1:{}\", tls: {{ ca_file: ca.pem }} }}\n\
             checks:\n  - {{ name: s, kind: sse, target: feed, path: events, window: 600ms, timeout: 2s }}\n",
            addr.port()
        ),
    );
    let r = run(&rules.check("s")).await;
    assert_eq!(r.status, Status::Ok, "{}", r.message);
    assert_eq!(number(&r.value), 5.0);

    // Without the CA the certificate is refused: an error, not a stall.
    let (_rules, check) = lone_check(
        "s",
        &format!(
            "kind: sse, url: \"https://127.0.0.1:{}/events\", timeout: 2s",
            addr.port()
        ),
    );
    let message = judged_error(&check).await;
    assert_contains(&message.to_lowercase(), "certificate");
}

/// One case of the shared WHATWG vectors (`shared/testdata/sse-streams.json`).
#[derive(serde::Deserialize)]
struct Case {
    name: String,
    stream: String,
    events: Vec<serde_json::Value>,
    retry_ms: Option<f64>,
}

fn vectors() -> Vec<Case> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sse-streams.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(file["cases"].clone()).unwrap()
}

/// Serves each vector's stream in 1-byte chunks at `/case/{i}` (then closes).
async fn vector_server(cases: &[Case]) -> SocketAddr {
    let streams: Arc<Vec<Vec<u8>>> =
        Arc::new(cases.iter().map(|c| c.stream.as_bytes().to_vec()).collect());
    let router = Router::new().route(
        "/case/{i}",
        get(move |Path(i): Path<usize>| {
            let bytes = streams[i].clone();
            async move {
                let chunks = bytes
                    .into_iter()
                    .map(|b| Ok::<_, Infallible>(Bytes::from(vec![b])));
                streaming("text/event-stream", stream::iter(chunks))
            }
        }),
    );
    serve_http(router).await
}

#[tokio::test]
async fn the_wire_vectors_give_their_events_and_retry_byte_by_byte() {
    let cases = vectors();
    assert!(cases.len() > 5);
    let addr = vector_server(&cases).await;
    let measure_case = |i: usize, value: &'static str| async move {
        let (_rules, check) = lone_check(
            "s",
            &format!(
                "kind: sse, url: \"http://{addr}/case/{i}\", value: {value}, window: 1s, timeout: 2s, expect: {{ stays_open: false }}"
            ),
        );
        measure(&check).await.unwrap()
    };
    for (i, case) in cases.iter().enumerate() {
        let m = measure_case(i, "events").await;
        assert!(m.failures.is_empty(), "{}: {:?}", case.name, m.failures);
        let events = m.samples[0].value.as_f64().unwrap();
        assert_eq!(events, case.events.len() as f64, "{}", case.name);
        let retry = measure_case(i, "retry_ms").await;
        let seen = retry.samples.first().and_then(|s| s.value.as_f64());
        assert_eq!(seen, case.retry_ms, "{}: {:?}", case.name, retry.failures);
    }
}

/// The diagnostics of `yaml` as `file:line:col: error: message` lines.
fn diagnostics(yaml: &str) -> String {
    let diags = Rules::new()
        .file("r.yaml", yaml)
        .try_load()
        .expect_err("the rules must not load");
    diags.iter().map(|d| format!("{d}\n")).collect()
}

#[test]
fn a_window_not_shorter_than_the_timeout_is_refused_where_it_is_written() {
    let text = diagnostics(
        "checks:\n  - name: s\n    kind: sse\n    url: http://127.0.0.1:1/events\n    timeout: 2s\n    window: 2s\n",
    );
    assert_contains(
        &text,
        "r.yaml:6:13: error: window (2s) must be shorter than the check's timeout (2s)",
    );
    // An unset window fits any timeout.
    let (_rules, _check) = lone_check("s", "kind: sse, url: \"http://127.0.0.1:1/\", timeout: 1s");
}

#[test]
fn an_unknown_value_is_refused_where_it_is_written() {
    let text = diagnostics(
        "checks:\n  - name: s\n    kind: sse\n    url: http://127.0.0.1:1/events\n    value: latency_ms\n",
    );
    assert_contains(&text, "r.yaml:5:12: error: ");
    assert_contains(&text, "latency_ms");
    assert_contains(&text, "time_to_first_event_ms");
}

#[test]
fn malformed_fields_are_each_refused_where_they_are_written() {
    let text = diagnostics(concat!(
        "checks:\n",
        "  - name: s\n",
        "    kind: sse\n",
        "    url: http://127.0.0.1:1/events\n",
        "    path: http://other/x\n",
        "    last_event_id: \"a\\nb\"\n",
        "    expect:\n",
        "      events: gt(\n",
        "      content_type: event-stream\n",
        "      max_gap: lt(15s)\n",
    ));
    assert_contains(
        &text,
        "r.yaml:5:11: error: path is joined to the target's URL",
    );
    assert_contains(
        &text,
        "r.yaml:6:20: error: last_event_id must not contain NUL or line breaks",
    );
    assert_contains(&text, "r.yaml:8:15: error: ");
    assert_contains(
        &text,
        "r.yaml:9:21: error: \"event-stream\" is not a media type such as text/event-stream",
    );
    assert_contains(
        &text,
        "r.yaml:10:16: error: condition \"lt(15s)\": \"15s\" is neither a number nor a quoted string; max_gap is compared in milliseconds, e.g. lt(15000)",
    );
}

#[test]
fn an_sse_check_needs_an_http_target() {
    let text = diagnostics(
        "targets:\n  db: { kind: redis, url: \"redis://127.0.0.1:1\" }\nchecks:\n  - { name: s, kind: sse, target: db }\n",
    );
    assert_contains(&text, "a sse check cannot use target `db` of kind redis");
}
