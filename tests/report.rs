//! Run reports end to end (issue 8 §1), with the real binary, a real HTTP service on loopback
//! whose answers change between runs, and a real SQLite store:
//!
//! - `patrol run --suite nightly --report-dir D`: a few runs teach a baseline, then the service
//!   changes so the last run has a new failure, a recovered check and a value outside its band;
//!   its JSON is read back against the documented shape, its JUnit XML checked well-formed and
//!   counted, its HTML has one band chart per failing or anomalous check and no external asset,
//!   its Markdown fits a chat message;
//! - `patrol report --run ID` regenerates the same JSON (only `generated_at` differs);
//! - the daemon: a suite run started through the API writes the files and the suite's webhook
//!   receiver gets the Markdown summary through the outbox;
//! - a suite notifying an unknown receiver is refused with file:line:col;
//! - a drill writes an HTML report with its timeline next to its JSON and Markdown.

mod common;
#[path = "daemon_support/mod.rs"]
mod daemon_support;
mod drill_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Longest one `patrol` command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The service the checks measure. In phase 0 `/will-fail` answers 200, `/will-recover` 503 and
/// `/gauge` `{"v": 10}`; in phase 1 the first two swap and the gauge reads 1000.
async fn changing_service(phase: Arc<AtomicU32>) -> u16 {
    let (a, b, c) = (phase.clone(), phase.clone(), phase);
    let code = |ok_in_phase: u32, p: &AtomicU32| {
        if p.load(Ordering::SeqCst) == ok_in_phase {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let app = axum::Router::new()
        .route(
            "/will-fail",
            axum::routing::get(move || {
                let status = code(0, &a);
                async move { status }
            }),
        )
        .route(
            "/will-recover",
            axum::routing::get(move || {
                let status = code(1, &b);
                async move { status }
            }),
        )
        .route(
            "/gauge",
            axum::routing::get(move || {
                let v = if c.load(Ordering::SeqCst) == 0 {
                    10
                } else {
                    1000
                };
                async move { axum::Json(serde_json::json!({ "v": v })) }
            }),
        )
        .route("/steady", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

fn rules(port: u16, suite_extra: &str) -> String {
    format!(
        r#"
suites:
  nightly: {{schedule: "0 2 * * *"{suite_extra}}}
checks:
  - {{name: will-fail, kind: http, url: "http://127.0.0.1:{port}/will-fail", service: orders}}
  - {{name: will-recover, kind: http, url: "http://127.0.0.1:{port}/will-recover", service: orders}}
  - name: gauge
    kind: http
    url: "http://127.0.0.1:{port}/gauge"
    value: "json:$.v"
    baseline: {{alpha: 0.5, k: 3, warmup: 3}}
    service: orders
  - {{name: steady, kind: http, url: "http://127.0.0.1:{port}/steady", service: payments}}
"#
    )
}

async fn patrol(dir: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(common::patrol_bin())
        .current_dir(dir)
        .args(args)
        .env_remove("PATROL_STORE")
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .expect("patrol finishes in time")
        .unwrap()
}

fn streams(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One `patrol run --suite nightly --report-dir reports`; returns the report files it printed,
/// by extension.
async fn suite_run(dir: &Path) -> BTreeMap<String, PathBuf> {
    let out = patrol(
        dir,
        &[
            "run",
            "--rules",
            "rules",
            "--store",
            "sqlite://s.db",
            "--suite",
            "nightly",
            "--report-dir",
            "reports",
        ],
    )
    .await;
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        streams(&out)
    );
    let files: BTreeMap<String, PathBuf> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("report: "))
        .map(|p| {
            let path = dir.join(p);
            let ext = path.extension().unwrap().to_string_lossy().into_owned();
            (ext, path)
        })
        .collect();
    let exts: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(exts, ["html", "json", "md", "xml"], "{}", streams(&out));
    for p in files.values() {
        assert!(p.is_file(), "{}", p.display());
        assert!(
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("nightly-"),
            "{}",
            p.display()
        );
    }
    files
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn checks_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_of_a_known_run_read_back_and_regenerate_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let phase = Arc::new(AtomicU32::new(0));
    let port = changing_service(phase.clone()).await;
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/r.yaml"), rules(port, "")).unwrap();

    // Four runs teach the gauge's baseline (warm-up 3); then the service changes.
    let mut previous = BTreeMap::new();
    for _ in 0..4 {
        previous = suite_run(dir.path()).await;
    }
    phase.store(1, Ordering::SeqCst);
    let files = suite_run(dir.path()).await;
    let previous_id = read_json(&previous["json"])["run"]["id"].clone();

    // JSON: the documented shape, the counts and the comparison.
    let json = read_json(&files["json"]);
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "changes",
            "duration_ms",
            "generated_at",
            "previous_run",
            "results",
            "run",
            "schema_version",
            "scores",
            "series",
            "series_omitted",
            "suite"
        ]
    );
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["suite"], "nightly");
    assert_eq!(json["run"]["trigger"], "suite:nightly");
    assert!(json["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(json["results"].as_array().unwrap().len(), 4);
    assert_eq!(
        json["run"]["counts"],
        serde_json::json!({"ok": 2, "warn": 1, "crit": 1, "error": 0, "skipped": 0})
    );
    assert_eq!(json["previous_run"]["id"], previous_id);
    let changes = &json["changes"];
    assert_eq!(checks_of(&changes["new_failures"]), ["will-fail"]);
    assert_eq!(changes["new_failures"][0]["status"], "crit");
    assert_eq!(changes["new_failures"][0]["previous"], "ok");
    assert_eq!(checks_of(&changes["recovered"]), ["will-recover"]);
    assert_eq!(changes["recovered"][0]["previous"], "crit");
    assert!(checks_of(&changes["still_failing"]).is_empty());
    assert!(checks_of(&changes["new_checks"]).is_empty());
    // The failing and the anomalous series, the worst first, with their history and band.
    let series = json["series"].as_array().unwrap();
    assert_eq!(checks_of(&json["series"]), ["will-fail", "gauge"]);
    assert_eq!(json["series_omitted"], 0);
    let gauge = &series[1];
    assert_eq!(gauge["status"], "warn");
    assert_eq!(gauge["outside_band"], true);
    let points = gauge["points"].as_array().unwrap();
    assert_eq!(points.len(), 5, "{gauge:#}");
    assert!(points[0]["lower"].is_null(), "nothing learned before run 1");
    assert_eq!(points[4]["value"], 1000.0);
    assert_eq!(points[4]["lower"], 10.0);
    assert_eq!(points[4]["upper"], 10.0);
    assert!(points[..4].iter().all(|p| p["value"] == 10.0));
    // Scores of the run's services and overall, each with its trend and the previous value.
    let services: Vec<&str> = json["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["orders", "payments", "_overall"]);
    for s in json["scores"].as_array().unwrap() {
        assert!(!s["trend"].as_array().unwrap().is_empty(), "{s:#}");
        assert!(s["previous"].is_number(), "{s:#}");
    }

    // JUnit XML: well-formed, one testcase per check, one failure, the warning a property.
    let xml = std::fs::read_to_string(&files["xml"]).unwrap();
    let elements = xml_check::elements(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(elements["testsuites"], 1);
    assert_eq!(elements["testsuite"], 1);
    assert_eq!(elements["testcase"], 4);
    assert_eq!(elements["failure"], 1);
    assert!(!elements.contains_key("skipped"));
    assert_eq!(xml.matches("<property name=\"warn\"").count(), 1);
    assert!(xml.contains("tests=\"4\" failures=\"1\""), "{xml}");
    assert!(xml.contains("<testcase name=\"will-fail\" classname=\"nightly.orders\""));

    // HTML: one band chart per failing or anomalous check, nothing fetched from elsewhere.
    let html = std::fs::read_to_string(&files["html"]).unwrap();
    assert_eq!(
        html.matches("<svg class=\"band-chart\"").count(),
        series.len()
    );
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = html[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http:")
                    && !value.starts_with("https:")
                    && !value.starts_with("//"),
                "external asset: {}",
                &html[i..(i + 60).min(html.len())]
            );
        }
    }
    assert!(!html.contains("<script") && !html.contains("<link"));
    assert!(html.contains("<h3>New failures (1)</h3>"), "{html}");
    assert!(html.contains("<h3>Recovered (1)</h3>"));

    // Markdown: chat-sized, naming what changed.
    let md = std::fs::read_to_string(&files["md"]).unwrap();
    assert!(md.len() <= patrol::report::markdown::MAX_BYTES, "{md}");
    assert!(md.starts_with("### patrol · nightly: FAILED"), "{md}");
    assert!(md.contains("1 new failure · 1 recovered"), "{md}");
    assert!(md.contains("`gauge` warn: 1000 (band 10 – 10)"), "{md}");

    // Regenerated from the store: the same JSON but for generated_at.
    let run_id = json["run"]["id"].as_str().unwrap();
    let out = patrol(
        dir.path(),
        &[
            "report",
            "--run",
            run_id,
            "--format",
            "json",
            "--output",
            "-",
            "--store",
            "sqlite://s.db",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    let without_time = |mut v: Value| {
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    assert_eq!(without_time(again), without_time(json.clone()));

    // By suite, into a directory: the latest run's four files, the same names as at run time.
    let out = patrol(
        dir.path(),
        &[
            "report",
            "--suite",
            "nightly",
            "--output",
            "again",
            "--store",
            "sqlite://s.db",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let written: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| dir.path().join(l))
        .collect();
    assert_eq!(written.len(), 4, "{}", streams(&out));
    // Named after the suite and the run's start (at run time a run of the same second already
    // held that name in reports/, so those files carry the run id's tail as well).
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let exts: Vec<String> = written
        .iter()
        .map(|p| p.extension().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(exts, ["html", "md", "json", "xml"]);
    assert!(written.iter().all(|p| stem(p) == stem(&written[0])));
    assert!(stem(&files["json"]).starts_with(&stem(&written[0])));
    assert_eq!(
        without_time(read_json(&written[2])),
        without_time(json.clone())
    );

    // Bad requests exit 2 with a reason.
    for (args, says) in [
        (
            vec!["report", "--run", "nope"],
            "run nope is not in the store",
        ),
        (
            vec!["report", "--suite", "weekly"],
            "no run of suite \"weekly\"",
        ),
        (vec!["report", "--output", "-"], "prints one format"),
    ] {
        let mut args = args;
        args.extend(["--store", "sqlite://s.db"]);
        let out = patrol(dir.path(), &args).await;
        assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            streams(&out)
        );
    }
}

#[tokio::test]
async fn a_suite_notifying_an_unknown_receiver_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/r.yaml"),
        "receivers:\n  ops: {kind: webhook, url: \"http://127.0.0.1:1/hook\"}\n\
         checks:\n  - {name: a, kind: tcp, address: \"127.0.0.1:1\"}\n\
         suites:\n  nightly:\n    schedule: \"0 2 * * *\"\n    notify: [ops, nope]\n",
    )
    .unwrap();
    let out = patrol(dir.path(), &["validate", "rules"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "rules/r.yaml:8:19: error: suite `nightly` notifies unknown receiver `nope`; defined receivers: ops"
        ) || String::from_utf8_lossy(&out.stderr).contains(
            "rules/r.yaml:8:19: error: suite `nightly` notifies unknown receiver `nope`; defined receivers: ops"
        ),
        "{}",
        streams(&out)
    );
}

/// A webhook receiver recording every notification it gets.
async fn webhook() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            g.lock().unwrap().push(body);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_suite_run_writes_its_reports_and_sends_the_summary() {
    let phase = Arc::new(AtomicU32::new(1));
    let port = changing_service(phase).await;
    let (hook, got) = webhook().await;
    let rules = format!(
        "receivers:\n  ops: {{kind: webhook, url: \"http://127.0.0.1:{hook}/hook\"}}\n{}",
        rules(port, ", notify: [ops]")
    );
    let d =
        daemon_support::DaemonProcess::start(&[("r.yaml", &rules)], &["--report-dir", "reports"])
            .await;
    let started: Value = d
        .http
        .post(d.url("/api/v1/runs"))
        .json(&serde_json::json!({"suite": "nightly"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"]
        .as_str()
        .or_else(|| started["id"].as_str())
        .unwrap_or_else(|| panic!("no run id in {started}"))
        .to_string();

    let summary = {
        let deadline = std::time::Instant::now() + daemon_support::WAIT;
        loop {
            let found = got
                .lock()
                .unwrap()
                .iter()
                .find(|n| n["commonLabels"]["alertname"] == "suite_report")
                .cloned();
            if let Some(n) = found {
                break n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no report summary reached the webhook"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(summary["commonLabels"]["suite"], "nightly");
    assert_eq!(summary["commonLabels"]["run_id"], run_id.as_str());
    let markdown = summary["commonAnnotations"]["body"].as_str().unwrap();
    assert!(
        markdown.starts_with("### patrol · nightly: FAILED"),
        "{markdown}"
    );
    assert!(markdown.len() <= patrol::report::markdown::MAX_BYTES);
    assert!(
        summary["idempotencyKey"]
            .as_str()
            .unwrap()
            .contains(&run_id),
        "{summary}"
    );

    // The files were written before the summary was queued.
    let reports = d.dir.path().join("reports");
    let mut names: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    let stem = names[0].trim_end_matches(".html");
    assert!(stem.starts_with("nightly-"), "{names:?}");
    for ext in ["html", "json", "md", "xml"] {
        assert!(names.contains(&format!("{stem}.{ext}")), "{names:?}");
    }
    let json = read_json(&reports.join(format!("{stem}.json")));
    assert_eq!(json["run"]["id"], run_id.as_str());
    assert_eq!(json["run"]["trigger"], "suite:nightly");
    assert_eq!(json["results"].as_array().unwrap().len(), 4);
    let (code, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn a_drill_writes_an_html_report_with_its_timeline() {
    let w = drill_support::World::new();
    let api = drill_support::health_server().await;
    let file = w.write(
        "drill.yaml",
        &format!(
            "kind: drill\nname: html-report\nsteady_state:\n  - {{ name: health, kind: http, url: 'http://{api}/health' }}\n\
             workload:\n  http: {{ url: 'http://{api}/health', rate: 20/s, timeout: 3s }}\n\
             faults:\n  - {{ at: 200ms, for: 500ms, {} }}\ndrain: 1s\nprobe_interval: 300ms\n",
            w.exec_fault()
        ),
    );
    let out = w.drill(&[file.to_str().unwrap()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        drill_support::streams(&out)
    );
    let html_files = w.report_files("html");
    assert_eq!(html_files.len(), 1, "{}", drill_support::streams(&out));
    let json = &w.report_files("json")[0];
    assert_eq!(
        html_files[0].with_extension("json"),
        *json,
        "written next to the JSON"
    );
    let html = std::fs::read_to_string(&html_files[0]).unwrap();
    assert!(html.contains("<h1>Drill html-report <span class=\"pill passed\">PASSED</span></h1>"));
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 1);
    assert_eq!(
        html.matches("class=\"span\"").count(),
        1,
        "the exec fault's stretch"
    );
    assert!(html.contains("<h2>HTTP workload</h2>"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".html"),
        "the path is printed: {}",
        drill_support::streams(&out)
    );
}

common::on_both_backends!(a_report_reads_the_store_as_of_its_run);

/// A seeded result: check, status, value and band `(lower, upper)`.
type SeededResult<'a> = (&'a str, patrol::result::Status, f64, Option<(f64, f64)>);

/// A run of `trigger` starting `minute` minutes after 02:00 with `results` (check, status, value,
/// band), each of service `orders`.
fn seeded_run(
    id: &str,
    trigger: &str,
    minute: i64,
    results: &[SeededResult],
) -> (patrol::result::RunRecord, Vec<patrol::result::CheckResult>) {
    use chrono::TimeZone;
    use patrol::result::{Band, CheckResult, RunRecord, StatusCounts, Value};
    let at = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0).unwrap()
        + chrono::Duration::minutes(minute);
    let results: Vec<CheckResult> = results
        .iter()
        .map(|(check, status, value, band)| CheckResult {
            run_id: id.into(),
            started_at: at,
            service: Some("orders".into()),
            baseline: band.map(|(lower, upper)| Band {
                mean: (lower + upper) / 2.0,
                stddev: 1.0,
                lower,
                upper,
                samples: 10,
                ..Band::default()
            }),
            ..CheckResult::new(check, "", *status, Some(Value::Num(*value)))
        })
        .collect();
    let run = RunRecord {
        id: id.into(),
        started_at: at,
        finished_at: at + chrono::Duration::seconds(2),
        revision: "rev".into(),
        trigger: trigger.into(),
        counts: StatusCounts::tally(&results),
    };
    (run, results)
}

/// The comparison, the series history and the scores of a run come from the store as it was at
/// the run: the previous run of the same trigger (not another trigger's), results and scores up
/// to the run (not a later run's).
async fn a_report_reads_the_store_as_of_its_run(url: &str) {
    use patrol::result::Status::{Crit, Ok, Warn};
    use patrol::store::{ScoreRecord, Store};
    let store = Store::open(url).await.unwrap();
    let runs = [
        seeded_run(
            "r1",
            "suite:nightly",
            0,
            &[("lat", Ok, 10.0, None), ("up", Crit, 0.0, None)],
        ),
        seeded_run("c1", "cli", 30, &[("lat", Crit, 99.0, None)]),
        seeded_run(
            "r2",
            "suite:nightly",
            60,
            &[
                ("lat", Ok, 50.0, Some((5.0, 15.0))),
                ("up", Ok, 1.0, None),
                ("new", Ok, 1.0, None),
            ],
        ),
        seeded_run(
            "r3",
            "suite:nightly",
            120,
            &[("lat", Warn, 12.0, Some((5.0, 15.0)))],
        ),
    ];
    for (run, results) in &runs {
        store.save_run(run, results, &[]).await.unwrap();
    }
    let scores: Vec<ScoreRecord> = [(0, 90.0), (30, 80.0), (60, 70.0), (120, 100.0)]
        .iter()
        .map(|(minute, score)| ScoreRecord {
            service: "orders".into(),
            at: runs[0].0.started_at
                + chrono::Duration::minutes(*minute)
                + chrono::Duration::seconds(3),
            score: *score,
            model: "penalty".into(),
            details: serde_json::json!({"terms": []}),
        })
        .collect();
    store.save_scores(&scores).await.unwrap();

    assert_eq!(
        store
            .latest_run_of("suite:nightly")
            .await
            .unwrap()
            .unwrap()
            .id,
        "r3"
    );
    assert_eq!(store.latest_run_of("cli").await.unwrap().unwrap().id, "c1");
    assert_eq!(store.latest_report_run().await.unwrap().unwrap().id, "r3");
    assert!(store.run_before(&runs[0].0).await.unwrap().is_none());

    let report = patrol::report::SuiteReport::from_store(&store, "r2")
        .await
        .unwrap();
    assert_eq!(report.suite, "nightly");
    assert_eq!(report.previous_run.as_ref().unwrap().id, "r1");
    let names = |list: &[patrol::report::model::Change]| -> Vec<String> {
        list.iter().map(|c| c.check.clone()).collect()
    };
    assert_eq!(names(&report.changes.recovered), ["up"]);
    assert_eq!(names(&report.changes.new_checks), ["new"]);
    assert!(report.changes.new_failures.is_empty());
    // `lat` is ok but outside its band: charted, with the values up to this run only.
    assert_eq!(report.series.len(), 1);
    let lat = &report.series[0];
    assert!(lat.outside_band);
    let values: Vec<Option<f64>> = lat.points.iter().map(|p| p.value).collect();
    assert_eq!(values, [Some(10.0), Some(99.0), Some(50.0)]);
    assert_eq!(
        (lat.points[2].lower, lat.points[2].upper),
        (Some(5.0), Some(15.0))
    );
    // The score taken right after the run, the previous run's, and the trend up to it.
    let orders = &report.scores[0];
    assert_eq!(orders.service, "orders");
    assert_eq!(orders.score, 70.0);
    assert_eq!(orders.previous, Some(90.0));
    let trend: Vec<f64> = orders.trend.iter().map(|p| p.score).collect();
    assert_eq!(trend, [90.0, 80.0, 70.0]);
    assert!(matches!(
        patrol::report::SuiteReport::from_store(&store, "nope").await,
        Err(patrol::report::ReportError::UnknownRun(_))
    ));
}

/// A strict little XML well-formedness check (no XML crate is a dependency): one root, tags
/// nested and closed in order, attribute values quoted, no raw `<` in text or values, and only
/// the predefined or numeric entities.
mod xml_check {
    use std::collections::BTreeMap;

    /// Counts of each element name, or what is wrong.
    pub fn elements(xml: &str) -> Result<BTreeMap<String, usize>, String> {
        let mut rest = xml
            .strip_prefix("<?xml")
            .and_then(|r| r.split_once("?>").map(|(_, r)| r))
            .ok_or("no XML declaration")?;
        let mut stack: Vec<String> = Vec::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut roots = 0;
        loop {
            let Some(lt) = rest.find('<') else {
                text(rest)?;
                break;
            };
            text(&rest[..lt])?;
            if !rest[..lt].trim().is_empty() && stack.is_empty() {
                return Err("text outside the root".into());
            }
            rest = &rest[lt + 1..];
            let gt = rest.find('>').ok_or("unclosed tag")?;
            let tag = &rest[..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
                if open != name.trim() {
                    return Err(format!("<{open}> closed by </{name}>"));
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            {
                return Err(format!("bad element name {name:?}"));
            }
            attributes(attrs)?;
            if stack.is_empty() {
                roots += 1;
            }
            *counts.entry(name.to_string()).or_default() += 1;
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed elements {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(counts)
    }

    fn attributes(mut s: &str) -> Result<(), String> {
        let mut seen = Vec::new();
        loop {
            s = s.trim_start();
            if s.is_empty() {
                return Ok(());
            }
            let (name, rest) = s
                .split_once('=')
                .ok_or(format!("attribute without value: {s:?}"))?;
            let name = name.trim();
            if seen.contains(&name) {
                return Err(format!("attribute {name} twice"));
            }
            seen.push(name);
            let quote = rest.chars().next().ok_or("missing value")?;
            if quote != '"' && quote != '\'' {
                return Err(format!("unquoted value of {name}"));
            }
            let end = rest[1..]
                .find(quote)
                .ok_or(format!("unterminated value of {name}"))?;
            text(&rest[1..1 + end])?;
            s = &rest[end + 2..];
        }
    }

    fn text(s: &str) -> Result<(), String> {
        if s.contains('<') {
            return Err(format!("raw < in {s:?}"));
        }
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            let after = &rest[amp + 1..];
            let semi = after.find(';').ok_or(format!("bare & in {s:?}"))?;
            let entity = &after[..semi];
            let ok = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
                || entity
                    .strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || entity
                    .strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(format!("unknown entity &{entity};"));
            }
            rest = &after[semi + 1..];
        }
        if s.chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(format!("control character in {s:?}"));
        }
        Ok(())
    }

    #[test]
    fn the_checker_refuses_what_is_not_well_formed() {
        assert!(elements("<?xml version=\"1.0\"?><a><b x=\"1\"/></a>").is_ok());
        for bad in [
            "<?xml version=\"1.0\"?><a><b></a></b>",
            "<?xml version=\"1.0\"?><a x=1/>",
            "<?xml version=\"1.0\"?><a>Tom & Jerry</a>",
            "<?xml version=\"1.0\"?><a x=\"<\"/>",
            "<?xml version=\"1.0\"?><a/><b/>",
            "<?xml version=\"1.0\"?><a>",
            "<?xml version=\"1.0\"?><a>&nbsp;</a>",
        ] {
            assert!(elements(bad).is_err(), "{bad}");
        }
    }
}
