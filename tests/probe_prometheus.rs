//! `kind: prometheus` against a real Prometheus (Debian `prometheus` 2.42, started per test with
//! its TSDB in a temporary directory, scraping exporters the test serves every second): series
//! keyed per instance, per label set and per chosen labels; scalars and strings; NaN and
//! infinities; empty results and `expect.series`; range queries reduced by avg/max/min/last
//! over an exact sample history; Prometheus' own errors (syntax, execution, range vectors);
//! basic auth (Prometheus' `--web.config.file`), bearer token and tenant header (through an
//! authenticating proxy under a route prefix, which also shows long queries going by POST),
//! TLS with a private CA; refused connections, servers that are not Prometheus, stalls; and
//! problems found when the rules load.

mod net_support;
mod prometheus_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use net_support::{Rules, TestCa, assert_contains, closed_port, measure, run, serve_http, verdict};
use patrol::config::{Check, Diagnostic};
use patrol::result::{Status, Value};
use prometheus_support::{
    AuthProxy, Exporter, JOB, Prometheus, WEB_PASSWORD, WEB_USER, WebConfig, judge_all, unix_now,
};

/// Rules with the target `prom` (its YAML fields after `kind: prometheus`, `${env:PROM}`
/// standing for `url`) and `checks` (the YAML of the `checks:` list).
fn rules(url: &str, target_fields: &str, checks: &str) -> Rules {
    Rules::new().env("PROM", url).file(
        "rules.yaml",
        &format!(
            "targets:\n  prom: {{ kind: prometheus, url: \"${{env:PROM}}\"{target_fields} }}\nchecks:\n{checks}"
        ),
    )
}

/// One `checks:` item querying `prom`: `name`, `query` and further flow-mapping fields.
fn item(name: &str, query: &str, extra: &str) -> String {
    format!(
        "  - {{ name: {name}, kind: prometheus, target: prom, timeout: 5s, query: {query:?}{extra} }}\n"
    )
}

/// Series key → value of a check's measurement; an error fails the test.
async fn values_of(check: &Check) -> BTreeMap<String, Value> {
    let m = measure(check)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", check.common.name));
    m.samples.into_iter().map(|s| (s.series, s.value)).collect()
}

/// The error a check's run ends in; a measurement fails the test.
async fn error_of(check: &Check) -> String {
    match measure(check).await {
        Ok(m) => panic!("{}: measured {m:?}", check.common.name),
        Err(e) => e.0,
    }
}

fn num(n: f64) -> Value {
    Value::Num(n)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[tokio::test]
async fn each_instance_is_a_series_keyed_by_its_address() {
    let a = Exporter::start("# TYPE patrol_load gauge\npatrol_load 0.5\n").await;
    let b = Exporter::start("# TYPE patrol_load gauge\npatrol_load 2.5\n").await;
    let prom = Prometheus::scraping(&[&a, &b]).await;
    prom.wait_for_series("patrol_load", 2).await;
    let rules = rules(
        &prom.url,
        "",
        &item("load", "patrol_load", ", series: instance, crit: gt(2)"),
    );
    let check = rules.check("load");

    let mut results = judge_all(&check, measure(&check).await);
    results.sort_by(|x, y| x.series.cmp(&y.series));
    let mut expected = vec![
        (a.instance(), Some(num(0.5)), Status::Ok),
        (b.instance(), Some(num(2.5)), Status::Crit),
    ];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    let got: Vec<_> = results
        .iter()
        .map(|r| (r.series.clone(), r.value.clone(), r.status))
        .collect();
    assert_eq!(got, expected);

    // The value measured is the current one: b recovers.
    b.set("# TYPE patrol_load gauge\npatrol_load 1.25\n");
    let instance_b = b.instance();
    prom.wait_until(&format!("patrol_load{{instance=\"{instance_b}\"}}"), |r| {
        r[0]["value"][1] == "1.25"
    })
    .await;
    let values = values_of(&check).await;
    assert_eq!(values.get(&instance_b), Some(&num(1.25)), "{values:?}");
    assert_eq!(values.get(&a.instance()), Some(&num(0.5)), "{values:?}");
}

const QUEUES: &str = "# TYPE patrol_queue_depth gauge\n\
    patrol_queue_depth{queue=\"mail\",shard=\"1\"} 5\n\
    patrol_queue_depth{queue=\"sms\",shard=\"2\"} 7\n";

#[tokio::test]
async fn label_sets_scalars_and_strings_name_their_series() {
    let exporter = Exporter::start(QUEUES).await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    prom.wait_for_series("patrol_queue_depth", 2).await;
    let checks = [
        item("raw", "patrol_queue_depth", ""),
        item("by_queue", "sum by (queue) (patrol_queue_depth)", ""),
        item("pairs", "patrol_queue_depth", ", series: [queue, shard]"),
        item("total", "sum(patrol_queue_depth)", ""),
        item("as_scalar", "scalar(sum(patrol_queue_depth))", ""),
        item("literal", "\"v2\"", ""),
        item("clash", "patrol_queue_depth", ", series: job"),
    ]
    .concat();
    let rules = rules(&prom.url, "", &checks);
    let instance = exporter.instance();

    let raw = values_of(&rules.check("raw")).await;
    let full = |queue: &str, shard: &str| {
        format!(
            "patrol_queue_depth{{instance=\"{instance}\",job=\"{JOB}\",queue=\"{queue}\",shard=\"{shard}\"}}"
        )
    };
    assert_eq!(
        raw,
        BTreeMap::from([(full("mail", "1"), num(5.0)), (full("sms", "2"), num(7.0))])
    );
    assert_eq!(
        values_of(&rules.check("by_queue")).await,
        BTreeMap::from([
            ("{queue=\"mail\"}".to_string(), num(5.0)),
            ("{queue=\"sms\"}".to_string(), num(7.0))
        ])
    );
    assert_eq!(
        values_of(&rules.check("pairs")).await,
        BTreeMap::from([
            ("queue=mail,shard=1".to_string(), num(5.0)),
            ("queue=sms,shard=2".to_string(), num(7.0))
        ])
    );
    for name in ["total", "as_scalar"] {
        assert_eq!(
            values_of(&rules.check(name)).await,
            BTreeMap::from([(String::new(), num(12.0))]),
            "{name}"
        );
    }
    assert_eq!(
        values_of(&rules.check("literal")).await,
        BTreeMap::from([(String::new(), text("v2"))])
    );

    // Two series sharing a key would feed one baseline two things: refused, both named.
    let err = error_of(&rules.check("clash")).await;
    assert_contains(&err, &format!("both have the key \"{JOB}\""));
    assert_contains(&err, &full("mail", "1"));
    assert_contains(&err, &full("sms", "2"));
}

#[tokio::test]
async fn nan_and_infinities_are_values_conditions_understand() {
    let exporter = Exporter::start(QUEUES).await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    prom.wait_for_series("patrol_queue_depth", 2).await;
    // An inline url: a Prometheus without credentials needs no target.
    let yaml = |name: &str, query: &str| {
        format!(
            "checks:\n  - {{ name: {name}, kind: prometheus, url: \"{}\", query: {query:?}, series: queue, crit: gt(1000) }}\n",
            prom.url
        )
    };
    for (query, expected, status) in [
        ("patrol_queue_depth / 0", "+Inf", Status::Crit),
        ("-patrol_queue_depth / 0", "-Inf", Status::Ok),
        (
            "(patrol_queue_depth - patrol_queue_depth) / 0",
            "NaN",
            Status::Ok,
        ),
    ] {
        let rules = Rules::new().file("r.yaml", &yaml("ratio", query));
        let check = rules.check("ratio");
        let results = judge_all(&check, measure(&check).await);
        let got: Vec<_> = results
            .iter()
            .map(|r| (r.series.as_str(), r.value.clone(), r.status))
            .collect();
        let want = |queue| (queue, Some(text(expected)), status);
        assert!(
            got == vec![want("mail"), want("sms")] || got == vec![want("sms"), want("mail")],
            "{query}: {got:?}"
        );
    }
}

#[tokio::test]
async fn empty_results_are_ok_unless_series_are_expected() {
    let exporter = Exporter::start(QUEUES).await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    prom.wait_for_series("patrol_queue_depth", 2).await;
    let checks = [
        item("quiet", "patrol_queue_depth{queue=\"fax\"}", ""),
        item(
            "must_report",
            "patrol_queue_depth{queue=\"fax\"}",
            ", expect: { series: ge(1) }",
        ),
        item(
            "both_report",
            "patrol_queue_depth",
            ", series: queue, expect: { series: eq(2) }",
        ),
        item(
            "three_report",
            "patrol_queue_depth",
            ", series: queue, expect: { series: ge(3) }",
        ),
    ]
    .concat();
    let rules = rules(&prom.url, "", &checks);

    let quiet = run(&rules.check("quiet")).await;
    assert_eq!(
        (quiet.status, quiet.message.as_str()),
        (Status::Ok, "no value measured")
    );
    let missing = run(&rules.check("must_report")).await;
    assert_eq!(
        (missing.status, missing.message.as_str()),
        (Status::Crit, "expect.series: 0 series, expected ge(1)")
    );
    let check = rules.check("both_report");
    let results = judge_all(&check, measure(&check).await);
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| r.status == Status::Ok),
        "{results:?}"
    );
    let check = rules.check("three_report");
    let results = judge_all(&check, measure(&check).await);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.status, Status::Crit, "{r:?}");
        assert_contains(&r.message, "expect.series: 2 series, expected ge(3)");
    }
}

#[tokio::test]
async fn range_aggregates_reduce_each_series_over_the_window() {
    // An exact history: four samples per series, 60 s apart, from 15 minutes ago, at half
    // seconds (a step never lands on one). At each step Prometheus takes the latest sample at
    // most 5 minutes old (--query.lookback-delta=5m), so the first three samples are each seen
    // for 60 s of steps and the last for 300 s: weights 1:1:1:5 whatever step divides 60 s.
    let first_ms = (unix_now() - 900) * 1000 + 500;
    let history = |host: &str, values: [&str; 4]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let at = first_ms + k as u64 * 60_000;
                format!("patrol_load{{host=\"{host}\"}} {v} {at}\n")
            })
            .collect()
    };
    let exporter = Exporter::start(&format!(
        "# TYPE patrol_load gauge\n{}{}{}",
        history("a", ["10", "20", "40", "30"]),
        history("b", ["4", "8", "6", "2"]),
        history("c", ["NaN", "2", "4", "4"]),
    ))
    .await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    prom.wait_until("count_over_time(patrol_load[30m])", |r| {
        r.as_array()
            .is_some_and(|a| a.len() == 3 && a.iter().all(|s| s["value"][1] == "4"))
    })
    .await;
    let range = |aggregate: &str, step: &str| {
        format!(", series: host, range: {{ window: 20m, {step}aggregate: {aggregate} }}")
    };
    let checks = [
        item("avg", "patrol_load", &range("avg", "step: 60s, ")),
        item("max", "patrol_load", &range("max", "step: 60s, ")),
        item("min", "patrol_load", &range("min", "step: 60s, ")),
        item("last", "patrol_load", &range("last", "step: 60s, ")),
        // The default step of a 20m window is 20s: three steps per minute, same weights.
        item("avg_default_step", "patrol_load", &range("avg", "")),
        item("now", "patrol_load", ", series: host"),
    ]
    .concat();
    let rules = rules(&prom.url, "", &checks);

    // c's NaN is skipped: (2 + 4 + 4·5) / 7.
    let c_avg = 26.0 / 7.0;
    for name in ["avg", "avg_default_step"] {
        let values = values_of(&rules.check(name)).await;
        assert_eq!(values["a"], num(27.5), "{name}: (10 + 20 + 40 + 30·5) / 8");
        assert_eq!(values["b"], num(3.5), "{name}: (4 + 8 + 6 + 2·5) / 8");
        let Value::Num(c) = values["c"] else {
            panic!("{name}: {values:?}")
        };
        assert!((c - c_avg).abs() < 1e-9, "{name}: {c}");
    }
    for (name, a, b, c) in [
        ("max", 40.0, 8.0, 4.0),
        ("min", 10.0, 2.0, 2.0),
        ("last", 30.0, 2.0, 4.0),
    ] {
        assert_eq!(
            values_of(&rules.check(name)).await,
            BTreeMap::from([
                ("a".to_string(), num(a)),
                ("b".to_string(), num(b)),
                ("c".to_string(), num(c))
            ]),
            "{name}"
        );
    }
    // At this instant the samples are older than the lookback: nothing to measure.
    assert!(values_of(&rules.check("now")).await.is_empty());
}

#[tokio::test]
async fn prometheus_errors_are_shown_in_its_own_words() {
    let exporter = Exporter::start(QUEUES).await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    prom.wait_for_series("patrol_queue_depth", 2).await;
    let checks = [
        item("syntax", "sum(patrol_queue_depth", ""),
        item(
            "syntax_range",
            "rate(patrol_queue_depth[5x])",
            ", range: { window: 10m, aggregate: max }",
        ),
        // Both series have job="exporter": many-to-many matching fails while evaluating.
        item(
            "execution",
            "patrol_queue_depth + on(job) patrol_queue_depth",
            "",
        ),
        item("matrix", "patrol_queue_depth[1m]", ""),
    ]
    .concat();
    let rules = rules(&prom.url, "", &checks);

    let check = rules.check("syntax");
    let message = error_of(&check).await;
    assert!(
        message
            .starts_with("Prometheus rejected the query (bad_data): invalid parameter \"query\": "),
        "{message}"
    );
    assert_contains(&message, "unclosed left parenthesis");
    assert_eq!(verdict(&check, measure(&check).await).0, Status::Error);

    let message = error_of(&rules.check("syntax_range")).await;
    assert!(
        message.starts_with("Prometheus rejected the query (bad_data): "),
        "{message}"
    );
    assert_contains(&message, "parse error");

    let message = error_of(&rules.check("execution")).await;
    assert!(
        message.starts_with("Prometheus could not run the query (execution): "),
        "{message}"
    );
    assert_contains(&message, "duplicate series");

    let message = error_of(&rules.check("matrix")).await;
    assert!(
        message.starts_with("the query returns a range vector"),
        "{message}"
    );
    assert_contains(&message, "`range:`");
}

#[tokio::test]
async fn basic_auth_users_of_prometheus_web_config() {
    let web = WebConfig {
        basic_auth: true,
        tls: None,
    };
    let prom = Prometheus::start(&[], web, None).await;
    let host = prom.host_port();
    let check_with = |name: &str, target_fields: &str, env: (&str, &str)| {
        rules(&prom.url, target_fields, &item(name, "vector(42)", ""))
            .env(env.0, env.1)
            .check(name)
    };
    let auth = ", basic_auth: { username: patrol, password: \"${env:PROM_PASSWORD}\" }";

    let check = check_with("right", auth, ("PROM_PASSWORD", WEB_PASSWORD));
    assert_eq!(
        values_of(&check).await,
        BTreeMap::from([(String::new(), num(42.0))])
    );

    let wrong_password = "not-the-password-7f3a";
    let check = check_with("wrong", auth, ("PROM_PASSWORD", wrong_password));
    let (status, message) = verdict(&check, measure(&check).await);
    assert_eq!(status, Status::Error);
    assert_eq!(
        message,
        format!(
            "authentication failed: {host} answered HTTP 401 Unauthorized to the basic_auth given: \"Unauthorized\""
        )
    );
    assert!(!message.contains(wrong_password));

    let check = check_with("none", "", ("UNUSED", ""));
    assert_eq!(
        error_of(&check).await,
        format!(
            "authentication failed: {host} answered HTTP 401 Unauthorized and the target gives no credentials (bearer_token, basic_auth or headers): \"Unauthorized\""
        )
    );

    // Credentials in an inline URL are sent too, and never shown.
    let url = prom
        .url
        .replace("://", &format!("://{WEB_USER}:{WEB_PASSWORD}@"));
    let rules = Rules::new().env("PROM_URL", &url).file(
        "r.yaml",
        "checks:\n  - { name: inline, kind: prometheus, url: \"${env:PROM_URL}\", query: vector(7) }\n",
    );
    let check = rules.check("inline");
    assert_eq!(
        values_of(&check).await,
        BTreeMap::from([(String::new(), num(7.0))])
    );
    assert!(!check.target.as_ref().unwrap().name.contains(WEB_PASSWORD));
}

#[tokio::test]
async fn bearer_token_and_tenant_header_reach_a_proxy_under_a_route_prefix() {
    let exporter = Exporter::start(QUEUES).await;
    let prom = Prometheus::scraping(&[&exporter]).await;
    // The range query ends at a whole second: it sees series a few scrapes old.
    prom.wait_for_samples("patrol_queue_depth", 2, 3).await;
    let token = "tok-5f0c9d1e";
    let proxy = AuthProxy::start(&prom, token, "team-a").await;
    let host = proxy.url.split('/').nth(2).unwrap().to_string();
    // 1,500 times ` + 0`: a query too long for a URL behind most proxies.
    let long_query = format!("sum(patrol_queue_depth){}", " + 0".repeat(1500));
    let fields = |token_ref: &str| {
        format!(", bearer_token: \"{token_ref}\", headers: {{ X-Scope-OrgID: team-a }}")
    };
    let rules_with = |token_value: &str, checks: &str| {
        rules(&proxy.url, &fields("${env:PROM_TOKEN}"), checks).env("PROM_TOKEN", token_value)
    };
    let checks = [
        item("short", "sum(patrol_queue_depth)", ""),
        item("long", &long_query, ""),
        item(
            "ranged",
            "sum(patrol_queue_depth)",
            ", range: { window: 1m, step: 10s, aggregate: last }",
        ),
    ]
    .concat();
    let rules = rules_with(token, &checks);
    for name in ["short", "long", "ranged"] {
        assert_eq!(
            values_of(&rules.check(name)).await,
            BTreeMap::from([(String::new(), num(12.0))]),
            "{name}"
        );
    }
    assert_eq!(
        proxy.forwarded(),
        vec![
            "GET /api/v1/query".to_string(),
            "POST /api/v1/query".to_string(),
            "GET /api/v1/query_range".to_string(),
        ]
    );

    let wrong = "tok-wrong-77aa";
    let check = rules_with(wrong, &item("denied", "vector(1)", "")).check("denied");
    let message = error_of(&check).await;
    assert_eq!(
        message,
        format!(
            "authentication failed: {host} answered HTTP 403 Forbidden to the bearer_token given: \"token not allowed\""
        )
    );
    assert!(!message.contains(wrong) && !message.contains(token));
    assert_eq!(proxy.forwarded().len(), 3, "nothing more was forwarded");
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    patrol::install_crypto_provider();
    let ca = TestCa::new();
    let leaf = ca.leaf(30);
    let web = WebConfig {
        basic_auth: false,
        tls: Some((leaf.chain_pem(), leaf.key_pem())),
    };
    let prom = Prometheus::start(&[], web, Some(&ca.pem())).await;
    assert!(prom.url.starts_with("https://127.0.0.1:"));
    let checks = |name: &str| item(name, "vector(3)", "");
    let trusted = rules(&prom.url, ", tls: { ca_file: ca.pem }", &checks("trusted"))
        .file("ca.pem", &ca.pem());
    assert_eq!(
        values_of(&trusted.check("trusted")).await,
        BTreeMap::from([(String::new(), num(3.0))])
    );
    let skipping = rules(
        &prom.url,
        ", tls: { insecure_skip_verify: true }",
        &checks("skip"),
    );
    assert_eq!(
        values_of(&skipping.check("skip")).await,
        BTreeMap::from([(String::new(), num(3.0))])
    );
    let untrusted = rules(&prom.url, "", &checks("untrusted"));
    let message = error_of(&untrusted.check("untrusted")).await;
    assert!(
        message.starts_with(&format!("cannot query {}: ", prom.host_port())),
        "{message}"
    );
    assert_contains(&message.to_lowercase(), "certificate");
}

#[tokio::test]
async fn unreachable_stalled_and_foreign_servers_are_errors_that_say_so() {
    patrol::install_crypto_provider();
    let port = closed_port().await;
    let foreign =
        serve_http(Router::new().route("/", get(|| async { "<html>hello</html>" }))).await;
    let stalled = serve_http(Router::new().route(
        "/api/v1/query",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "{}"
        }),
    ))
    .await;
    let at = |name: &str, url: String| {
        Rules::new().file(
            "r.yaml",
            &format!(
                "targets:\n  prom: {{ kind: prometheus, url: \"{url}\" }}\nchecks:\n{}",
                item(name, "up", "").replace("timeout: 5s", "timeout: 1s")
            ),
        )
    };

    let refused = at("refused", format!("http://127.0.0.1:{port}"));
    let message = error_of(&refused.check("refused")).await;
    assert!(
        message.starts_with(&format!("cannot query 127.0.0.1:{port}: ")),
        "{message}"
    );
    assert_contains(&message.to_lowercase(), "refused");

    let not_prometheus = at("foreign", format!("http://{foreign}/"));
    assert_eq!(
        error_of(&not_prometheus.check("foreign")).await,
        format!(
            "{foreign} answered HTTP 404 Not Found without Prometheus API JSON; is the target's url \
             the base of the Prometheus API? (/api/v1/query under it was not found)"
        )
    );

    let stalling = at("stalled", format!("http://{stalled}"));
    let started = Instant::now();
    let message = error_of(&stalling.check("stalled")).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(message, format!("query to {stalled} timed out after 1s"));
}

/// The diagnostics of a rule file that must not load, as `line: message`.
fn load_problems(yaml: &str) -> Vec<String> {
    let diags: Vec<Diagnostic> = Rules::new()
        .file("r.yaml", yaml)
        .try_load()
        .expect_err("the rules must not load");
    diags
        .iter()
        .map(|d| format!("{}: {}", d.line, d.message))
        .collect()
}

#[test]
fn problems_are_found_when_the_rules_load() {
    let yaml = "\
targets:
  prom:
    kind: prometheus
    url: http://127.0.0.1:9090
    bearer_token: tok-abcdef
    basic_auth: { username: patrol, password: pw-abcdef }
  db: { kind: postgres, url: \"postgres://x@127.0.0.1/db\" }
checks:
  - { name: empty, kind: prometheus, target: prom, query: \" \" }
  - { name: labels, kind: prometheus, target: prom, query: up, series: [instance, 2nd] }
  - { name: short, kind: prometheus, target: prom, query: up, range: { window: 30s, step: 1m, aggregate: avg } }
  - { name: dense, kind: prometheus, target: prom, query: up, range: { window: 7d, step: 10s, aggregate: max } }
  - { name: agg, kind: prometheus, target: prom, query: up, range: { window: 10m, aggregate: mean } }
  - { name: cond, kind: prometheus, target: prom, query: up, expect: { series: gt(x) } }
  - { name: wrong_target, kind: prometheus, target: db, query: up }
";
    let problems = load_problems(yaml);
    let expect = |line: u32, part: &str| {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{line}: ")) && p.contains(part)),
            "line {line}, {part:?} not in {problems:#?}"
        );
    };
    expect(6, "set either `bearer_token` or `basic_auth`, not both");
    expect(9, "query is empty");
    expect(10, "\"2nd\" is not a label name");
    expect(11, "range.window (30s) must be longer than range.step (1m)");
    expect(
        12,
        "more than the 11000 Prometheus answers; use a step of at least 55s",
    );
    expect(13, "unknown variant `mean`");
    expect(14, "gt(x)");
    expect(
        15,
        "a prometheus check cannot use target `db` of kind postgres",
    );
    for p in &problems {
        assert!(!p.contains("pw-abcdef") && !p.contains("tok-abcdef"), "{p}");
    }
}
