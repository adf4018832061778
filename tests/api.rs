//! The daemon's HTTP API end to end: the real router served on 127.0.0.1:0 over a real
//! `DaemonState` (rules from YAML, SQLite store, event bus, metrics), talked to with reqwest.
//! Only the daemon's `Control` is a recording stand-in (see `api_support`), since the daemon
//! that carries out runs and reloads is tested with the daemon binary.

mod common;
#[path = "api_support/mod.rs"]
mod support;

use std::time::Duration;

use chrono::{Duration as Span, Utc};
use patrol::api::exposition::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, parse_samples};
use patrol::config::{Diagnostic, Loc};
use patrol::daemon::state::{ReloadFailure, RunRequest};
use patrol::result::Status;
use patrol::store::ScoreRecord;
use serde_json::json;
use support::{
    Frame, Harness, SseReader, event_ids, frame_ids, open_stream, promtool_accepts, read_events,
    result,
};

use support::WAIT;

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let h = Harness::start(None).await;
    assert_eq!(h.get("/healthz").await, (200, json!({"status": "ok"})));
    assert_eq!(h.get("/readyz").await, (200, json!({"status": "ready"})));
    h.state.set_ready(false);
    let (status, body) = h.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        body["error"].as_str().unwrap().contains("not ready"),
        "{body}"
    );
    let (status, body) = h.get("/api/v1/nothing").await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    let r = h.http.delete(h.url("/api/v1/checks")).send().await.unwrap();
    let (status, body) = support::json_of(r).await;
    assert_eq!((status, body["error"].is_string()), (405, true));
}

#[tokio::test]
async fn checks_show_config_state_and_latest_run() {
    let h = Harness::start(None).await;
    let t = Utc::now() - Span::minutes(5);
    h.save_run("r1", t, vec![result("api-up", "", t, Status::Ok, 10.0)])
        .await;
    let later = t + Span::minutes(1);
    let latest = vec![
        result("api-up", "", later, Status::Crit, 900.0),
        result("db-port", "", later, Status::Ok, 1.0),
    ];
    h.save_run("r2", later, latest).await;

    let (status, body) = h.get("/api/v1/checks").await;
    assert_eq!(status, 200);
    let checks = body["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api-up", "db-port"]);
    let api = &checks[0];
    assert_eq!(api["kind"], "http");
    assert_eq!(api["service"], "orders");
    assert_eq!(api["labels"], json!({"tier": "core"}));
    assert_eq!(api["every"], "30s");
    assert_eq!(api["jitter"], "5s");
    assert_eq!(api["mode"], "enforce");
    assert_eq!(api["state"]["status"], "crit");
    let latest = api["latest"].as_array().unwrap();
    assert_eq!(
        latest.len(),
        1,
        "only the latest run, only this check: {latest:?}"
    );
    assert_eq!(
        (latest[0]["run_id"].as_str(), latest[0]["value"].as_f64()),
        (Some("r2"), Some(900.0))
    );
    let db = &checks[1];
    assert_eq!(
        (db["schedule"].as_str(), db["timezone"].as_str()),
        (Some("0 2 * * *"), Some("Europe/Berlin"))
    );
    assert_eq!(db["mode"], "shadow");

    let (status, one) = h.get("/api/v1/checks/api-up").await;
    assert_eq!((status, &one), (200, api));
    let (status, body) = h.get("/api/v1/checks/nope").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn a_check_that_never_ran_has_no_state_and_no_results() {
    let h = Harness::start(None).await;
    let (status, body) = h.get("/api/v1/checks/db-port").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["state"], &body["latest"]),
        (&json!(null), &json!([]))
    );
}

#[tokio::test]
async fn results_filter_by_check_time_run_and_limit() {
    let h = Harness::start(None).await;
    let t0 = Utc::now() - Span::hours(3);
    for (i, run) in ["a", "b", "c"].iter().enumerate() {
        let at = t0 + Span::hours(i as i64);
        let rs = vec![
            result("api-up", "", at, Status::Ok, i as f64),
            result("db-port", "", at, Status::Warn, i as f64),
        ];
        h.save_run(run, at, rs).await;
    }
    let runs_of = |body: &serde_json::Value| -> Vec<(String, String)> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["check"].as_str().unwrap().into(),
                    r["run_id"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let (_, all) = h.get("/api/v1/results").await;
    assert_eq!(runs_of(&all).len(), 6);
    let (_, api) = h.get("/api/v1/results?check=api-up").await;
    let api_runs: Vec<String> = runs_of(&api).into_iter().map(|(_, r)| r).collect();
    assert_eq!(api_runs, ["c", "b", "a"], "newest first");
    let (_, recent) = h.get("/api/v1/results?check=api-up&since=90m").await;
    assert_eq!(runs_of(&recent).len(), 1);
    let since = (t0 + Span::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, since_abs) = h
        .get(&format!("/api/v1/results?since={since}&limit=3"))
        .await;
    assert_eq!(runs_of(&since_abs).len(), 3);
    let (_, of_run) = h.get("/api/v1/results?run=b").await;
    let expected = [
        ("api-up".to_string(), "b".to_string()),
        ("db-port".into(), "b".into()),
    ];
    assert_eq!(runs_of(&of_run), expected);
    let (_, of_run_check) = h.get("/api/v1/results?run=b&check=db-port").await;
    assert_eq!(runs_of(&of_run_check), expected[1..]);

    for bad in [
        "limit=0",
        "limit=abc",
        "since=yesterday",
        "colour=red",
        "limit=100000",
    ] {
        let (status, body) = h.get(&format!("/api/v1/results?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn scores_are_live_or_stored_and_have_a_history() {
    let h = Harness::start(None).await;
    assert_eq!(h.get("/api/v1/scores").await, (200, json!({"scores": []})));
    let stored = |score: f64, minutes_ago: i64| ScoreRecord {
        service: "orders".into(),
        at: Utc::now() - Span::minutes(minutes_ago),
        score,
        model: "penalty".into(),
        details: json!({"terms": []}),
    };
    h.state
        .store
        .save_scores(&[stored(60.0, 10), stored(80.0, 5)])
        .await
        .unwrap();
    let (_, body) = h.get("/api/v1/scores").await;
    assert_eq!(
        body["scores"][0]["score"], 80.0,
        "the newest stored score before any evaluation"
    );

    let live = patrol::score::evaluate(&h.state.rules.load(), &Default::default(), Utc::now());
    *h.state.scores.write().await = live.clone();
    let (_, body) = h.get("/api/v1/scores").await;
    let services: Vec<&str> = body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = live.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, expected);

    let (_, history) = h.get("/api/v1/scores?service=orders&limit=5").await;
    let scores: Vec<f64> = history["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, [80.0, 60.0]);
    let (_, recent) = h.get("/api/v1/scores?service=orders&since=7m").await;
    assert_eq!(recent["scores"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn status_shows_revision_counts_and_the_last_reload_error() {
    let h = Harness::start(None).await;
    let (status, body) = h.get("/api/v1/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["revision"], h.state.rules.load().revision.to_string());
    assert_eq!(body["ready"], true);
    assert_eq!(body["store"], "sqlite");
    let counts = &body["counts"];
    assert_eq!(
        (
            counts["checks"].as_u64(),
            counts["scheduled_checks"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(
        (counts["shadow_checks"].as_u64(), counts["suites"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(body["last_reload_error"], json!(null));

    h.state.status.write().await.last_reload_error = Some(ReloadFailure {
        at: Utc::now(),
        problems: vec![problem()],
    });
    let (_, body) = h.get("/api/v1/status").await;
    let p = &body["last_reload_error"]["problems"][0];
    assert_eq!(
        (p["line"].as_u64(), p["column"].as_u64()),
        (Some(3), Some(7))
    );
}

fn problem() -> Diagnostic {
    Diagnostic::new(
        "rules/checks.yaml",
        Loc { line: 3, col: 7 },
        "unknown field `evry`",
    )
}

#[tokio::test]
async fn runs_start_through_the_control_and_show_once_stored() {
    let h = Harness::start(None).await;
    let r = h
        .http
        .post(h.url("/api/v1/runs"))
        .json(&json!({"checks": ["api-up"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/api/v1/runs/run-1");
    let (status, body) = support::json_of(r).await;
    assert_eq!((status, body["run_id"].as_str()), (202, Some("run-1")));
    let (status, _) = h
        .post("/api/v1/runs", json!({"suite": "nightly"}), None)
        .await;
    assert_eq!(status, 202);
    let asked = h.control.runs.lock().unwrap().clone();
    let expected = [
        RunRequest {
            checks: vec!["api-up".into()],
            suite: None,
        },
        RunRequest {
            checks: vec![],
            suite: Some("nightly".into()),
        },
    ];
    assert_eq!(asked, expected);

    let (status, body) = h.get("/api/v1/runs/run-1").await;
    assert_eq!(status, 404, "not stored yet: {body}");
    let t = Utc::now();
    h.save_run("run-1", t, vec![result("api-up", "", t, Status::Ok, 3.0)])
        .await;
    let (status, body) = h.get("/api/v1/runs/run-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["run"]["id"], "run-1");
    assert_eq!(body["results"][0]["check"], "api-up");
    let (_, by_query) = h.get("/api/v1/results?run=run-1").await;
    assert_eq!(by_query["results"], body["results"]);
}

#[tokio::test]
async fn bad_run_requests_are_400_with_a_reason() {
    let h = Harness::start(None).await;
    let (status, body) = h
        .post("/api/v1/runs", json!({"checks": ["nope"]}), None)
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    let (status, body) = h
        .post("/api/v1/runs", json!({"check": "api-up"}), None)
        .await;
    assert_eq!(status, 400, "unknown field: {body}");
    let r = h
        .http
        .post(h.url("/api/v1/runs"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = support::json_of(r).await;
    assert_eq!((status, body["error"].is_string()), (400, true));
    assert!(h.control.runs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn reload_answers_200_when_applied_and_422_with_problems_when_refused() {
    let h = Harness::start(None).await;
    let (status, body) = h.post("/api/v1/reload", json!({}), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["applied"].as_bool(), body["revision"].as_str()),
        (Some(true), Some("rev-2"))
    );
    h.control.refuse_reloads(vec![problem()]);
    let (status, body) = h.post("/api/v1/reload", json!({}), None).await;
    assert_eq!(status, 422);
    assert_eq!(body["applied"], false);
    assert!(
        body["error"].as_str().unwrap().contains("1 problem"),
        "{body}"
    );
    assert_eq!(body["problems"][0]["message"], "unknown field `evry`");
    assert_eq!(*h.control.reloads.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_token_guards_the_mutating_endpoints_only() {
    let h = Harness::start(Some("s3cret-token")).await;
    for path in ["/api/v1/runs", "/api/v1/reload"] {
        let body = json!({"checks": ["api-up"]});
        let r = h.http.post(h.url(path)).json(&body).send().await.unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let (status, err) = support::json_of(r).await;
        assert_eq!(
            (status, err["error"].is_string()),
            (401, true),
            "{path} without a token"
        );
        let (status, _) = h.post(path, body.clone(), Some("wrong")).await;
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, _) = h.post(path, body, Some("s3cret-token")).await;
        assert!(
            status == 202 || status == 200,
            "{path} with the token: {status}"
        );
    }
    assert_eq!(h.control.runs.lock().unwrap().len(), 1);
    assert_eq!(*h.control.reloads.lock().unwrap(), 1);
    assert_eq!(
        h.get("/api/v1/status").await.0,
        200,
        "reading needs no token"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_or_openmetrics_on_request() {
    let h = Harness::start(None).await;
    let t = Utc::now();
    h.state
        .metrics
        .observe_result(&result("api-up", "", t, Status::Crit, 900.0));
    h.state.metrics.observe_lateness(0.02);
    h.state.metrics.set_score("orders", 75.0);
    h.state.metrics.set_revision("rev-1");
    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], PROMETHEUS_CONTENT_TYPE);
    let text = r.text().await.unwrap();
    let samples = parse_samples(&text).unwrap();
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.name == name && s.has_labels(labels))
            .map(|s| s.value)
    };
    let series = [("check", "api-up"), ("service", "orders"), ("series", "")];
    assert_eq!(find("patrol_check_status", &series), Some(2.0));
    assert_eq!(find("patrol_check_value", &series), Some(900.0));
    assert_eq!(
        find(
            "patrol_runs_total",
            &[("check", "api-up"), ("status", "crit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        find("patrol_health_score", &[("service", "orders")]),
        Some(75.0)
    );
    assert_eq!(
        find("patrol_config_revision_info", &[("revision", "rev-1")]),
        Some(1.0)
    );
    assert_eq!(
        find("patrol_schedule_lateness_seconds_count", &[]),
        Some(1.0)
    );
    promtool_accepts(&text);

    let r = h
        .http
        .get(h.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], OPENMETRICS_CONTENT_TYPE);
    let om = r.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(parse_samples(&om).unwrap(), samples);
}

#[tokio::test]
async fn events_resume_after_a_disconnect_with_nothing_missed_or_repeated() {
    let h = Harness::start(None).await;
    let mut first = open_stream(&h, None).await;
    let before = h.publish(3, "before").await;
    let got = read_events(&mut first, 3).await;
    assert_eq!(frame_ids(&got), event_ids(&before));
    assert_eq!((got[0].1.as_str(), got[1].1.as_str()), ("result", "score"));
    assert_eq!(got[0].2["data"], json!({"tag": "before", "i": 0}));
    assert_eq!(got[0].2["id"], before[0].id);
    let last_seen = got[2].0;
    drop(first);

    let missed = h.publish(4, "missed").await;
    let mut second = open_stream(&h, Some(last_seen)).await;
    let live = h.publish(2, "live").await;
    let got = read_events(&mut second, 6).await;
    let expected = [event_ids(&missed), event_ids(&live)].concat();
    assert_eq!(frame_ids(&got), expected);
    assert_eq!(
        second.next_event(Duration::from_millis(300)).await,
        None,
        "nothing repeated"
    );

    // The query parameter works like the header (for clients that cannot set headers).
    let r = h
        .http
        .get(h.url(&format!("/api/v1/events?last_event_id={}", missed[2].id)))
        .send()
        .await
        .unwrap();
    let mut third = SseReader::new(r);
    let got = read_events(&mut third, 3).await;
    assert_eq!(frame_ids(&got), expected[3..]);
}

#[tokio::test]
async fn a_long_backlog_is_sent_page_by_page_in_order() {
    let h = Harness::start(None).await;
    let stored = h.publish(1234, "old").await;
    let mut s = open_stream(&h, Some(0)).await;
    let got = read_events(&mut s, stored.len()).await;
    assert_eq!(frame_ids(&got), event_ids(&stored));
    let live = h.publish(1, "new").await;
    assert_eq!(s.next_event(WAIT).await.unwrap().0, live[0].id);
}

#[tokio::test]
async fn a_bad_last_event_id_is_400() {
    let h = Harness::start(None).await;
    let r = h
        .http
        .get(h.url("/api/v1/events"))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    let (status, body) = support::json_of(r).await;
    assert_eq!((status, body["error"].is_string()), (400, true));
}

#[tokio::test]
async fn idle_streams_send_heartbeats_and_end_on_shutdown() {
    let h = Harness::start_with(None, Duration::from_millis(100)).await;
    let mut s = open_stream(&h, None).await;
    assert_eq!(s.next(WAIT).await, Some(Frame::Comment("heartbeat".into())));
    assert_eq!(s.next(WAIT).await, Some(Frame::Comment("heartbeat".into())));
    h.shutdown.cancel();
    assert!(
        s.ends_within(WAIT).await,
        "the stream ends when the server shuts down"
    );
    let served = tokio::time::timeout(WAIT, h.server).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "the server stops gracefully: {served:?}"
    );
}
