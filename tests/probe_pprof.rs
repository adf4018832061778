//! `kind: pprof` against a Go-style service on loopback: an axum server answering
//! `/debug/pprof/goroutine?debug=1` and `/debug/pprof/heap?debug=1` with text in the exact format
//! Go's runtime/pprof writes (tests/fixtures/pprof, tabwriter padding and the heap profile's
//! runtime.MemStats block included), with a goroutine count and a heap size the tests turn up to
//! simulate a leak. Without `debug=1` it answers binary data, as Go answers the protobuf profile.
//! Growth bookkeeping runs through the engine (the probe memory one run leaves is handed to the
//! next) and through two `patrol run` processes sharing a SQLite store.

mod common;
mod net_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use net_support::{
    Rules, assert_contains, assert_starts_with, closed_port, load_error_lines, lone_check, measure,
    number, run_lone, serve_http, single,
};
use patrol::config::Check;
use patrol::engine::{Known, execute_check_remembering};
use patrol::probe::pprof::growth::History;
use patrol::result::{CheckResult, Status};

const GOROUTINES_BASE: &str = include_str!("fixtures/pprof/goroutine-base.txt");
const LEAK_STANZA: &str = include_str!("fixtures/pprof/goroutine-leak-stanza.txt");
const HEAP: &str = include_str!("fixtures/pprof/heap.txt");
/// HeapInuse written in the heap fixture.
const FIXTURE_HEAP_INUSE: &str = "# HeapInuse = 4505600\n";

/// Goroutines of the healthy service: the counts of the base fixture's stanzas.
fn base_goroutines() -> u64 {
    GOROUTINES_BASE
        .lines()
        .filter_map(|l| l.split_once(" @ "))
        .map(|(count, _)| count.parse::<u64>().unwrap())
        .sum()
}

/// What the fake Go service's runtime looks like right now.
struct Runtime {
    goroutines: u64,
    heap_inuse: u64,
    /// `Authorization` value the pprof handlers demand, if any.
    token: Option<String>,
    /// Delay before answering.
    delay: Duration,
    /// "path?query" of every request.
    requests: Vec<String>,
}

/// A Go service with net/http/pprof on a random loopback port.
#[derive(Clone)]
struct GoService {
    url: String,
    runtime: Arc<Mutex<Runtime>>,
}

impl GoService {
    /// Serves pprof under `/debug/pprof` and under `/internal/debug/pprof`.
    async fn start() -> GoService {
        let runtime = Arc::new(Mutex::new(Runtime {
            goroutines: base_goroutines(),
            heap_inuse: 4_505_600,
            token: None,
            delay: Duration::ZERO,
            requests: Vec::new(),
        }));
        let pprof = Router::new()
            .route("/goroutine", get(goroutine))
            .route("/heap", get(heap))
            .with_state(runtime.clone());
        let app = Router::new()
            .nest("/debug/pprof", pprof.clone())
            .nest("/internal/debug/pprof", pprof)
            .route(
                "/login/debug/pprof/goroutine",
                get(|| async { "<!DOCTYPE html>\n<html><body>Sign in</body></html>\n" }),
            );
        let addr = serve_http(app).await;
        GoService {
            url: format!("http://{addr}"),
            runtime,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Runtime)) {
        f(&mut self.runtime.lock().unwrap());
    }

    fn set_goroutines(&self, n: u64) {
        self.set(|r| r.goroutines = n);
    }

    fn requests(&self) -> Vec<String> {
        self.runtime.lock().unwrap().requests.clone()
    }
}

/// The goroutine profile Go writes with `total` goroutines: the healthy service's stanzas plus
/// the leaking goroutines blocked in one place (the biggest group, which Go prints first).
fn goroutine_profile(total: u64) -> String {
    let leaked = total.saturating_sub(base_goroutines());
    match leaked {
        0 => format!("goroutine profile: total {total}\n{GOROUTINES_BASE}"),
        n => format!("goroutine profile: total {total}\n{n} {LEAK_STANZA}{GOROUTINES_BASE}"),
    }
}

fn heap_profile(heap_inuse: u64) -> String {
    assert!(HEAP.contains(FIXTURE_HEAP_INUSE));
    HEAP.replace(FIXTURE_HEAP_INUSE, &format!("# HeapInuse = {heap_inuse}\n"))
}

async fn goroutine(
    State(rt): State<Arc<Mutex<Runtime>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    answer(&rt, &headers, &q, "/goroutine", |r| {
        goroutine_profile(r.goroutines)
    })
    .await
}

async fn heap(
    State(rt): State<Arc<Mutex<Runtime>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    answer(&rt, &headers, &q, "/heap", |r| heap_profile(r.heap_inuse)).await
}

/// What net/http/pprof answers: text for debug=1, a gzipped protobuf profile otherwise.
async fn answer(
    rt: &Mutex<Runtime>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    name: &str,
    text: impl FnOnce(&Runtime) -> String,
) -> Response {
    let (delay, token) = {
        let mut r = rt.lock().unwrap();
        let mut keys: Vec<_> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        keys.sort();
        r.requests.push(format!("{name}?{}", keys.join("&")));
        (r.delay, r.token.clone())
    };
    tokio::time::sleep(delay).await;
    if let Some(token) = token
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(&token)
    {
        return (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response();
    }
    if query.get("debug").map(String::as_str) != Some("1") {
        let gzip = vec![
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xe2, 0x62,
        ];
        return ([(header::CONTENT_TYPE, "application/octet-stream")], gzip).into_response();
    }
    let body = text(&rt.lock().unwrap());
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A rule file with the target `go` pointing at `svc` and one pprof check `c` with `fields`.
fn pprof_rules(svc: &GoService, fields: &str) -> (Rules, Arc<Check>) {
    let yaml = format!(
        "targets:\n  go: {{ kind: http, url: \"{}\" }}\nchecks:\n  - {{ name: c, kind: pprof, target: go, {fields} }}\n",
        svc.url
    );
    let rules = Rules::new().file("rules.yaml", &yaml);
    let check = rules.check("c");
    (rules, check)
}

/// One engine run of `check` with the memory the previous run left; its single result and the
/// memory it leaves.
async fn engine_run(
    check: &Check,
    memory: Option<serde_json::Value>,
) -> (CheckResult, Option<serde_json::Value>) {
    let mut judged =
        execute_check_remembering(check, &Known::default(), memory, "run", "rev").await;
    assert_eq!(judged.results.len(), 1, "{:#?}", judged.results);
    (judged.results.remove(0), judged.memory)
}

/// The memory as if every remembered reading had been taken `by` earlier.
fn aged(memory: Option<serde_json::Value>, by: Duration) -> Option<serde_json::Value> {
    let mut history = History::from_memory(memory.as_ref());
    assert!(!history.points.is_empty(), "nothing remembered: {memory:?}");
    for p in &mut history.points {
        p.at_ms -= by.as_millis() as i64;
    }
    Some(history.to_memory())
}

#[tokio::test]
async fn goroutines_are_the_total_of_the_goroutine_profile() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(&svc, "value: goroutines");
    let m = measure(&check).await.unwrap();
    assert_eq!(base_goroutines(), 17);
    assert_eq!(single(&m).unwrap(), &patrol::result::Value::Num(17.0));
    assert_eq!(m.unit, "");
    assert!(m.failures.is_empty(), "{:?}", m.failures);

    svc.set_goroutines(1000);
    let m = measure(&check).await.unwrap();
    assert_eq!(number(&single(&m).cloned()), 1000.0);
    // The profile comes along as evidence; the engine keeps it with results that are not ok.
    let attachment = m.attachment.expect("the profile is attached");
    assert_eq!(attachment.name, "goroutine profile");
    assert_eq!(attachment.content_type, "text/plain");
    assert_eq!(attachment.text, goroutine_profile(1000));
    assert_contains(
        &attachment.text,
        "983 @ 0x43e44e 0x40a6cd 0x40a2f7 0x8b1a6d 0x4739a1\n#\t0x8b1a6c\torders/internal/events.(*Subscriber).forward+0x8c",
    );
    assert_eq!(
        svc.requests(),
        vec!["/goroutine?debug=1", "/goroutine?debug=1"]
    );
}

#[tokio::test]
async fn a_condition_on_the_count_is_judged_like_any_value() {
    let svc = GoService::start().await;
    svc.set_goroutines(12_000);
    let (_rules, check) = pprof_rules(&svc, "crit: gt(10000)");
    let (result, memory) = engine_run(&check, None).await;
    assert_eq!(result.status, Status::Crit, "{}", result.message);
    assert_eq!(number(&result.value), 12_000.0);
    assert_eq!(memory, None, "a check without growth keeps no history");
}

#[tokio::test]
async fn heap_inuse_bytes_is_read_from_the_memstats_block() {
    let svc = GoService::start().await;
    svc.set(|r| r.heap_inuse = 734_003_200);
    let (_rules, check) = pprof_rules(&svc, "value: heap_inuse_bytes");
    let m = measure(&check).await.unwrap();
    assert_eq!(number(&single(&m).cloned()), 734_003_200.0);
    assert_eq!(m.unit, "bytes");
    let attachment = m.attachment.expect("the profile is attached");
    assert_eq!(attachment.name, "heap profile");
    assert_contains(&attachment.text, "\n# runtime.MemStats\n");
    assert_contains(&attachment.text, "\n# HeapInuse = 734003200\n");
    assert_eq!(svc.requests(), vec!["/heap?debug=1"]);
}

#[tokio::test]
async fn a_goroutine_leak_over_five_minutes_fails_with_its_numbers() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(
        &svc,
        "value: goroutines, every: 1m, window: 5m, max_growth_pct: 300",
    );
    svc.set_goroutines(1000);
    let (first, memory) = engine_run(&check, None).await;
    assert_eq!(first.status, Status::Ok, "{}", first.message);
    assert_eq!(number(&first.value), 1000.0);

    // Five minutes pass (the remembered reading is aged, not the test), the service leaks.
    svc.set_goroutines(4120);
    let (second, memory) = engine_run(&check, aged(memory, Duration::from_secs(300))).await;
    assert_eq!(second.status, Status::Crit, "{}", second.message);
    assert_eq!(number(&second.value), 4120.0);
    assert_starts_with(
        &second.message,
        "goroutines up 312 % in 5m (1,000 → 4,120), more than max_growth_pct 300; largest group: \
         4,103 goroutines in orders/internal/events.(*Subscriber).forward \
         (/app/internal/events/subscriber.go:112)",
    );

    // Another five minutes at the same level: no growth within the window.
    let (third, _) = engine_run(&check, aged(memory, Duration::from_secs(300))).await;
    assert_eq!(third.status, Status::Ok, "{}", third.message);
}

#[tokio::test]
async fn heap_growth_is_a_value_with_its_own_thresholds() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(
        &svc,
        "value: heap_growth_pct, window: 10m, warn: gt(50), crit: gt(100)",
    );
    let (first, memory) = engine_run(&check, None).await;
    assert_eq!(first.value, None, "no reading 10m old yet");
    assert_eq!(first.status, Status::Ok);

    svc.set(|r| r.heap_inuse = 4_505_600 * 3 / 2);
    let (second, memory) = engine_run(&check, aged(memory, Duration::from_secs(600))).await;
    assert_eq!(number(&second.value), 50.0);
    assert_eq!(second.unit, "%");
    assert_eq!(second.status, Status::Ok, "50 % is not more than 50");

    // Compared with the reading of ten minutes ago (the 1.5-fold one): three times that.
    svc.set(|r| r.heap_inuse = 4_505_600 * 9 / 2);
    let (third, _) = engine_run(&check, aged(memory, Duration::from_secs(600))).await;
    assert_eq!(number(&third.value), 200.0);
    assert_eq!(third.status, Status::Crit, "{}", third.message);
}

#[tokio::test]
async fn growth_needs_a_reading_a_window_old_in_real_time() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(
        &svc,
        "value: goroutines_growth_pct, window: 2s, crit: gt(200)",
    );
    svc.set_goroutines(1000);
    let started = Instant::now();
    let (first, memory) = engine_run(&check, None).await;
    let first_done = Instant::now();
    assert_eq!((first.value.clone(), first.status), (None, Status::Ok));
    let (second, memory) = engine_run(&check, memory).await;
    assert_eq!(
        second.value,
        None,
        "a reading {:?} old is not a window old",
        started.elapsed()
    );
    assert_eq!(
        History::from_memory(memory.as_ref()).points.len(),
        2,
        "both readings are remembered"
    );

    // The window is about time: there is nothing to wait for but the clock.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(first_done.elapsed())).await;
    svc.set_goroutines(4120);
    let (third, _) = engine_run(&check, memory).await;
    let growth = number(&third.value);
    // The reference is the first reading or the second, both at 1,000.
    assert_eq!(growth, 312.0);
    assert_eq!(third.status, Status::Crit, "{}", third.message);
}

#[tokio::test]
async fn patrol_run_keeps_the_history_in_the_store_between_processes() {
    let svc = GoService::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "checks:\n  - name: leak\n    kind: pprof\n    url: \"{}\"\n    window: 2s\n    max_growth_pct: 300\n",
            svc.url
        ),
    )
    .unwrap();
    let store = format!("sqlite://{}", dir.path().join("patrol.db").display());
    svc.set_goroutines(1000);
    let (code, first) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 0, "{first:#?}");
    assert_eq!(first[0]["value"], 1000.0);

    // The first process read the profile before it exited: two seconds from now the reading
    // is at least a window old.
    tokio::time::sleep(Duration::from_secs(2)).await;
    svc.set_goroutines(4120);
    let (code, second) = common::patrol_run_json(&rules, &store).await;
    assert_eq!(code, 1, "the leak is crit: {second:#?}");
    assert_eq!(second[0]["status"], "crit");
    let message = second[0]["message"].as_str().unwrap();
    assert_starts_with(message, "goroutines up 312 % in ");
    assert_contains(
        message,
        "s (1,000 → 4,120), more than max_growth_pct 300; largest group",
    );
    // The failing result carries the profile, the ok one does not; both the store and the
    // HTML report keep it.
    assert!(first[0].get("attachment").is_none(), "{:#?}", first[0]);
    assert_eq!(second[0]["attachment"]["name"], "goroutine profile");
    assert_starts_with(
        second[0]["attachment"]["text"].as_str().unwrap(),
        "goroutine profile: total 4120",
    );
    let html = patrol_report_html(&rules, &store).await;
    assert_contains(&html, "<section id=\"attachments\">");
    assert_contains(&html, "— goroutine profile</summary>");
    assert_contains(&html, "goroutine profile: total 4120");
}

/// The HTML report of the latest `patrol run` in `store`, regenerated from the store.
async fn patrol_report_html(rules: &std::path::Path, store: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(common::patrol_bin())
            .args([
                "report", "--suite", "cli", "--format", "html", "--output", "-",
            ])
            .args(["--store", store])
            .current_dir(rules.parent().unwrap())
            .env_remove("PATROL_STORE")
            .output(),
    )
    .await
    .expect("patrol report finishes")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_wrong_path_is_a_clear_error() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(&svc, "path: /pprof");
    let result = net_support::run(&check).await;
    assert_eq!(result.status, Status::Error);
    let port = svc.url.rsplit(':').next().unwrap();
    assert_eq!(
        result.message,
        format!(
            "GET 127.0.0.1:{port}/pprof/goroutine?debug=1 answered 404 Not Found; is \
             net/http/pprof served on this port, under this path? (set `path:` when it is not \
             /debug/pprof)"
        )
    );
}

#[tokio::test]
async fn an_answer_that_is_no_profile_is_quoted() {
    let svc = GoService::start().await;
    let (_rules, check) = pprof_rules(&svc, "path: /login/debug/pprof");
    let err = measure(&check).await.unwrap_err();
    assert_contains(
        &err.0,
        "/login/debug/pprof/goroutine?debug=1: not a goroutine profile (debug=1 text); its first \
         line is \"<!DOCTYPE html>\"",
    );
}

#[tokio::test]
async fn the_path_and_the_target_headers_reach_the_service() {
    let svc = GoService::start().await;
    svc.set(|r| r.token = Some("Bearer pprof-t0k3n".into()));
    let yaml = format!(
        "targets:\n  go:\n    kind: http\n    url: \"{}/internal\"\n    headers: {{ Authorization: \"Bearer pprof-t0k3n\" }}\n\
         checks:\n  - {{ name: c, kind: pprof, target: go, path: /debug/pprof/ }}\n  \
         - {{ name: anonymous, kind: pprof, url: \"{}/internal/debug/pprof\", path: \"\" }}\n",
        svc.url, svc.url
    );
    let rules = Rules::new().file("rules.yaml", &yaml);
    let m = measure(&rules.check("c")).await.unwrap();
    assert_eq!(number(&single(&m).cloned()), 17.0);

    let err = measure(&rules.check("anonymous")).await.unwrap_err();
    assert_contains(
        &err.0,
        "/internal/debug/pprof/goroutine?debug=1 answered 401 Unauthorized; the endpoint wants \
         credentials",
    );
    assert!(!err.0.contains("t0k3n"), "{err}");
}

#[tokio::test]
async fn refused_and_slow_endpoints_are_errors_within_the_timeout() {
    let port = closed_port().await;
    let r = run_lone(
        "c",
        &format!("kind: pprof, url: \"http://127.0.0.1:{port}\""),
    )
    .await;
    assert_eq!(r.status, Status::Error);
    assert_starts_with(
        &r.message,
        &format!("GET 127.0.0.1:{port}/debug/pprof/goroutine?debug=1 failed: "),
    );

    let svc = GoService::start().await;
    svc.set(|r| r.delay = Duration::from_secs(5));
    let (_rules, check) = lone_check(
        "c",
        &format!("kind: pprof, url: \"{}\", timeout: 300ms", svc.url),
    );
    let started = Instant::now();
    let err = measure(&check).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_contains(
        &err.0,
        "/debug/pprof/goroutine?debug=1 timed out after 300ms",
    );
}

#[test]
fn mistakes_are_named_at_their_place() {
    let check = |fields: &str| {
        load_error_lines(&format!(
            "checks:\n  - name: c\n    kind: pprof\n    url: \"http://go:6060\"\n{fields}"
        ))
    };
    let text = check("    window: 5m\n");
    assert_contains(
        &text,
        "r.yaml:5:5: `window` applies to growth: set `max_growth_pct` or a value ending in `_growth_pct`",
    );
    let text = check("    max_growth_pct: -5\n");
    assert_contains(
        &text,
        "r.yaml:5:21: max_growth_pct must be a non-negative number of per cent, got -5",
    );
    let text = check("    every: 10m\n    value: goroutines_growth_pct\n    window: 5m\n");
    assert_contains(
        &text,
        "r.yaml:7:13: window 5m is shorter than `every: 10m`: no earlier run falls within it",
    );
    let text = check("    path: \"/debug/pprof?debug=2\"\n");
    assert_contains(
        &text,
        "r.yaml:5:11: path \"/debug/pprof?debug=2\" must be a plain URL path",
    );
    let text = check("    value: goroutine_count\n");
    assert_contains(&text, "r.yaml:5:");
    assert_contains(&text, "goroutine_count");
    assert_contains(&text, "goroutines_growth_pct");
    let text =
        load_error_lines("checks:\n  - name: c\n    kind: pprof\n    address: \"go:6060\"\n");
    assert_contains(&text, "r.yaml:4:");
    assert_contains(
        &text,
        "a pprof check cannot use this address; it needs one of: http",
    );
}

#[tokio::test]
async fn a_binary_answer_says_debug_was_ignored() {
    // A proxy that drops the query string: Go then answers the gzipped protobuf profile.
    let app = Router::new().route(
        "/debug/pprof/heap",
        get(|| async {
            let gzip = vec![0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff];
            ([(header::CONTENT_TYPE, "application/octet-stream")], gzip)
        }),
    );
    let addr = serve_http(app).await;
    let err = net_support::measure_lone(
        "c",
        &format!("kind: pprof, url: \"http://{addr}\", value: heap_inuse_bytes"),
    )
    .await
    .unwrap_err();
    assert_contains(
        &err.0,
        "expected the heap profile as text (debug=1) but got binary data",
    );
}
