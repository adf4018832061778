//! The shadow report (issue 9 §4) against real stores and the real binary: exact counts, flaps
//! and first/last would-be alerts of a known sequence of shadow results on SQLite and PostgreSQL,
//! enforced results ignored, the window honoured at both ends; `patrol shadow report` parsed
//! back; `GET /api/v1/shadow` on the API harness (exact counts) and on a real daemon whose shadow
//! check measures a failing local HTTP endpoint.

mod common;

#[path = "store_support/mod.rs"]
#[allow(dead_code)]
mod fixtures;

#[path = "api_support/mod.rs"]
mod api_support;

#[path = "daemon_support/mod.rs"]
mod daemon_support;

use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use patrol::report::shadow::ShadowReport;
use patrol::result::{CheckResult, Status};
use patrol::store::Store;
use serde_json::Value as Json;

use Status::{Crit, Error, Ok, Warn};
use common::{on_both_backends, output_ok, patrol_bin, streams};
use fixtures::{result, run_record, t0};

/// One stored result: (check, series, status, shadow).
type Row<'a> = (&'a str, &'a str, Status, bool);

/// Saves one run at `at` holding `rows`.
async fn save_at(store: &Store, at: DateTime<Utc>, rows: &[Row<'_>]) {
    let id = common::unique_name("run");
    let results: Vec<CheckResult> = rows
        .iter()
        .map(|(check, series, status, shadow)| CheckResult {
            status: *status,
            shadow: *shadow,
            message: format!("{check}/{series} {status} at {}", at.format("%H:%M")),
            ..result(&id, check, series, at)
        })
        .collect();
    store
        .save_run(&run_record(&id, at, &results), &results, &[])
        .await
        .unwrap();
}

fn minute(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n)
}

/// The known sequence, one run a minute from t0:
/// - `dark` (shadow), series "": ok, warn, ok, crit, crit, ok;
/// - `dark` (shadow), series "replica-2": error at minutes 2 and 5;
/// - `loud` (enforced): crit every minute — never in the report;
/// - `dark` enforced (after a switch) at minute 6, and shadow results an hour before t0 and an
///   hour after: outside the windows asked for or not shadow.
async fn save_known_sequence(store: &Store) {
    let main = [Ok, Warn, Ok, Crit, Crit, Ok];
    for (i, status) in main.into_iter().enumerate() {
        let i = i as i64;
        let mut rows: Vec<Row> = vec![("dark", "", status, true), ("loud", "", Crit, false)];
        if i == 2 || i == 5 {
            rows.push(("dark", "replica-2", Error, true));
        }
        save_at(store, minute(i), &rows).await;
    }
    save_at(store, minute(6), &[("dark", "", Crit, false)]).await;
    save_at(store, minute(-60), &[("dark", "", Crit, true)]).await;
    save_at(store, minute(60), &[("dark", "", Crit, true)]).await;
}

on_both_backends!(
    a_known_sequence_gives_exact_counts,
    the_window_is_honoured_at_both_ends,
    the_binary_reports_json_table_and_markdown,
);

async fn a_known_sequence_gives_exact_counts(url: &str) {
    let store = Store::open(url).await.unwrap();
    save_known_sequence(&store).await;
    let report = ShadowReport::from_store(&store, minute(0), minute(10), None)
        .await
        .unwrap();
    assert_eq!(report.checks.len(), 1, "only dark has shadow results");
    let dark = &report.checks[0];
    assert_eq!(dark.check, "dark");
    let n = &dark.counts;
    assert_eq!(
        (n.evaluations, n.ok, n.warn, n.crit, n.error, n.skipped),
        (8, 3, 1, 2, 2, 0)
    );
    assert_eq!(n.would_alert, 5);
    // "": ok→warn→ok→crit (3 changes), crit→ok (4); replica-2 never changes.
    assert_eq!(n.flaps, 4);
    // "": warn fires, crit fires again; replica-2 fires once and stays firing.
    assert_eq!(n.would_fire, 3);
    let first = dark.first_would_alert.as_ref().unwrap();
    assert_eq!(
        (first.at, first.status, first.series.as_str()),
        (minute(1), Warn, "")
    );
    assert_eq!(first.message, "dark/ warn at 02:01");
    let last = dark.last_would_alert.as_ref().unwrap();
    assert_eq!(
        (last.at, last.status, last.series.as_str()),
        (minute(5), Error, "replica-2")
    );
    assert_eq!(dark.current_status, Some(Error), "the worst latest status");
    assert_eq!(dark.last_evaluated_at, Some(minute(5)));
    assert!(dark.would_be_firing);
    let series: Vec<(&str, u64, u64, Option<Status>)> = dark
        .series
        .iter()
        .map(|s| {
            let c = &s.counts;
            (s.series.as_str(), c.evaluations, c.flaps, s.current_status)
        })
        .collect();
    assert_eq!(
        series,
        vec![("", 6, 4, Some(Ok)), ("replica-2", 2, 0, Some(Error))]
    );
}

async fn the_window_is_honoured_at_both_ends(url: &str) {
    let store = Store::open(url).await.unwrap();
    save_known_sequence(&store).await;
    // From minute 3: "" crit, crit, ok and replica-2's error at 5.
    let late = ShadowReport::from_store(&store, minute(3), minute(10), None)
        .await
        .unwrap();
    let n = &late.checks[0].counts;
    assert_eq!((n.evaluations, n.crit, n.error, n.flaps), (4, 2, 1, 1));
    let first = late.checks[0].first_would_alert.as_ref().unwrap();
    assert_eq!((first.at, first.status), (minute(3), Crit));
    // Up to minute 2, inclusive: "" ok, warn, ok and replica-2's error at 2.
    let early = ShadowReport::from_store(&store, minute(0), minute(2), None)
        .await
        .unwrap();
    let n = &early.checks[0].counts;
    assert_eq!(
        (n.evaluations, n.ok, n.warn, n.error, n.flaps),
        (4, 2, 1, 1, 2)
    );
    // Wide enough for the results an hour before and after.
    let all = ShadowReport::from_store(&store, minute(-61), minute(61), None)
        .await
        .unwrap();
    assert_eq!(all.checks[0].counts.evaluations, 10);
    assert_eq!(all.checks[0].counts.crit, 4);
    // A window with nothing in it.
    let none = ShadowReport::from_store(&store, minute(20), minute(30), None)
        .await
        .unwrap();
    assert!(none.checks.is_empty());
}

/// Rules with `dark` and a `quiet` shadow check that never ran, and the enforced `loud`.
const RULES: &str = "checks:
  - {name: dark, kind: tcp, address: '127.0.0.1:1', mode: shadow, alert: {failure_threshold: 2}}
  - {name: quiet, kind: tcp, address: '127.0.0.1:1', mode: shadow}
  - {name: loud, kind: tcp, address: '127.0.0.1:1'}
";

fn shadow_report(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(patrol_bin())
        .args(["shadow", "report", "--store", url])
        .args(args)
        .env_remove("PATROL_STORE")
        .output()
        .unwrap()
}

fn json_report(url: &str, args: &[&str]) -> Json {
    let mut cmd = Command::new(patrol_bin());
    cmd.args(["shadow", "report", "--store", url, "--format", "json"])
        .args(args)
        .env_remove("PATROL_STORE");
    let (stdout, _) = output_ok(&mut cmd);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn check<'a>(report: &'a Json, name: &str) -> &'a Json {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

fn names(report: &Json) -> Vec<&str> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect()
}

async fn the_binary_reports_json_table_and_markdown(url: &str) {
    let store = Store::open(url).await.unwrap();
    // The binary's window ends now: the sequence ends 15 minutes ago, one result 3 days ago.
    let now = Utc::now();
    let ago = |m: i64| now - Duration::minutes(m);
    for (i, status) in [Ok, Warn, Ok, Crit, Crit, Ok].into_iter().enumerate() {
        let rows: Vec<Row> = vec![("dark", "", status, true), ("loud", "", Crit, false)];
        save_at(&store, ago(40 - 5 * i as i64), &rows).await;
    }
    save_at(&store, ago(3 * 24 * 60), &[("dark", "", Crit, true)]).await;

    // The default window is 48h: the old result is left out.
    let report = json_report(url, &[]);
    assert_eq!(names(&report), ["dark"]);
    let dark = check(&report, "dark");
    assert_eq!(
        [
            &dark["evaluations"],
            &dark["would_alert"],
            &dark["warn"],
            &dark["crit"]
        ],
        [6, 3, 1, 2]
    );
    assert_eq!(
        (&dark["flaps"], &dark["would_fire"]),
        (&4.into(), &2.into())
    );
    assert_eq!(dark["mode"], Json::Null);
    assert_eq!(dark["first_would_alert"]["status"], "warn");
    assert_eq!(dark["last_would_alert"]["status"], "crit");
    assert_eq!(dark["current_status"], "ok");
    let since: DateTime<Utc> = report["since"].as_str().unwrap().parse().unwrap();
    let until: DateTime<Utc> = report["until"].as_str().unwrap().parse().unwrap();
    assert!((until - since - Duration::hours(48)).num_seconds().abs() <= 1);
    assert!((until - now).num_seconds().abs() < 120, "until is now");

    // --since: the last two results only; a wider window takes in the old one.
    let recent = json_report(url, &["--since", "22m"]);
    let dark = check(&recent, "dark");
    assert_eq!(
        [&dark["evaluations"], &dark["crit"], &dark["flaps"]],
        [2, 1, 1]
    );
    let wide = json_report(url, &["--since", "4d"]);
    assert_eq!(check(&wide, "dark")["evaluations"], 7);
    let rfc = (now - Duration::minutes(32)).to_rfc3339();
    assert_eq!(
        check(&json_report(url, &["--since", &rfc]), "dark")["evaluations"],
        4
    );

    // --rules: the quiet shadow check is listed, the threshold of 2 honoured.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), RULES).unwrap();
    let rules = dir.path().to_str().unwrap();
    let with_rules = json_report(url, &["--rules", rules]);
    assert_eq!(names(&with_rules), ["dark", "quiet"]);
    let dark = check(&with_rules, "dark");
    assert_eq!(
        (&dark["mode"], &dark["failure_threshold"]),
        (&"shadow".into(), &2.into())
    );
    assert_eq!(dark["would_fire"], 1, "only crit, crit is two bad in a row");
    let quiet = check(&with_rules, "quiet");
    assert_eq!(
        (&quiet["mode"], &quiet["evaluations"]),
        (&"shadow".into(), &0.into())
    );
    assert_eq!(quiet["first_would_alert"], Json::Null);

    // The table: one row per check, then the first and last would-be alerts.
    let out = shadow_report(url, &["--rules", rules]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{table}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        row("dark")[..10],
        ["dark", "shadow", "6", "3", "1", "2", "0", "1", "(×2)", "4"],
        "{table}"
    );
    assert_eq!(row("quiet")[..3], ["quiet", "shadow", "0"], "{table}");
    let alert_line = |which: &str, at: DateTime<Utc>, status: &str| {
        let wanted = ["dark", which, &time(at), status];
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().take(4).eq(wanted)),
            "{wanted:?} in:\n{table}"
        );
    };
    alert_line("first", ago(35), "warn");
    alert_line("last", ago(20), "crit");

    let out = shadow_report(url, &["--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", streams(&out));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("| `dark` | 6 | 3 | 1 | 2 | 0 | 2 | 4 | ok |"),
        "{md}"
    );

    // Invalid arguments: exit 2 with a message that says what is wrong.
    let out = shadow_report(url, &["--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--since") && err.contains("neither a duration"),
        "{err}"
    );
    let future = (now + Duration::days(1)).to_rfc3339();
    let out = shadow_report(url, &["--since", &future]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let out = shadow_report(url, &["--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
    let out = shadow_report(url, &["--rules", "/nonexistent/rules"]);
    assert_eq!(out.status.code(), Some(2), "{}", streams(&out));
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn the_api_reports_exact_counts_modes_and_refuses_bad_windows() {
    use api_support::{Harness, result as api_result};
    let h = Harness::start(None).await;
    // db-port is the harness's shadow check; before any result it is listed with nothing.
    let (status, empty) = h.get("/api/v1/shadow").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(names(&empty), ["db-port"]);
    assert_eq!(check(&empty, "db-port")["evaluations"], 0);
    assert_eq!(check(&empty, "db-port")["mode"], "shadow");

    let now = Utc::now();
    let ago = |m: i64| now - Duration::minutes(m);
    let statuses = [Ok, Warn, Ok, Crit, Crit, Ok];
    for (i, status) in statuses.into_iter().enumerate() {
        let at = ago(60 - 10 * i as i64);
        let shadow = CheckResult {
            shadow: true,
            message: format!("refused {i}"),
            ..api_result("db-port", "", at, status, i as f64)
        };
        let enforced = api_result("api-up", "", at, Crit, 1.0);
        h.save_run(&format!("r{i}"), at, vec![shadow, enforced])
            .await;
    }
    let retired = CheckResult {
        shadow: true,
        ..api_result("retired", "", ago(5), Crit, 1.0)
    };
    h.save_run("r-retired", ago(5), vec![retired]).await;

    let (status, report) = h.get("/api/v1/shadow?since=48h").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(names(&report), ["db-port", "retired"], "api-up is enforced");
    let db = check(&report, "db-port");
    assert_eq!(
        [
            &db["evaluations"],
            &db["ok"],
            &db["warn"],
            &db["crit"],
            &db["error"]
        ],
        [6, 3, 1, 2, 0]
    );
    assert_eq!(
        [&db["would_alert"], &db["flaps"], &db["would_fire"]],
        [3, 4, 2]
    );
    assert_eq!(db["first_would_alert"]["message"], "refused 1");
    assert_eq!(db["last_would_alert"]["message"], "refused 4");
    assert_eq!(db["last_would_alert"]["status"], "crit");
    assert_eq!(db["series"].as_array().unwrap().len(), 1);
    assert_eq!(check(&report, "retired")["mode"], "unknown");

    let (status, recent) = h.get("/api/v1/shadow?since=25m").await;
    assert_eq!(status, 200, "{recent}");
    let db = check(&recent, "db-port");
    assert_eq!([&db["evaluations"], &db["crit"], &db["flaps"]], [2, 1, 1]);

    for bad in ["since=yesterday", "since=2999-01-01T00:00:00Z", "window=1h"] {
        let (status, body) = h.get(&format!("/api/v1/shadow?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (_, body) = h.get("/api/v1/shadow?since=yesterday").await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("neither a duration"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_reports_what_its_failing_shadow_check_would_have_alerted() {
    use daemon_support::{DaemonProcess, http_check, target_server};
    let (port, _served) = target_server().await;
    let checks = [
        // 404: the expectation of a 2xx or 3xx status fails at every run.
        http_check("dark", port, "/missing", "every: 1s, mode: shadow"),
        http_check("fine", port, "/ok", "every: 1s"),
        // Planned once a year: no result during the test.
        "{name: quiet, kind: tcp, address: '127.0.0.1:1', schedule: '0 3 1 1 *', \
         catch_up: 0s, mode: shadow}"
            .to_string(),
    ];
    let d = DaemonProcess::with_checks(&checks, &[]).await;
    d.wait_until("three shadow evaluations of dark", |d| async move {
        let report = d.get_json("/api/v1/shadow").await;
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == "dark"))
            .is_some_and(|c| c["evaluations"].as_u64() >= Some(3))
    })
    .await;
    let report = d.get_json("/api/v1/shadow").await;
    assert_eq!(names(&report), ["dark", "quiet"], "{report:#}");
    let dark = check(&report, "dark");
    let evaluations = dark["evaluations"].as_u64().unwrap();
    assert_eq!(dark["mode"], "shadow");
    assert_eq!(dark["would_alert"], evaluations, "every run failed");
    assert_eq!(dark["crit"], evaluations, "{dark:#}");
    assert_eq!([&dark["flaps"], &dark["would_fire"]], [0, 1]);
    assert_eq!(dark["would_be_firing"], true);
    let first = &dark["first_would_alert"];
    assert!(
        first["message"].as_str().unwrap().contains("404"),
        "{first}"
    );
    assert!(first["at"].as_str() <= dark["last_would_alert"]["at"].as_str());
    assert_eq!(check(&report, "quiet")["evaluations"], 0);

    // The CLI reads the same store while the daemon runs.
    let mut cmd = Command::new(patrol_bin());
    cmd.args([
        "shadow",
        "report",
        "--format",
        "json",
        "--store",
        &d.store_url(),
    ])
    .args(["--rules", d.rules_dir().to_str().unwrap()])
    .env_remove("PATROL_STORE");
    let (stdout, _) = output_ok(&mut cmd);
    let cli: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(names(&cli), ["dark", "quiet"]);
    let cli_dark = check(&cli, "dark");
    assert!(cli_dark["evaluations"].as_u64().unwrap() >= evaluations);
    assert_eq!(cli_dark["flaps"], 0);
}
