//! The status page at `/` of a real `patrol daemon`: served as plain HTTP (HTML without external
//! assets, script and stylesheet with their types and entity tags), then loaded in a headless
//! Chromium through chromedriver. The browser test watches a check turn `ok`, takes a screenshot
//! (kept as target/status-page.png for a person to look at), breaks the service the check
//! measures and sees the row turn bad, the alert appear (an `alert` event), a new silence mark
//! it silenced (a `silence` event) and a refused reload show its `file:line:col`, all without
//! the page reloading.

#[path = "daemon_support/mod.rs"]
mod support;
#[path = "webdriver_support/mod.rs"]
mod webdriver;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use support::{DaemonProcess, WAIT};
use webdriver::{Chromedriver, Session, chromium_args, png_dimensions};

/// The service the checks measure: `/health` answers the status in the atomic, `/latency` a
/// number that wanders a little (so the trend and its band have a shape), `/hook` takes the
/// alert notifications.
async fn service(health: Arc<AtomicU16>) -> u16 {
    let calls = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/health",
            axum::routing::get(move || {
                let code = health.load(Ordering::SeqCst);
                async move { axum::http::StatusCode::from_u16(code).unwrap() }
            }),
        )
        .route(
            "/latency",
            axum::routing::get(move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) as f64;
                let ms = 120.0 + 6.0 * (n * 0.5).sin() + 2.0 * (n * 2.3).cos();
                async move { axum::Json(json!({ "ms": ms })) }
            }),
        )
        .route("/hook", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn rules(port: u16) -> String {
    format!(
        r#"
receivers:
  ops: {{kind: webhook, url: "http://127.0.0.1:{port}/hook"}}
services:
  shop: {{model: penalty}}
checks:
  - name: shop-health
    kind: http
    url: "http://127.0.0.1:{port}/health"
    every: 1s
    service: shop
    notify: [ops]
    description: "The shop answers <b>&amp; is healthy</b>"
    alert: {{failure_threshold: 2, success_threshold: 1, flap: {{window: 0s}}}}
  - name: shop-latency
    kind: http
    url: "http://127.0.0.1:{port}/latency"
    value: "json:$.ms"
    every: 1s
    service: shop
    baseline: {{method: ewma, alpha: 0.2, k: 4, warmup: 3}}
"#
    )
}

async fn start_daemon() -> (DaemonProcess, Arc<AtomicU16>) {
    let health = Arc::new(AtomicU16::new(200));
    let port = service(health.clone()).await;
    let d = DaemonProcess::start(&[("r.yaml", &rules(port))], &[]).await;
    (d, health)
}

/// Every `src="…"` and `href="…"` in `html`.
fn references(html: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?i)\b(?:src|href)\s*=\s*["']?([^"'\s>]*)"#).unwrap();
    re.captures_iter(html).map(|c| c[1].to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let (d, _health) = start_daemon().await;
    let page = d.http.get(d.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let content_type = page.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<table"), "{html}");
    let refs = references(&html);
    assert!(refs.contains(&"/ui/app.js".to_string()), "{refs:?}");
    assert!(refs.contains(&"/ui/style.css".to_string()), "{refs:?}");
    for r in &refs {
        assert!(
            r.starts_with('/') && !r.starts_with("//") || r.starts_with("data:"),
            "external reference {r:?} in the page"
        );
    }

    for (path, media) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let response = d.http.get(d.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(media), "{path}: {content_type}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        let etag = headers["etag"].to_str().unwrap().to_string();
        let body = response.text().await.unwrap();
        assert!(body.len() > 500, "{path} is {} bytes", body.len());
        let again = d
            .http
            .get(d.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates with its ETag");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    }
    let script = d.http.get(d.url("/ui/app.js")).send().await.unwrap();
    let script = script.text().await.unwrap();
    assert!(script.contains("EventSource('/api/v1/events')"));
    for sink in [
        ".innerHTML",
        ".outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(
            !script.contains(sink),
            "data enters the page as text only: {sink}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_give_every_check_its_recent_points_with_the_band() {
    let (d, _health) = start_daemon().await;
    d.wait_until("five latency results", |d| async move {
        let s = d.get_json("/api/v1/series?check=shop-latency").await;
        s["series"][0]["points"]
            .as_array()
            .is_some_and(|p| p.len() >= 5)
    })
    .await;
    let all = d.get_json("/api/v1/series?limit=4").await;
    let series = all["series"].as_array().unwrap();
    let latency = series
        .iter()
        .find(|s| s["check"] == "shop-latency")
        .unwrap_or_else(|| panic!("{all}"));
    assert!(latency["unit"].is_string(), "{latency}");
    let points = latency["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "limited per series");
    let times: Vec<&str> = points.iter().map(|p| p["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    let last = &points[3];
    assert!(last["value"].as_f64().is_some(), "{last}");
    assert!(last["lower"].as_f64().unwrap() < last["upper"].as_f64().unwrap());
    assert!(series.iter().any(|s| s["check"] == "shop-health"), "{all}");

    let bad = d
        .http
        .get(d.url("/api/v1/series?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = d
        .http
        .get(d.url("/api/v1/series?check=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// The status text of a check's row, or null while it is not shown.
fn row_status(check: &str) -> String {
    format!(
        "const row = document.querySelector('#checks-body tr[data-check=\"{check}\"]');
         return row ? row.querySelector('td.status .badge').textContent : null;"
    )
}

/// Where screenshots are kept for people: `target/` of this build.
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_patrol"));
    exe.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// Saves a screenshot in the test's directory and under target/, after checking it is a PNG
/// of the window's size.
async fn keep_screenshot(session: &Session, dir: &std::path::Path, name: &str) {
    let png = session.screenshot().await;
    let (width, height) = png_dimensions(&png).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        (800..=4000).contains(&width) && (600..=4000).contains(&height),
        "{name} is {width}x{height}"
    );
    std::fs::write(dir.join(name), &png).unwrap();
    std::fs::write(target_dir().join(name), &png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_check_going_bad_in_headless_chromium() {
    webdriver::require_browser();
    let (d, health) = start_daemon().await;
    // A silence the page lists (it matches nothing here).
    let silence = d
        .http
        .post(d.url("/api/v1/silences"))
        .json(&json!({
            "matchers": ["alertname=\"nightly-backup\""],
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(),
            "created_by": "ana",
            "comment": "backup host <migrating>",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(silence.status(), 201);

    let scratch = tempfile::tempdir().unwrap();
    let driver = Chromedriver::start(scratch.path()).await;
    let profile = scratch.path().join("profile");
    let session = Session::new(&driver, chromium_args(&profile, 1400, 1000)).await;
    session.navigate(&d.url("/")).await;

    let wait = WAIT + Duration::from_secs(10);
    session
        .wait_for(
            "the health check to show ok",
            wait,
            &format!(
                "return ({})() === 'ok';",
                as_function(&row_status("shop-health"))
            ),
        )
        .await;
    session
        .wait_for(
            "a latency trend with its band",
            wait,
            "return document.querySelectorAll('tr[data-check=\"shop-latency\"] svg .spark-band').length > 0
                && document.querySelectorAll('tr[data-check=\"shop-latency\"] svg .spark-line').length > 0;",
        )
        .await;
    session
        .wait_for(
            "the service score and the silence",
            wait,
            "return document.querySelector('#services-body tr[data-service=\"shop\"] .score-number')?.textContent === '100'
                && document.querySelectorAll('#silences-body tr').length === 1
                && document.getElementById('connection').textContent === 'live';",
        )
        .await;
    let page = session
        .execute(
            "window.__statusPageTestMarker = 'still here';
             return {
               revision: document.getElementById('revision').textContent,
               description: document.querySelector('tr[data-check=\"shop-health\"] th').title,
               comment: document.querySelector('#silences-body .message').textContent,
               bold: document.querySelectorAll('#checks-body b, #silences-body migrating').length,
               loadedAt: window.patrolStatusPage.loadedAt,
               navigations: performance.getEntriesByType('navigation').length,
             };",
            json!([]),
        )
        .await;
    let status = d.get_json("/api/v1/status").await;
    let revision = status["revision"].as_str().unwrap();
    assert!(
        revision.starts_with(page["revision"].as_str().unwrap()),
        "{page}"
    );
    assert_eq!(
        page["description"], "The shop answers <b>&amp; is healthy</b>",
        "text stays text"
    );
    assert_eq!(page["comment"], "backup host <migrating>");
    assert_eq!(page["bold"], 0, "no markup from the data: {page}");
    assert_eq!(page["navigations"], 1);
    keep_screenshot(&session, scratch.path(), "status-page.png").await;

    // The service breaks, and a rules file with a mistake arrives.
    health.store(503, Ordering::SeqCst);
    std::fs::write(
        d.rules_dir().join("broken.yaml"),
        "checks:\n  - name: half\n    kind: http\n    every: soon\n",
    )
    .unwrap();
    let bad = session
        .wait_for(
            "the health check to turn bad",
            wait,
            &format!(
                "const s = ({})(); return s === 'crit' || s === 'error' ? s : null;",
                as_function(&row_status("shop-health"))
            ),
        )
        .await;
    let firing = session
        .wait_for(
            "the alert to appear",
            wait,
            "const row = document.querySelector('#alerts-body tr[data-alert=\"shop-health\"]');
             return row && row.dataset.phase === 'firing' ? row.textContent : null;",
        )
        .await;
    assert!(firing.as_str().unwrap().contains("shop"), "{firing}");
    // A silence made over the API arrives as a `silence` event: the page shows it and marks
    // the alert silenced well before its 30 s fallback refresh.
    let made = d
        .http
        .post(d.url("/api/v1/silences"))
        .json(&json!({
            "matchers": ["alertname=\"shop-health\""],
            "ends_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "created_by": "ana",
            "comment": "shop under repair",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    session
        .wait_for(
            "the new silence and the silenced alert",
            Duration::from_secs(10),
            "return document.querySelectorAll('#silences-body tr').length === 2
                && document.querySelector('#alerts-body tr[data-alert=\"shop-health\"] .phase-silenced') !== null;",
        )
        .await;
    let problem = session
        .wait_for(
            "the refused reload",
            wait,
            "const box = document.getElementById('reload-error');
             return box.hidden ? null : box.querySelector('.where')?.textContent;",
        )
        .await;
    let problem = problem.as_str().unwrap();
    assert!(
        problem.contains("broken.yaml:4:"),
        "file:line:col of the problem: {problem}"
    );
    session
        .wait_for(
            "the service's score to drop",
            wait,
            "const s = document.querySelector('#services-body tr[data-service=\"shop\"] .score-number');
             return s && Number(s.textContent) < 100 ? s.textContent : null;",
        )
        .await;
    keep_screenshot(&session, scratch.path(), "status-page-failing.png").await;

    let after = session
        .execute(
            "return {
               marker: window.__statusPageTestMarker,
               loadedAt: window.patrolStatusPage.loadedAt,
               events: window.patrolStatusPage.events,
               navigations: performance.getEntriesByType('navigation').length,
               loadError: document.getElementById('load-error').hidden,
             };",
            json!([]),
        )
        .await;
    assert_eq!(
        after["marker"], "still here",
        "the page never reloaded: {after}"
    );
    assert_eq!(after["loadedAt"], page["loadedAt"], "{after}");
    assert_eq!(after["navigations"], 1);
    assert!(after["events"].as_u64().unwrap() > 0, "{after}");
    assert_eq!(after["loadError"], true, "every endpoint answered");
    let severe: Vec<_> = session
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    eprintln!(
        "the row turned {bad}; screenshots in {}",
        target_dir().display()
    );
    drop(session);
    drop(driver);
}

/// `body` (a script with `return`) as a function expression, to call inside another script.
fn as_function(body: &str) -> String {
    format!("function () {{ {body} }}")
}

#[test]
fn references_are_found_in_any_quoting() {
    let html = r#"<script src="/a.js"></script><link href='/b.css'><a href=https://x.example/>"#;
    assert_eq!(references(html), ["/a.js", "/b.css", "https://x.example/"]);
}
