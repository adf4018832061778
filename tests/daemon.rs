//! `patrol daemon` as users run it: the built binary as a process on loopback, real HTTP targets,
//! a real SQLite store. Covers scheduling of many checks, /metrics (checked with `promtool`), hot
//! reload (applied / refused), the event stream resumed with Last-Event-ID, catch-up of a missed
//! cron run, and SIGTERM draining in-flight work.

mod common;
#[path = "daemon_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::sse::SseReader;
use patrol::store::Store;
use support::{
    DaemonProcess, WAIT, checks_yaml, daemon_command, http_check, ok_runs, sample, target_server,
};

fn fifty_checks(port: u16) -> String {
    let mut y = format!(
        "targets:\n  web: {{kind: http, url: \"http://127.0.0.1:{port}\"}}\ndefaults: {{every: 1s, service: web}}\nchecks:\n"
    );
    for i in 0..50 {
        y.push_str(&format!("  - {{name: c{i:02}, kind: http, target: web, request: {{path: /ok}}, expect: {{status: 200}}}}\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_checks_every_second_run_and_are_exported() {
    let (port, served) = target_server().await;
    let d = DaemonProcess::start(&[("web.yaml", &fifty_checks(port))], &[]).await;
    d.wait_until("every check ran three times", |d| async move {
        let m = d.metrics().await;
        (0..50).all(|i| ok_runs(&m, &format!("c{i:02}")).is_some_and(|n| n >= 3.0))
    })
    .await;
    let m = d.metrics().await;
    common::sse::promtool_accepts(&m);
    for i in 0..50 {
        assert_eq!(
            sample(
                &m,
                &format!("patrol_check_status{{check=\"c{i:02}\",service=\"web\",series=\"\"}}")
            ),
            Some(0.0),
            "c{i:02}"
        );
    }
    d.wait_until("a score", |d| async move {
        sample(&d.metrics().await, "patrol_health_score{service=\"web\"}") == Some(100.0)
    })
    .await;
    let lateness = sample(&m, "patrol_schedule_lateness_seconds_count").unwrap_or(0.0);
    assert!(
        lateness >= 150.0,
        "lateness observed for every run: {lateness}"
    );
    assert!(served.fast.load(Ordering::SeqCst) >= 150);
    let revision = d.get_json("/api/v1/status").await["revision"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sample(
            &m,
            &format!("patrol_config_revision_info{{revision=\"{revision}\"}}")
        ),
        Some(1.0)
    );
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_rules_and_keeps_the_old_revision_on_invalid_ones() {
    let (port, _) = target_server().await;
    let first = http_check("first", port, "/ok", "every: 1s");
    let d = DaemonProcess::with_checks(std::slice::from_ref(&first), &[]).await;
    let before = d.get_json("/api/v1/status").await["revision"].clone();

    let two = checks_yaml(&[first, http_check("second", port, "/ok", "every: 1s")]);
    std::fs::write(d.rules_dir().join("r.yaml"), &two).unwrap();
    d.wait_until("the new revision (file watch)", |d| async move {
        d.get_json("/api/v1/checks/second").await["name"] == "second"
    })
    .await;
    let applied = d.get_json("/api/v1/status").await;
    assert_ne!(applied["revision"], before);
    d.wait_until("the new check runs", |d| async move {
        ok_runs(&d.metrics().await, "second").is_some()
    })
    .await;

    std::fs::write(
        d.rules_dir().join("r.yaml"),
        format!("{two}  - {{name: broken, kind: http, url: x, crit: gt(\n"),
    )
    .unwrap();
    d.wait_until("the refused reload (file watch)", |d| async move {
        !d.get_json("/api/v1/status").await["last_reload_error"].is_null()
    })
    .await;
    let status = d.get_json("/api/v1/status").await;
    assert_eq!(
        status["revision"], applied["revision"],
        "the old revision keeps running"
    );
    let problem = &status["last_reload_error"]["problems"][0];
    assert!(
        problem["file"].as_str().unwrap().ends_with("r.yaml") && problem["line"] == 4,
        "{status}"
    );
    assert_eq!(
        sample(&d.metrics().await, "patrol_config_reload_failures_total"),
        Some(1.0)
    );
    let runs = |m: &str| ok_runs(m, "second").unwrap();
    let n = runs(&d.metrics().await);
    d.wait_until("checks still running on the old revision", |d| async move {
        runs(&d.metrics().await) > n
    })
    .await;

    // Saving the same broken content again (an editor's second write, a `git checkout` that
    // touches files) is no new attempt: it is counted as unchanged, not as another refusal.
    let unchanged = |m: &str| sample(m, "patrol_config_reload_unchanged_total").unwrap_or(0.0);
    let skipped_before = unchanged(&d.metrics().await);
    let broken = std::fs::read(d.rules_dir().join("r.yaml")).unwrap();
    std::fs::write(d.rules_dir().join("r.yaml"), &broken).unwrap();
    d.wait_until("the unchanged notice", |d| async move {
        unchanged(&d.metrics().await) > skipped_before
    })
    .await;
    assert_eq!(
        sample(&d.metrics().await, "patrol_config_reload_failures_total"),
        Some(1.0)
    );

    let r = d.http.post(d.url("/api/v1/reload")).send().await.unwrap();
    assert_eq!(
        r.status(),
        422,
        "an explicit reload of invalid rules is refused"
    );
    let (code, stderr) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("r.yaml:4:"),
        "the problem is logged with its position:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_resumes_with_nothing_missed_and_nothing_repeated() {
    let (port, _) = target_server().await;
    let checks = [
        http_check("a", port, "/ok", "every: 1s"),
        format!("{{name: b, kind: tcp, address: \"127.0.0.1:{port}\", every: 1s}}"),
    ];
    let d = DaemonProcess::with_checks(&checks, &[]).await;
    let open = |last: Option<i64>| {
        let mut req = d.http.get(d.url("/api/v1/events"));
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        req.send()
    };
    let mut first = SseReader::new(open(None).await.unwrap());
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(first.next_event(WAIT).await.expect("live events").0);
    }
    drop(first);
    // Events keep coming while no one listens.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let last = *seen.last().unwrap();
    let mut resumed = SseReader::new(open(Some(last)).await.unwrap());
    let mut after = Vec::new();
    while after.len() < 8 {
        after.push(
            resumed
                .next_event(WAIT)
                .await
                .expect("backlog and live events")
                .0,
        );
    }
    let stored: Vec<i64> = Store::open(&d.store_url())
        .await
        .unwrap()
        .events_after(last, 8)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        after, stored,
        "exactly the stored events after {last}, in order"
    );
    assert!(
        after.windows(2).all(|w| w[0] < w[1]) && after[0] > last,
        "nothing repeated: {seen:?} then {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_checks_finish_and_stores_them() {
    let (port, served) = target_server().await;
    let slow = http_check("slow", port, "/slow", "every: 1s, timeout: 10s");
    let d = DaemonProcess::with_checks(&[slow], &["--grace", "10s"]).await;
    let started = std::time::Instant::now();
    while served.slow_started.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < WAIT, "the slow check never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, stderr) = d.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("letting in-flight checks finish"),
        "{stderr}"
    );
    let finished = served.slow_finished.load(Ordering::SeqCst);
    assert!(finished >= 1, "the in-flight request completed");
    let store = Store::open(&d.store_url()).await.unwrap();
    let results = store.query_results(Some("slow"), None, 100).await.unwrap();
    assert_eq!(
        results.len(),
        finished,
        "every completed run was stored before the exit"
    );
    assert!(
        results
            .iter()
            .all(|r| r.status == patrol::result::Status::Ok && r.duration_ms >= 1900.0),
        "{results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_run_missed_while_down_is_caught_up_once() {
    let (port, served) = target_server().await;
    // 00:00 on January 1st: always in the past, and within a 10-year catch-up window.
    let yearly = http_check(
        "yearly",
        port,
        "/ok",
        "schedule: \"0 0 1 1 *\", catch_up: 87600h",
    );
    let d = DaemonProcess::with_checks(&[yearly], &[]).await;
    d.wait_until("the caught-up run", |d| async move {
        ok_runs(&d.metrics().await, "yearly") == Some(1.0)
    })
    .await;
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
    let dir = std::mem::replace(&mut { d }.dir, tempfile::tempdir().unwrap());
    let again = DaemonProcess::start_in(dir, &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        ok_runs(&again.metrics().await, "yearly"),
        None,
        "already caught up: no second run"
    );
    assert_eq!(served.fast.load(Ordering::SeqCst), 1);
}

#[test]
fn a_non_loopback_listen_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let out = daemon_command(dir.path(), "0.0.0.0:0").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without --api-token"));
}
