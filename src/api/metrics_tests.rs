use super::*;
use crate::api::exposition::{Sample, parse_samples};
use crate::result::{Band, Value};

/// A result of service `orders` that took 250 ms, with a message no metric may carry.
fn result(check: &str, series: &str, status: Status, value: Option<Value>) -> CheckResult {
    CheckResult {
        duration_ms: 250.0,
        message: "connection refused: secret detail".into(),
        service: Some("orders".into()),
        ..CheckResult::new(check, series, status, value)
    }
}

/// A baseline band of mean ± 3σ.
fn three_sigma_band(mean: f64, stddev: f64, samples: u64) -> Option<Band> {
    Some(Band {
        mean,
        stddev,
        lower: mean - 3.0 * stddev,
        upper: mean + 3.0 * stddev,
        samples,
        ..Band::default()
    })
}

fn samples(m: &Metrics) -> Vec<Sample> {
    parse_samples(&m.encode()).expect("the encoded text parses")
}

/// The value of the one sample named `name` with these labels.
fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(m)
        .into_iter()
        .filter(|s| s.name == name && s.has_labels(labels))
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied()
}

const S: [(&str, &str); 3] = [("check", "c1"), ("service", "orders"), ("series", "")];

#[test]
fn a_result_sets_status_value_duration_and_counts() {
    let m = Metrics::new();
    m.observe_result(&result("c1", "", Status::Warn, Some(Value::Num(12.5))));
    assert_eq!(value(&m, "patrol_check_status", &S), Some(1.0));
    assert_eq!(value(&m, "patrol_check_value", &S), Some(12.5));
    assert_eq!(value(&m, "patrol_check_duration_seconds", &S), Some(0.25));
    let warn = [("check", "c1"), ("status", "warn")];
    assert_eq!(value(&m, "patrol_runs_total", &warn), Some(1.0));
    m.observe_result(&result("c1", "", Status::Warn, Some(Value::Num(13.0))));
    assert_eq!(value(&m, "patrol_runs_total", &warn), Some(2.0));
    assert_eq!(value(&m, "patrol_check_value", &S), Some(13.0));
}

#[test]
fn status_codes_follow_gravity() {
    let m = Metrics::new();
    for (status, code) in [
        (Status::Ok, 0.0),
        (Status::Warn, 1.0),
        (Status::Crit, 2.0),
        (Status::Error, 3.0),
    ] {
        m.observe_result(&result("c1", "", status, None));
        assert_eq!(value(&m, "patrol_check_status", &S), Some(code));
    }
}

#[test]
fn skipped_results_leave_the_status_alone_but_count() {
    let m = Metrics::new();
    m.observe_result(&result("c1", "", Status::Crit, Some(Value::Num(1.0))));
    m.observe_result(&result("c1", "", Status::Skipped, None));
    assert_eq!(value(&m, "patrol_check_status", &S), Some(2.0));
    assert_eq!(value(&m, "patrol_check_value", &S), Some(1.0));
    let skipped = [("check", "c1"), ("status", "skipped")];
    assert_eq!(value(&m, "patrol_runs_total", &skipped), Some(1.0));
}

#[test]
fn only_numbers_become_values_and_an_error_removes_the_last_one() {
    let m = Metrics::new();
    m.observe_result(&result(
        "c1",
        "",
        Status::Ok,
        Some(Value::Text("up".into())),
    ));
    assert_eq!(value(&m, "patrol_check_value", &S), None);
    m.observe_result(&result(
        "c1",
        "",
        Status::Ok,
        Some(Value::Text("42".into())),
    ));
    assert_eq!(value(&m, "patrol_check_value", &S), Some(42.0));
    m.observe_result(&result("c1", "", Status::Ok, Some(Value::Num(f64::NAN))));
    assert_eq!(value(&m, "patrol_check_value", &S), None);
    m.observe_result(&result("c1", "", Status::Ok, Some(Value::Num(7.0))));
    m.observe_result(&result("c1", "", Status::Error, None));
    assert_eq!(value(&m, "patrol_check_value", &S), None);
    assert_eq!(value(&m, "patrol_check_status", &S), Some(3.0));
}

#[test]
fn the_band_is_exported_while_present() {
    let m = Metrics::new();
    let mut r = result("c1", "", Status::Ok, Some(Value::Num(10.0)));
    r.baseline = three_sigma_band(10.0, 1.0, 30);
    m.observe_result(&r);
    assert_eq!(value(&m, "patrol_baseline_mean", &S), Some(10.0));
    assert_eq!(value(&m, "patrol_baseline_lower", &S), Some(7.0));
    assert_eq!(value(&m, "patrol_baseline_upper", &S), Some(13.0));
    r.baseline = None;
    m.observe_result(&r);
    assert_eq!(value(&m, "patrol_baseline_mean", &S), None);
    assert_eq!(value(&m, "patrol_baseline_upper", &S), None);
}

#[test]
fn messages_never_become_labels() {
    let m = Metrics::new();
    m.observe_result(&result("c1", "db1", Status::Error, None));
    let text = m.encode();
    assert!(!text.contains("secret detail"), "{text}");
    let labels: BTreeSet<String> = samples(&m)
        .into_iter()
        .flat_map(|s| s.labels.into_keys())
        .collect();
    let allowed = ["check", "service", "series", "status", "le"];
    assert!(
        labels.iter().all(|l| allowed.contains(&l.as_str())),
        "{labels:?}"
    );
}

#[test]
fn a_check_run_drops_the_series_it_no_longer_reports() {
    let m = Metrics::new();
    let run = |series: &[&str], status: Status| -> Vec<CheckResult> {
        series
            .iter()
            .map(|s| result("rows", s, status, Some(Value::Num(1.0))))
            .collect()
    };
    m.observe_check("rows", &run(&["t1", "t2"], Status::Ok));
    m.observe_check("rows", &run(&["t2", "t3"], Status::Ok));
    let series_of = |m: &Metrics| -> BTreeSet<String> {
        samples(m)
            .into_iter()
            .filter(|s| s.name == "patrol_check_value")
            .map(|s| s.labels["series"].clone())
            .collect()
    };
    assert_eq!(series_of(&m), ["t2", "t3"].map(String::from).into());
    m.observe_check("rows", &run(&["t2"], Status::Skipped));
    assert_eq!(
        series_of(&m),
        ["t2", "t3"].map(String::from).into(),
        "skipped: nothing measured"
    );
    m.forget_check("rows");
    assert!(series_of(&m).is_empty());
}

#[test]
fn lateness_falls_into_buckets_from_a_millisecond_to_a_minute() {
    let m = Metrics::new();
    m.observe_lateness(0.0005);
    m.observe_lateness(0.2);
    m.observe_lateness(-1.0);
    m.observe_lateness(120.0);
    let bucket = |le: &str| value(&m, "patrol_schedule_lateness_seconds_bucket", &[("le", le)]);
    assert_eq!(bucket("0.001"), Some(2.0), "0.0005 and the early start");
    assert_eq!(bucket("0.25"), Some(3.0));
    assert_eq!(bucket("60.0"), Some(3.0));
    assert_eq!(bucket("+Inf"), Some(4.0));
    assert_eq!(
        value(&m, "patrol_schedule_lateness_seconds_count", &[]),
        Some(4.0)
    );
    let sum = value(&m, "patrol_schedule_lateness_seconds_sum", &[]).unwrap();
    assert!((sum - 120.2005).abs() < 1e-9, "{sum}");
}

#[test]
fn skips_scores_and_reload_failures_count() {
    let m = Metrics::new();
    m.skipped("slow");
    m.skipped("slow");
    m.set_score("orders", 87.5);
    m.reload_failed();
    assert_eq!(
        value(&m, "patrol_schedule_skipped_total", &[("check", "slow")]),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "patrol_health_score", &[("service", "orders")]),
        Some(87.5)
    );
    assert_eq!(
        value(&m, "patrol_config_reload_failures_total", &[]),
        Some(1.0)
    );
}

#[test]
fn set_scores_drops_services_that_are_gone() {
    let m = Metrics::new();
    m.set_scores([("a", 10.0), ("b", 20.0)]);
    m.set_scores([("b", 30.0)]);
    assert_eq!(value(&m, "patrol_health_score", &[("service", "a")]), None);
    assert_eq!(
        value(&m, "patrol_health_score", &[("service", "b")]),
        Some(30.0)
    );
}

#[test]
fn only_the_current_revision_is_exported() {
    let m = Metrics::new();
    m.set_revision("r1");
    m.set_revision("r1");
    m.set_revision("r2");
    let revisions: Vec<Sample> = samples(&m)
        .into_iter()
        .filter(|s| s.name == "patrol_config_revision_info")
        .collect();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].labels["revision"], "r2");
    assert_eq!(revisions[0].value, 1.0);
}

#[test]
fn forgetting_a_check_removes_all_its_series() {
    let m = Metrics::new();
    let mut r = result("gone", "s1", Status::Ok, Some(Value::Num(1.0)));
    m.observe_result(&r);
    r.series = "s2".into();
    m.observe_result(&r);
    m.skipped("gone");
    m.observe_result(&result("kept", "", Status::Ok, Some(Value::Num(2.0))));
    m.forget_check("gone");
    let left: Vec<Sample> = samples(&m)
        .into_iter()
        .filter(|s| s.labels.get("check").map(String::as_str) == Some("gone"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let kept = [("check", "kept")];
    assert_eq!(value(&m, "patrol_check_value", &kept), Some(2.0));
}

/// Labelled families without series are left out (prometheus-client skips them); the
/// unlabelled lateness histogram, reload counter and outbox gauge are there from the start, at zero.
#[test]
fn a_fresh_daemon_exports_zero_lateness_and_reload_counters_only() {
    let m = Metrics::new();
    let names: BTreeSet<String> = samples(&m).into_iter().map(|s| s.name).collect();
    let expected: BTreeSet<String> = [
        "patrol_schedule_lateness_seconds_bucket",
        "patrol_schedule_lateness_seconds_count",
        "patrol_schedule_lateness_seconds_sum",
        "patrol_config_reload_failures_total",
        "patrol_config_reload_unchanged_total",
        "patrol_outbox_pending",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, expected);
    assert_eq!(
        value(&m, "patrol_config_reload_failures_total", &[]),
        Some(0.0)
    );
}

#[test]
fn both_formats_describe_every_metric_and_only_openmetrics_ends_with_eof() {
    let m = Metrics::new();
    let mut r = result("c1", "", Status::Ok, Some(Value::Num(1.0)));
    r.baseline = three_sigma_band(1.0, 0.1, 9);
    m.observe_result(&r);
    m.observe_lateness(0.01);
    m.skipped("c1");
    m.set_score("orders", 90.0);
    m.set_revision("r1");
    m.reload_failed();
    m.notification("ops", "sent");
    m.set_outbox_pending(2);
    let om = m.encode();
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE patrol_runs counter\n"));
    let prom = m.encode_prometheus();
    assert!(!prom.contains("# EOF"));
    assert!(prom.contains("# TYPE patrol_runs_total counter\n"));
    for name in [
        "patrol_check_status",
        "patrol_check_value",
        "patrol_check_duration_seconds",
        "patrol_baseline_mean",
        "patrol_baseline_lower",
        "patrol_baseline_upper",
        "patrol_health_score",
        "patrol_schedule_lateness_seconds",
        "patrol_runs_total",
        "patrol_config_revision_info",
        "patrol_config_reload_failures_total",
        "patrol_schedule_skipped_total",
        "patrol_notifications_total",
        "patrol_outbox_pending",
    ] {
        assert!(prom.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert_eq!(parse_samples(&prom).unwrap(), parse_samples(&om).unwrap());
}

#[test]
fn notifications_count_by_receiver_and_result() {
    let m = Metrics::new();
    m.notification("ops", "sent");
    m.notification("ops", "sent");
    m.notification("ops", "failed");
    m.notification("pager", "dead");
    let total = "patrol_notifications_total";
    let sent = [("receiver", "ops"), ("result", "sent")];
    assert_eq!(value(&m, total, &sent), Some(2.0));
    let failed = [("receiver", "ops"), ("result", "failed")];
    assert_eq!(value(&m, total, &failed), Some(1.0));
    let dead = [("receiver", "pager"), ("result", "dead")];
    assert_eq!(value(&m, total, &dead), Some(1.0));
    let never = [("receiver", "pager"), ("result", "sent")];
    assert_eq!(value(&m, total, &never), None);
}

#[test]
fn the_outbox_gauge_shows_the_latest_pending_count() {
    let m = Metrics::new();
    assert_eq!(value(&m, "patrol_outbox_pending", &[]), Some(0.0));
    m.set_outbox_pending(7);
    assert_eq!(value(&m, "patrol_outbox_pending", &[]), Some(7.0));
    m.set_outbox_pending(0);
    assert_eq!(value(&m, "patrol_outbox_pending", &[]), Some(0.0));
    m.set_outbox_pending(u64::MAX);
    assert_eq!(
        value(&m, "patrol_outbox_pending", &[]),
        Some(i64::MAX as f64)
    );
}
