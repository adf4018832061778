//! Table tests of the score formulas, hand-computed, including the two DESIGN §3 examples.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::result::{CheckResult, Value};

fn rules(yaml: &str) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), yaml).unwrap();
    crate::config::load_with_env(&[dir.path().to_path_buf()], &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 3, 2, 0, 0).unwrap()
}

fn minutes(m: i64) -> Duration {
    Duration::minutes(m)
}

fn state(status: Status, failing_for: Option<i64>, value: Option<f64>) -> CheckState {
    CheckState {
        status,
        failing_since: failing_for.map(|m| t0() - minutes(m)),
        value,
        at: t0(),
    }
}

/// A crit check failing for `minutes` that measured nothing.
fn crit_for(minutes: i64) -> CheckState {
    state(Status::Crit, Some(minutes), None)
}

fn states(entries: &[(&str, CheckState)]) -> HashMap<String, CheckState> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn score_of(scores: &[ServiceScore], service: &str) -> f64 {
    scores
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("no score for {service}"))
        .score
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

const PENALTY_RULES: &str = r#"
defaults: {service: orders}
checks:
  - {name: repl-lag, kind: tcp, address: "127.0.0.1:1", weight: 0.35}
  - {name: mq-lag, kind: tcp, address: "127.0.0.1:1", weight: 0.25}
  - {name: big, kind: tcp, address: "127.0.0.1:1", weight: 10}
  - {name: bigger, kind: tcp, address: "127.0.0.1:1", weight: 20}
  - {name: trial, kind: tcp, address: "127.0.0.1:1", weight: 50, mode: shadow}
  - {name: elsewhere, kind: tcp, address: "127.0.0.1:1", weight: 50, service: billing}
"#;

#[test]
fn penalty_scores_follow_the_design_formula() {
    let r = rules(PENALTY_RULES);
    let ok = || state(Status::Ok, None, Some(1.0));
    // (states, expected orders score), each computed by hand from 100 − Σ w·log₂(m + 1).
    let cases: Vec<(Vec<(&str, CheckState)>, f64)> = vec![
        // DESIGN weights: replication lag failing 63 min (0.35·6), consumer lag 15 min (0.25·4).
        (
            vec![
                ("repl-lag", crit_for(63)),
                ("mq-lag", state(Status::Error, Some(15), None)),
            ],
            100.0 - 2.1 - 1.0,
        ),
        // 7 and 3 minutes: 0.35·3 + 0.25·2.
        (
            vec![("repl-lag", crit_for(7)), ("mq-lag", crit_for(3))],
            98.45,
        ),
        // Failing for 0 minutes costs nothing yet; warn never costs.
        (
            vec![
                ("repl-lag", crit_for(0)),
                ("mq-lag", state(Status::Warn, None, Some(3.0))),
            ],
            100.0,
        ),
        // 10·log₂16 = 40.
        (vec![("big", crit_for(15))], 60.0),
        // 40 + 20·log₂32 = 140 → clamped to 0.
        (vec![("big", crit_for(15)), ("bigger", crit_for(31))], 0.0),
        // A shadow check and another service's check never cost this service anything.
        (
            vec![
                ("trial", crit_for(1000)),
                ("elsewhere", crit_for(1000)),
                ("big", ok()),
            ],
            100.0,
        ),
    ];
    for (i, (entries, want)) in cases.into_iter().enumerate() {
        let scores = evaluate(&r, &states(&entries), t0());
        let got = score_of(&scores, "orders");
        assert!(close(got, want), "case {i}: got {got}, want {want}");
    }
}

#[test]
fn penalty_grows_with_time_and_counts_failing_since_not_the_last_result() {
    let r = rules(PENALTY_RULES);
    let mut s = crit_for(0);
    s.failing_since = Some(t0());
    let st = states(&[("big", s)]);
    // 1 minute: 10·log₂2 = 10; 3 minutes: 10·log₂4 = 20.
    assert!(close(
        score_of(&evaluate(&r, &st, t0() + minutes(1)), "orders"),
        90.0
    ));
    assert!(close(
        score_of(&evaluate(&r, &st, t0() + minutes(3)), "orders"),
        80.0
    ));
    // A clock behind failing_since counts as 0 minutes, not as a bonus.
    assert!(close(
        score_of(&evaluate(&r, &st, t0() - minutes(5)), "orders"),
        100.0
    ));
}

#[test]
fn penalty_details_name_each_enforced_check_and_leave_shadow_out() {
    let r = rules(PENALTY_RULES);
    let scores = evaluate(&r, &states(&[("big", crit_for(15))]), t0());
    let orders = scores.iter().find(|s| s.service == "orders").unwrap();
    let terms = orders.details["terms"].as_array().unwrap();
    let names: Vec<&str> = terms.iter().map(|t| t["check"].as_str().unwrap()).collect();
    assert_eq!(names, ["repl-lag", "mq-lag", "big", "bigger"]);
    let big = &terms[2];
    assert_eq!(big["status"], "crit");
    assert!(close(big["failing_minutes"].as_f64().unwrap(), 15.0));
    assert!(close(big["penalty"].as_f64().unwrap(), 40.0));
    assert!(terms[0]["status"].is_null(), "no state yet: {}", terms[0]);
    assert!(orders.has_data());
    assert_eq!(orders.model, ScoreModel::Penalty);
}

const WEIGHTED_RULES: &str = r#"
checks:
  - {name: success-rate, kind: tcp, address: "127.0.0.1:1"}
  - {name: rtt-ms, kind: tcp, address: "127.0.0.1:1"}
  - {name: timeout-rate, kind: tcp, address: "127.0.0.1:1"}
  - {name: backlog, kind: tcp, address: "127.0.0.1:1"}
  - {name: fin-rst-rate, kind: tcp, address: "127.0.0.1:1"}
  - {name: syn-retrans-rate, kind: tcp, address: "127.0.0.1:1"}
services:
  sse-pool:
    model: weighted
    components:
      - {check: success-rate, normalize: "linear(0, 1)", weight: 0.4}
      - {check: rtt-ms, normalize: "inverse(500)", weight: 0.3}
      - {check: timeout-rate, normalize: "inverse(1)", weight: 0.2}
      - {check: backlog, normalize: "linear(0, 1000)", weight: -0.1}
  connection-health:
    model: weighted
    components:
      - {check: rtt-ms, normalize: "inverse(500)", weight: 0.4}
      - {check: fin-rst-rate, normalize: "inverse(5)", weight: 0.35}
      - {check: syn-retrans-rate, normalize: "exp_decay(10)", weight: 0.25}
"#;

/// The states of one case: check name → state.
type Entries = Vec<(&'static str, CheckState)>;

fn valued(v: f64) -> CheckState {
    state(Status::Ok, None, Some(v))
}

/// The inputs of the `sse-pool` service, each check ok with its value.
fn sse_pool(success_rate: f64, rtt_ms: f64, timeout_rate: f64, backlog: f64) -> Entries {
    vec![
        ("success-rate", valued(success_rate)),
        ("rtt-ms", valued(rtt_ms)),
        ("timeout-rate", valued(timeout_rate)),
        ("backlog", valued(backlog)),
    ]
}

/// The inputs of the `connection-health` service, each check ok with its value.
fn connection_health(rtt_ms: f64, fin_rst_rate: f64, syn_retrans_rate: f64) -> Entries {
    vec![
        ("rtt-ms", valued(rtt_ms)),
        ("fin-rst-rate", valued(fin_rst_rate)),
        ("syn-retrans-rate", valued(syn_retrans_rate)),
    ]
}

#[test]
fn weighted_scores_reproduce_the_design_examples() {
    let r = rules(WEIGHTED_RULES);
    let cases: Vec<(Entries, &str, f64)> = vec![
        // SSE pool: 0.4·0.95 + 0.3·(1 − 100/500) + 0.2·(1 − 0.02) − 0.1·200/1000 = 0.796.
        (sse_pool(0.95, 100.0, 0.02, 200.0), "sse-pool", 79.6),
        // A perfect pool without backlog scores 90 (the weights sum to 0.9 before the penalty).
        (sse_pool(1.0, 0.0, 0.0, 0.0), "sse-pool", 90.0),
        // Everything bad: 0 + 0 + 0 − 0.1 → clamped to 0.
        (sse_pool(0.0, 900.0, 1.0, 5000.0), "sse-pool", 0.0),
        // Connection health: 0.4·(1 − 50/500) + 0.35·(1 − 1/5) + 0.25·e^(−10·0.1).
        (
            connection_health(50.0, 1.0, 0.1),
            "connection-health",
            100.0 * (0.36 + 0.28 + 0.25 * (-1.0f64).exp()),
        ),
        // FIN/RST rate beyond 5 is 1 − min(1, f/5) = 0: 0.4·1 + 0 + 0.25·1.
        (connection_health(0.0, 12.0, 0.0), "connection-health", 65.0),
    ];
    for (i, (entries, service, want)) in cases.into_iter().enumerate() {
        let got = score_of(&evaluate(&r, &states(&entries), t0()), service);
        assert!(
            close(got, want),
            "case {i} {service}: got {got}, want {want}"
        );
    }
}

#[test]
fn a_weighted_component_without_a_value_counts_zero_and_says_so() {
    let r = rules(WEIGHTED_RULES);
    let st = states(&[
        ("rtt-ms", valued(50.0)),
        ("fin-rst-rate", state(Status::Error, Some(2), None)),
    ]);
    let scores = evaluate(&r, &st, t0());
    let conn = scores
        .iter()
        .find(|s| s.service == "connection-health")
        .unwrap();
    assert!(close(conn.score, 36.0), "only the RTT term: {}", conn.score);
    let terms = conn.details["terms"].as_array().unwrap();
    assert_eq!(terms[1]["missing"], true, "{}", terms[1]);
    assert_eq!(terms[1]["status"], "error", "{}", terms[1]);
    assert_eq!(terms[2]["missing"], true, "{}", terms[2]);
    assert!(terms[2]["status"].is_null(), "never ran: {}", terms[2]);
    assert!(terms[0].get("missing").is_none());
    assert!(conn.has_data());
    assert_eq!(conn.model, ScoreModel::Weighted);
    let text = table(&scores);
    let row = text
        .lines()
        .find(|l| l.contains("connection-health"))
        .unwrap();
    assert!(
        row.contains("fin-rst-rate error: no value")
            && row.contains("syn-retrans-rate: no value yet"),
        "{row}"
    );
}

#[test]
fn a_weighted_service_whose_checks_all_fail_to_measure_scores_zero_with_data() {
    let r = rules(WEIGHTED_RULES);
    let down = || state(Status::Error, Some(1), None);
    let st = states(&[
        ("rtt-ms", down()),
        ("fin-rst-rate", down()),
        ("syn-retrans-rate", down()),
    ]);
    let scores = evaluate(&r, &st, t0());
    let conn = scores
        .iter()
        .find(|s| s.service == "connection-health")
        .unwrap();
    assert_eq!(conn.score, 0.0);
    assert!(
        conn.has_data(),
        "a service that is down is not a service without data"
    );
}

#[test]
fn services_come_from_config_and_checks_and_overall_averages_those_with_data() {
    let r = rules(&format!(
        "{WEIGHTED_RULES}  quiet: {{}}\n  extra:\n    low_score: {{below: 50}}\n"
    ));
    let st = states(&connection_health(0.0, 0.0, 0.0));
    let scores = evaluate(&r, &st, t0());
    let names: Vec<&str> = scores.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        names,
        ["connection-health", "extra", "quiet", "sse-pool", OVERALL]
    );
    // sse-pool has its rtt term only (30); connection health is perfect (100); quiet and extra
    // have no checks at all, so no data, and stay out of the mean.
    assert!(close(score_of(&scores, "sse-pool"), 30.0));
    assert!(!scores[1].has_data() && !scores[2].has_data());
    assert!(close(score_of(&scores, OVERALL), 65.0));
    assert_eq!(scores[4].model_name(), "overall");

    let nothing = evaluate(&r, &HashMap::new(), t0());
    let overall = nothing.last().unwrap();
    assert!(!overall.has_data(), "{}", overall.details);
}

const LOW_RULES: &str = r#"
checks:
  - {name: a, kind: tcp, address: "127.0.0.1:1", service: shop}
services:
  shop:
    low_score: {below: 70, times: 3}
  calm: {}
"#;

fn scored(service: &str, score: f64) -> ServiceScore {
    ServiceScore {
        service: service.into(),
        score,
        model: ScoreModel::Penalty,
        details: serde_json::json!({ "terms": [] }),
        at: t0(),
    }
}

#[test]
fn a_low_streak_fires_once_when_it_reaches_times_and_again_only_after_recovery() {
    let r = rules(LOW_RULES);
    let mut watch = LowScoreWatch::new();
    let mut no_data = scored("shop", 0.0);
    no_data.details["no_data"] = true.into();
    // (score of shop, events expected). 70 is not below 70.
    let steps: Vec<(ServiceScore, usize)> = vec![
        (scored("shop", 60.0), 0),
        (scored("shop", 65.0), 0),
        (no_data.clone(), 0),
        (scored("shop", 10.0), 1),
        (scored("shop", 10.0), 0),
        (scored("shop", 69.9), 0),
        (scored("shop", 70.0), 0),
        (scored("shop", 50.0), 0),
        (scored("shop", 50.0), 0),
        (scored("shop", 50.0), 1),
    ];
    for (i, (s, want)) in steps.into_iter().enumerate() {
        let events = watch.observe(&r, &[s.clone(), scored("calm", 0.0)]);
        assert_eq!(events.len(), want, "step {i}: {events:?}");
        if let Some(e) = events.first() {
            assert_eq!((e.service.as_str(), e.below, e.times), ("shop", 70.0, 3));
            assert_eq!(e.score, s.score);
        }
    }
    assert_eq!(watch.streak("shop"), 3);
    assert_eq!(watch.streak("calm"), 0, "no low_score rule, no streak");
}

#[test]
fn a_streak_is_forgotten_when_its_rule_goes_away() {
    let mut watch = LowScoreWatch::new();
    let before = rules(LOW_RULES);
    watch.observe(&before, &[scored("shop", 1.0)]);
    watch.observe(&before, &[scored("shop", 1.0)]);
    let after = rules(&LOW_RULES.replace("low_score: {below: 70, times: 3}", "{}"));
    assert!(watch.observe(&after, &[scored("shop", 1.0)]).is_empty());
    assert_eq!(watch.streak("shop"), 0);
    let events = watch.observe(&before, &[scored("shop", 1.0)]);
    assert!(events.is_empty(), "the streak restarted from 1");
}

fn result(check: &str, series: &str, status: Status, value: Option<f64>, at: i64) -> CheckResult {
    CheckResult {
        started_at: t0() + minutes(at),
        run_id: format!("run-{at}"),
        ..CheckResult::new(check, series, status, value.map(Value::Num))
    }
}

#[test]
fn states_take_the_worst_status_and_the_mean_value_over_series() {
    let folded = check_states_from(
        &[
            result("a", "x", Status::Ok, Some(1.0), 0),
            result("a", "y", Status::Warn, Some(4.0), 0),
            result("a", "z", Status::Error, None, 0),
            result("b", "", Status::Ok, Some(7.0), 0),
            result("c", "", Status::Skipped, Some(7.0), 0),
        ],
        &HashMap::new(),
    );
    let a = &folded["a"];
    assert_eq!(a.status, Status::Error);
    assert_eq!(a.value, Some(2.5));
    assert_eq!(a.failing_since, Some(t0()));
    assert_eq!(folded["b"].failing_since, None);
    assert!(!folded.contains_key("c"), "skipped says nothing");
}

#[test]
fn failing_since_is_kept_while_failing_and_cleared_on_recovery() {
    let mut st = HashMap::new();
    // (minute, status, failing_since expected in minutes after t0)
    let steps = [
        (0, Status::Ok, None),
        (1, Status::Crit, Some(1)),
        (2, Status::Error, Some(1)),
        (3, Status::Crit, Some(1)),
        (4, Status::Warn, None),
        (5, Status::Crit, Some(5)),
    ];
    for (m, status, want) in steps {
        st = check_states_from(&[result("a", "", status, Some(1.0), m)], &st);
        let got = st["a"].failing_since;
        assert_eq!(got, want.map(|w| t0() + minutes(w)), "minute {m}");
        assert_eq!(st["a"].at, t0() + minutes(m));
    }
    // Folding an older run, or the same run again, changes nothing.
    let again = check_states_from(&[result("a", "", Status::Crit, Some(1.0), 5)], &st);
    assert_eq!(again, st);
    let older = check_states_from(&[result("a", "", Status::Ok, Some(9.0), 2)], &st);
    assert_eq!(older, st);
}

#[test]
fn runs_in_one_batch_fold_in_time_order() {
    // Given out of order: crit at 0, crit at 1, ok at 2 → recovered, the newest value.
    let folded = check_states_from(
        &[
            result("a", "", Status::Crit, Some(1.0), 0),
            result("a", "", Status::Ok, Some(3.0), 2),
            result("a", "", Status::Crit, Some(2.0), 1),
        ],
        &HashMap::new(),
    );
    assert_eq!(folded["a"].status, Status::Ok);
    assert_eq!(folded["a"].value, Some(3.0));
    assert_eq!(folded["a"].failing_since, None);
    // A streak spanning the batch started at its first failing run, not its last.
    let folded = check_states_from(
        &[
            result("a", "", Status::Crit, Some(1.0), 4),
            result("a", "", Status::Ok, Some(3.0), 2),
            result("a", "", Status::Error, None, 3),
        ],
        &HashMap::new(),
    );
    assert_eq!(folded["a"].status, Status::Crit);
    assert_eq!(folded["a"].failing_since, Some(t0() + minutes(3)));
}

#[test]
fn touched_services_include_weighted_services_fed_by_the_checks() {
    let own = "checks:\n  - {name: own, kind: tcp, address: '127.0.0.1:1', service: mine}\n";
    let r = rules(&WEIGHTED_RULES.replacen("checks:\n", own, 1));
    let touched = touched_services(&r, &[result("fin-rst-rate", "", Status::Ok, None, 0)]);
    assert_eq!(
        touched.into_iter().collect::<Vec<_>>(),
        ["connection-health"]
    );
    let touched = touched_services(
        &r,
        &[
            result("rtt-ms", "", Status::Ok, None, 0),
            result("own", "", Status::Ok, None, 0),
        ],
    );
    assert_eq!(
        touched.into_iter().collect::<Vec<_>>(),
        ["connection-health", "mine", "sse-pool"]
    );
}

#[test]
fn the_table_explains_low_scores() {
    let r = rules(PENALTY_RULES);
    let scores = evaluate(&r, &states(&[("big", crit_for(15))]), t0());
    let text = table(&scores);
    assert!(text.contains("SERVICE"), "{text}");
    let orders = text.lines().find(|l| l.contains("orders")).unwrap();
    assert!(
        orders.contains("60.0") && orders.contains("big crit 15m −40"),
        "{orders}"
    );
    let billing = text.lines().find(|l| l.contains("billing")).unwrap();
    assert!(billing.contains("no data yet"), "{billing}");
    assert!(
        text.lines()
            .any(|l| l.contains("overall") && l.contains("60.0")),
        "{text}"
    );
}
