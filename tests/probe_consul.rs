//! `kind: consul` against an in-process Consul server (tests/consul_support: Debian has no
//! `consul` package, so the server speaks the real Consul HTTP API shapes for KV, health and
//! status, with blocking queries), and the fake's own behaviour.

mod consul_support;
mod net_support;

use std::time::{Duration, Instant};

use consul_support::FakeConsul;
use serde_json::Value;

/// A plain HTTP client for asking the fake directly.
fn http() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET `path` on `consul`: status, `X-Consul-Index`, body.
async fn get(consul: &FakeConsul, path: &str) -> (u16, u64, String) {
    let response = http()
        .get(format!("{}{path}", consul.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let index = response.headers()["x-consul-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (status, index, response.text().await.unwrap())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

mod fake_consul {
    use super::*;

    #[tokio::test]
    async fn kv_get_answers_consul_entries_with_base64_values_and_the_key_index() {
        let consul = FakeConsul::start().await;
        let first = consul.put("app/limit", b"42");
        let second = consul.put("app/limit", b"43");
        assert_eq!(second, first + 1, "one global raft counter");
        let (status, index, body) = get(&consul, "/v1/kv/app/limit").await;
        assert_eq!((status, index), (200, second));
        let entry = &json(&body)[0];
        assert_eq!(entry["Key"], "app/limit");
        assert_eq!(entry["Value"], "NDM=", "base64 of 43");
        assert_eq!(entry["CreateIndex"], first);
        assert_eq!(entry["ModifyIndex"], second);
        assert_eq!(entry["LockIndex"], 0);
        assert_eq!(entry["Flags"], 0);
        let (_, _, raw) = get(&consul, "/v1/kv/app/limit?raw").await;
        assert_eq!(raw, "43");
    }

    #[tokio::test]
    async fn kv_recurse_and_keys_list_a_prefix_and_answer_404_when_empty() {
        let consul = FakeConsul::start().await;
        let index = consul.put_many(&[("rules/a.yaml", b"a"), ("rules/sub/b.yaml", b"b")]);
        consul.put("other", b"x");
        let (status, got, body) = get(&consul, "/v1/kv/rules/?recurse").await;
        assert_eq!((status, got), (200, index));
        let entries = json(&body);
        let keys: Vec<&str> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["rules/a.yaml", "rules/sub/b.yaml"]);
        let (_, _, listed) = get(&consul, "/v1/kv/rules/?keys&separator=/").await;
        assert_eq!(
            json(&listed),
            serde_json::json!(["rules/a.yaml", "rules/sub/"])
        );
        let (status, _, _) = get(&consul, "/v1/kv/nothing/?recurse").await;
        assert_eq!(status, 404);
        let (status, _, _) = get(&consul, "/v1/kv/missing").await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn writes_through_the_http_api_take_the_next_index() {
        let consul = FakeConsul::start().await;
        let before = consul.put("a", b"1");
        let put = http()
            .put(format!("{}/v1/kv/b", consul.url))
            .body("two")
            .send()
            .await
            .unwrap();
        assert_eq!(put.text().await.unwrap(), "true");
        assert_eq!(consul.index(), before + 1);
        let (_, _, raw) = get(&consul, "/v1/kv/b?raw").await;
        assert_eq!(raw, "two");
        http()
            .delete(format!("{}/v1/kv/b", consul.url))
            .send()
            .await
            .unwrap();
        assert_eq!(get(&consul, "/v1/kv/b").await.0, 404);
        assert_eq!(consul.index(), before + 2);
    }

    #[tokio::test]
    async fn a_blocking_query_returns_early_when_its_key_changes() {
        let consul = FakeConsul::start().await;
        let index = consul.put("app/limit", b"1");
        let writer = {
            let url = consul.url.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                http()
                    .put(format!("{url}/v1/kv/app/limit"))
                    .body("2")
                    .send()
                    .await
                    .unwrap();
            })
        };
        let started = Instant::now();
        let (status, new_index, body) =
            get(&consul, &format!("/v1/kv/app/limit?index={index}&wait=10s")).await;
        writer.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "answered before the write"
        );
        assert_eq!((status, new_index), (200, index + 1));
        assert_eq!(json(&body)[0]["Value"], "Mg==", "base64 of 2");
    }

    #[tokio::test]
    async fn a_blocking_query_times_out_at_wait_when_nothing_it_asked_changes() {
        let consul = FakeConsul::start().await;
        let index = consul.put("app/limit", b"1");
        let unrelated = {
            let url = consul.url.clone();
            tokio::spawn(async move {
                // Writes elsewhere raise the raft index but must not end the wait.
                for n in 0..5 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    http()
                        .put(format!("{url}/v1/kv/other/{n}"))
                        .body("x")
                        .send()
                        .await
                        .unwrap();
                }
            })
        };
        let started = Instant::now();
        let (status, same, _) = get(
            &consul,
            &format!("/v1/kv/app/limit?index={index}&wait=800ms"),
        )
        .await;
        let took = started.elapsed();
        unrelated.await.unwrap();
        assert!(took >= Duration::from_millis(780), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!((status, same), (200, index));
        assert!(consul.index() > index + 4);
    }

    #[tokio::test]
    async fn a_blocking_prefix_query_wakes_on_a_delete_under_the_prefix() {
        let consul = FakeConsul::start().await;
        consul.put("rules/a.yaml", b"a");
        let index = consul.put("rules/b.yaml", b"b");
        let deleter = {
            let url = consul.url.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                http()
                    .delete(format!("{url}/v1/kv/rules/a.yaml"))
                    .send()
                    .await
                    .unwrap();
            })
        };
        let started = Instant::now();
        let (_, new_index, body) = get(
            &consul,
            &format!("/v1/kv/rules/?recurse&index={index}&wait=10s"),
        )
        .await;
        deleter.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(new_index, index + 1);
        assert_eq!(json(&body).as_array().unwrap().len(), 1);
        assert!(
            consul
                .requests()
                .contains(&format!("GET /v1/kv/rules/?recurse&index={index}&wait=10s")),
            "{:?}",
            consul.requests()
        );
    }

    #[tokio::test]
    async fn an_index_already_passed_or_zero_answers_at_once() {
        let consul = FakeConsul::start().await;
        let index = consul.put("k", b"v");
        let started = Instant::now();
        assert_eq!(
            get(&consul, &format!("/v1/kv/k?index={}&wait=5s", index - 1))
                .await
                .1,
            index
        );
        assert_eq!(get(&consul, "/v1/kv/k?index=0&wait=5s").await.1, index);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(get(&consul, "/v1/kv/k?index=x").await.0, 400);
    }

    #[tokio::test]
    async fn health_lists_instances_with_node_and_service_checks_and_filters_passing() {
        let consul = FakeConsul::start().await;
        consul.register("web", "web-1", "node-a", 8080, "passing");
        consul.register("web", "web-2", "node-b", 8080, "warning");
        let index = consul.register("db", "db-1", "node-a", 5432, "critical");
        let (status, web_index, body) = get(&consul, "/v1/health/service/web").await;
        assert_eq!(status, 200);
        assert_eq!(web_index, index - 1, "the index of web's last change");
        let entries = json(&body);
        assert_eq!(entries.as_array().unwrap().len(), 2);
        assert_eq!(entries[0]["Service"]["ID"], "web-1");
        assert_eq!(entries[0]["Node"]["Node"], "node-a");
        assert_eq!(entries[1]["Checks"][0]["CheckID"], "serfHealth");
        assert_eq!(entries[1]["Checks"][1]["Status"], "warning");
        let (_, _, passing) = get(&consul, "/v1/health/service/web?passing").await;
        assert_eq!(json(&passing).as_array().unwrap().len(), 1);
        consul.set_node_health("node-a", "critical");
        let (_, _, after) = get(&consul, "/v1/health/service/web?passing").await;
        assert_eq!(json(&after), serde_json::json!([]));
        let (_, _, none) = get(&consul, "/v1/health/service/nothing").await;
        assert_eq!(json(&none), serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_blocking_health_query_wakes_on_its_service_only() {
        let consul = FakeConsul::start().await;
        let index = consul.register("web", "web-1", "node-a", 8080, "passing");
        consul.register("db", "db-1", "node-a", 5432, "passing");
        let waiting = tokio::spawn({
            let url = consul.url.clone();
            async move {
                let response = http()
                    .get(format!(
                        "{url}/v1/health/service/web?index={index}&wait=10s"
                    ))
                    .send()
                    .await
                    .unwrap();
                let index: u64 = response.headers()["x-consul-index"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                (index, json(&response.text().await.unwrap()))
            }
        });
        // The query is waiting once it has been received; a change to db must not end it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !consul
            .requests()
            .iter()
            .any(|r| r.contains("/health/service/web?index="))
        {
            assert!(Instant::now() < deadline, "the query never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        consul.deregister("db-1");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "woke on another service");
        let changed = consul.register("web", "web-1", "node-a", 8080, "critical");
        let (new_index, entries) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the query must wake on web's change")
            .unwrap();
        assert_eq!(new_index, changed);
        assert_eq!(entries[0]["Checks"][1]["Status"], "critical");
    }

    #[tokio::test]
    async fn status_reports_the_leader_or_an_empty_string() {
        let consul = FakeConsul::start().await;
        let (_, _, leader) = get(&consul, "/v1/status/leader").await;
        assert_eq!(json(&leader), "127.0.0.1:8300");
        consul.set_leader(None);
        let (_, _, none) = get(&consul, "/v1/status/leader").await;
        assert_eq!(none, "\"\"");
        let (_, _, peers) = get(&consul, "/v1/status/peers").await;
        assert_eq!(json(&peers), serde_json::json!(["127.0.0.1:8300"]));
    }

    #[tokio::test]
    async fn a_token_server_refuses_requests_without_the_token() {
        let consul = FakeConsul::start_with_token("s3cret").await;
        consul.put("k", b"v");
        let ask = |request: reqwest::RequestBuilder| async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        };
        let url = format!("{}/v1/kv/k?raw", consul.url);
        assert_eq!(ask(http().get(&url)).await, (403, "ACL not found".into()));
        assert_eq!(
            ask(http().get(&url).header("X-Consul-Token", "wrong")).await,
            (403, "ACL not found".into())
        );
        assert_eq!(
            ask(http().get(&url).header("X-Consul-Token", "s3cret")).await,
            (200, "v".into())
        );
        assert_eq!(
            ask(http().get(&url).bearer_auth("s3cret")).await,
            (200, "v".into())
        );
        assert_eq!(
            ask(http().get(format!("{url}&token=s3cret"))).await,
            (200, "v".into())
        );
        let status = format!("{}/v1/status/leader", consul.url);
        assert_eq!(
            ask(http().get(&status)).await.0,
            200,
            "status needs no token"
        );
    }

    #[tokio::test]
    async fn an_unknown_datacenter_has_no_path() {
        let consul = FakeConsul::start().await;
        consul.put("k", b"v");
        assert_eq!(get(&consul, "/v1/kv/k?dc=dc1").await.0, 200);
        let (status, _, body) = get(&consul, "/v1/kv/k?dc=eu-west").await;
        assert_eq!((status, body.as_str()), (500, "No path to datacenter"));
        consul.add_datacenter("eu-west");
        assert_eq!(get(&consul, "/v1/kv/k?dc=eu-west").await.0, 200);
    }

    #[tokio::test]
    async fn every_answer_carries_the_consul_headers() {
        let consul = FakeConsul::start().await;
        let response = http()
            .get(format!("{}/v1/status/leader", consul.url))
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-consul-knownleader"], "true");
        assert_eq!(headers["x-consul-lastcontact"], "0");
        assert!(headers.contains_key("x-consul-index"));
    }
}

/// `kind: consul` checks, measured and judged against the in-process Consul.
mod probe {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::Utc;
    use patrol::config::{Check, RuleSet};
    use patrol::engine::{Known, RunFacts, RunOptions, judge, run_checks, select_checks};
    use patrol::probe::memory::Memory;
    use patrol::probe::{Measurement, ProbeContext, ProbeError};
    use patrol::result::{CheckResult, Status, Value};
    use patrol::store::Store;

    use super::*;
    use crate::net_support::{Rules, closed_port, judged, measure, verdict};

    /// A token long enough to be masked, that no message may contain.
    const TOKEN: &str = "c0ffee-acl-token-7d1e";

    /// Rules with a target `consul` at `url` (plus `target_extra` fields, e.g.
    /// `, token: "${env:TOKEN}"`) and one check `c` with `check_fields`; `${env:TOKEN}` is [`TOKEN`].
    fn rules(url: &str, target_extra: &str, check_fields: &str) -> Rules {
        let yaml = format!(
            "targets:\n  consul: {{ kind: consul, url: \"${{env:URL}}\"{target_extra} }}\n\
             checks:\n  - {{ name: c, kind: consul, target: consul, {check_fields} }}\n"
        );
        Rules::new()
            .env("URL", url)
            .env("TOKEN", TOKEN)
            .file("rules.yaml", &yaml)
    }

    /// The check `c` against `consul` (see [`rules`]).
    fn check(consul: &FakeConsul, target_extra: &str, check_fields: &str) -> Arc<Check> {
        rules(&consul.url, target_extra, check_fields).check("c")
    }

    /// Measures `check` with `memory` as what its previous run left; the measurement and what
    /// this run leaves.
    async fn measure_remembering(
        check: &Check,
        memory: Option<serde_json::Value>,
    ) -> (Result<Measurement, ProbeError>, Option<serde_json::Value>) {
        let memory = Memory::new(memory);
        let ctx = ProbeContext {
            check,
            timeout: check.common.timeout,
            memory: &memory,
        };
        let outcome = check.probe.measure(&ctx).await;
        (outcome, memory.into_remembered())
    }

    /// Every result the engine makes of one measurement of `check`, by series.
    async fn results(check: &Check) -> BTreeMap<String, (Option<Value>, Status, String)> {
        let facts = RunFacts {
            run_id: "test-run",
            revision: "test",
            started_at: Utc::now(),
            duration_ms: 1.0,
        };
        let outcome = measure(check).await;
        judge(check, outcome, &Known::default(), &facts)
            .results
            .into_iter()
            .map(|r| (r.series, (r.value, r.status, r.message)))
            .collect()
    }

    fn num(n: f64) -> Option<Value> {
        Some(Value::Num(n))
    }

    fn text(s: &str) -> Option<Value> {
        Some(Value::Text(s.into()))
    }

    #[tokio::test]
    async fn a_numeric_value_is_a_number_judged_by_the_conditions() {
        let consul = FakeConsul::start().await;
        consul.put("app/limit", b"42\n");
        let c = check(&consul, "", "kv: {key: app/limit}, crit: gt(40)");
        let result = judged(&c, measure(&c).await);
        assert_eq!((result.value, result.status), (num(42.0), Status::Crit));
        consul.put("app/limit", b"7");
        let result = judged(&c, measure(&c).await);
        assert_eq!((result.value, result.status), (num(7.0), Status::Ok));
        assert!(
            consul
                .requests()
                .contains(&"GET /v1/kv/app/limit".to_string()),
            "{:?}",
            consul.requests()
        );
    }

    #[tokio::test]
    async fn a_text_value_is_text() {
        let consul = FakeConsul::start().await;
        consul.put("app/mode", b"maintenance");
        let c = check(
            &consul,
            "",
            "kv: {key: app/mode}, crit: eq(\"maintenance\")",
        );
        let result = judged(&c, measure(&c).await);
        assert_eq!(
            (result.value, result.status),
            (text("maintenance"), Status::Crit)
        );
        consul.put("app/mode", b"serving");
        assert_eq!(judged(&c, measure(&c).await).status, Status::Ok);
    }

    #[tokio::test]
    async fn a_missing_key_is_crit_naming_the_key() {
        let consul = FakeConsul::start().await;
        consul.put("app/other", b"1");
        let c = check(&consul, "", "kv: {key: app/limit}");
        let (status, message) = verdict(&c, measure(&c).await);
        assert_eq!(status, Status::Crit);
        let port = consul.url.rsplit(':').next().unwrap();
        assert_eq!(
            message,
            format!("key app/limit not found in Consul at 127.0.0.1:{port}")
        );
    }

    #[tokio::test]
    async fn the_age_grows_from_first_sight_and_restarts_when_the_key_is_written() {
        let consul = FakeConsul::start().await;
        consul.put("deploy/version", b"v1");
        let c = check(
            &consul,
            "",
            "kv: {key: deploy/version, value: age}, crit: gt(3600)",
        );
        let (first, memory) = measure_remembering(&c, None).await;
        let first = first.unwrap();
        assert_eq!(first.unit, "s");
        assert!(
            crate::net_support::number(&single_value(&first)) < 0.2,
            "{first:?}"
        );
        assert!(memory.is_some(), "the age needs the next run");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (second, memory) = measure_remembering(&c, memory).await;
        let second_age = crate::net_support::number(&single_value(&second.unwrap()));
        assert!((0.4..5.0).contains(&second_age), "{second_age}");
        consul.put("deploy/version", b"v2");
        let (third, _) = measure_remembering(&c, memory).await;
        let third_age = crate::net_support::number(&single_value(&third.unwrap()));
        assert!(third_age < 0.2, "a write restarts the age: {third_age}");
    }

    fn single_value(m: &Measurement) -> Option<Value> {
        crate::net_support::single(m).cloned()
    }

    #[tokio::test]
    async fn the_age_survives_between_runs_through_the_store() {
        let consul = FakeConsul::start().await;
        consul.put("deploy/version", b"v1");
        let rules = rules(
            &consul.url,
            "",
            "kv: {key: deploy/version, value: age}, crit: gt(3600)",
        );
        let set = rules.load();
        let store = format!("sqlite://{}", rules.path().join("patrol.db").display());
        let first = run_into(&store, &set).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = run_into(&store, &set).await;
        let (first, second) = (
            crate::net_support::number(&first.value),
            crate::net_support::number(&second.value),
        );
        assert!(first < 0.2, "{first}");
        assert!(
            second >= first + 0.4 && second < 5.0,
            "{first} then {second}"
        );
    }

    /// Runs the rules through the engine into the store at `url` (opened anew, as another
    /// `patrol run` would) and returns the result of `c`.
    async fn run_into(url: &str, rules: &RuleSet) -> CheckResult {
        let store = Store::open(url).await.unwrap();
        let checks = select_checks(rules, &[], &[]).unwrap();
        let outcome = run_checks(rules, &checks, &store, &RunOptions::default())
            .await
            .unwrap();
        let mut results: Vec<CheckResult> = outcome
            .results
            .into_iter()
            .filter(|r| r.check == "c")
            .collect();
        assert_eq!(results.len(), 1, "{results:#?}");
        results.remove(0)
    }

    #[tokio::test]
    async fn the_right_token_reads_and_a_missing_or_wrong_one_is_a_clear_error() {
        let consul = FakeConsul::start_with_token(TOKEN).await;
        consul.put("app/limit", b"5");
        let port = consul.url.rsplit(':').next().unwrap().to_string();
        let with_token = check(&consul, ", token: \"${env:TOKEN}\"", "kv: {key: app/limit}");
        assert_eq!(
            judged(&with_token, measure(&with_token).await).value,
            num(5.0)
        );

        let without = check(&consul, "", "kv: {key: app/limit}");
        let err = measure(&without).await.unwrap_err();
        assert_eq!(
            err.0,
            format!(
                "Consul at 127.0.0.1:{port} requires an ACL token (403 ACL not found): set \
                 `token:` on target consul"
            )
        );
        assert_eq!(verdict(&without, Err(err)).0, Status::Error);

        let wrong_token = "wrong-token-4471";
        let wrong = rules(
            &consul.url,
            ", token: \"${env:WRONG}\"",
            "kv: {key: app/limit}",
        )
        .env("WRONG", wrong_token)
        .check("c");
        let err = measure(&wrong).await.unwrap_err();
        assert!(
            err.0.starts_with(&format!(
                "Consul at 127.0.0.1:{port} refused the token of target consul (403 ACL not found)"
            )),
            "{err}"
        );
        let (status, message) = verdict(&wrong, Err(err));
        assert_eq!(status, Status::Error);
        for secret in [TOKEN, wrong_token] {
            assert!(!message.contains(secret), "{message}");
        }
    }

    #[tokio::test]
    async fn health_counts_instances_by_their_worst_check() {
        let consul = FakeConsul::start().await;
        consul.register("web", "web-1", "node-a", 8080, "passing");
        consul.register("web", "web-2", "node-b", 8080, "warning");
        consul.register("web", "web-3", "node-c", 8080, "critical");
        consul.register("web", "web-4", "node-d", 8080, "passing");
        consul.register("db", "db-1", "node-a", 5432, "critical");
        let c = check(&consul, "", "health: {service: web}");
        let got = results(&c).await;
        let counts: Vec<(&str, Option<Value>)> = got
            .iter()
            .map(|(series, (value, _, _))| (series.as_str(), value.clone()))
            .collect();
        assert_eq!(
            counts,
            [
                ("critical", num(1.0)),
                ("passing", num(2.0)),
                ("warning", num(1.0)),
            ]
        );
        // A node whose serfHealth fails takes its instances down with it, as in Consul.
        consul.set_node_health("node-d", "critical");
        let critical = check(
            &consul,
            "",
            "health: {service: web, value: critical}, crit: gt(1)",
        );
        let result = judged(&critical, measure(&critical).await);
        assert_eq!((result.value, result.status), (num(2.0), Status::Crit));
        let passing = check(
            &consul,
            "",
            "health: {service: web, value: passing}, crit: lt(2)",
        );
        let result = judged(&passing, measure(&passing).await);
        assert_eq!((result.value, result.status), (num(1.0), Status::Crit));
    }

    #[tokio::test]
    async fn health_per_instance_is_one_series_per_instance_with_its_status() {
        let consul = FakeConsul::start().await;
        consul.register("web", "web-1", "node-a", 8080, "passing");
        consul.register("web", "web-2", "node-b", 8080, "warning");
        consul.register("web", "web-3", "node-c", 8080, "critical");
        let c = check(
            &consul,
            "",
            "health: {service: web, value: instances}, warn: eq(\"warning\"), crit: eq(\"critical\")",
        );
        let got = results(&c).await;
        let statuses: Vec<(&str, Option<Value>, Status)> = got
            .iter()
            .map(|(series, (value, status, _))| (series.as_str(), value.clone(), *status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("web-1", text("passing"), Status::Ok),
                ("web-2", text("warning"), Status::Warn),
                ("web-3", text("critical"), Status::Crit),
            ]
        );
    }

    #[tokio::test]
    async fn a_service_without_instances_is_crit_not_zero_problems() {
        let consul = FakeConsul::start().await;
        consul.register("web", "web-1", "node-a", 8080, "passing");
        let c = check(
            &consul,
            "",
            "health: {service: wbe, value: critical}, crit: gt(0)",
        );
        let (status, message) = verdict(&c, measure(&c).await);
        assert_eq!(status, Status::Crit);
        assert!(
            message.starts_with("service wbe has no instances registered in Consul at 127.0.0.1:"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn leader_is_one_with_a_leader_and_crit_without() {
        let consul = FakeConsul::start().await;
        let c = check(&consul, "", "leader: {}");
        let result = judged(&c, measure(&c).await);
        assert_eq!((result.value, result.status), (num(1.0), Status::Ok));
        consul.set_leader(None);
        let result = judged(&c, measure(&c).await);
        assert_eq!(
            (result.value.clone(), result.status),
            (num(0.0), Status::Crit)
        );
        assert!(
            result.message.contains("has no leader"),
            "{}",
            result.message
        );
        assert!(
            consul
                .requests()
                .iter()
                .all(|r| r == "GET /v1/status/leader"),
            "{:?}",
            consul.requests()
        );
    }

    #[tokio::test]
    async fn the_datacenter_is_asked_with_dc() {
        let consul = FakeConsul::start().await;
        consul.put("app/limit", b"3");
        let c = check(&consul, ", datacenter: eu-west", "kv: {key: app/limit}");
        let err = measure(&c).await.unwrap_err();
        assert!(
            err.0
                .ends_with("knows no datacenter \"eu-west\" (500 No path to datacenter)"),
            "{err}"
        );
        consul.add_datacenter("eu-west");
        assert_eq!(judged(&c, measure(&c).await).value, num(3.0));
        let health = check(&consul, ", datacenter: eu-west", "health: {service: web}");
        let _ = measure(&health).await;
        let requests = consul.requests();
        assert_eq!(
            requests,
            [
                "GET /v1/kv/app/limit?dc=eu-west",
                "GET /v1/kv/app/limit?dc=eu-west",
                "GET /v1/health/service/web?dc=eu-west",
            ]
        );
    }

    #[tokio::test]
    async fn a_consul_that_does_not_listen_is_an_error_naming_it() {
        let port = closed_port().await;
        let c = rules(&format!("http://127.0.0.1:{port}"), "", "leader: {}").check("c");
        let err = measure(&c).await.unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("request to Consul at 127.0.0.1:{port} failed: ")),
            "{err}"
        );
        assert!(err.0.to_lowercase().contains("refused"), "{err}");
    }

    #[tokio::test]
    async fn a_url_that_is_not_consul_is_named() {
        let consul = FakeConsul::start().await;
        let c = rules(&format!("{}/elsewhere", consul.url), "", "leader: {}").check("c");
        let err = measure(&c).await.unwrap_err();
        assert!(
            err.0
                .contains("is url of target consul the Consul HTTP API"),
            "{err}"
        );
        assert_eq!(consul.requests(), ["GET /elsewhere/v1/status/leader"]);
    }
}

/// Mistakes in consul checks and targets, each reported at its line and column.
mod validation {
    use crate::net_support::{Rules, load_errors_of};

    /// Asserts that `yaml` does not load and one diagnostic at `line:column` says `part`.
    fn assert_error_at(yaml: &str, line: u32, column: u32, part: &str) {
        let diags = Rules::new()
            .env("EMPTY", "")
            .file("r.yaml", yaml)
            .try_load()
            .expect_err("the rules must not load");
        assert!(
            diags
                .iter()
                .any(|d| d.line == line && d.column == column && d.message.contains(part)),
            "no {line}:{column} {part:?} in {diags:#?}"
        );
        assert!(
            diags.iter().all(|d| d.file.ends_with("r.yaml")),
            "{diags:#?}"
        );
    }

    const TARGET: &str = "targets:\n  consul:\n    kind: consul\n    url: http://127.0.0.1:8500\n";

    fn with_check(lines: &str) -> String {
        format!("{TARGET}checks:\n  - name: c\n    kind: consul\n    target: consul\n{lines}")
    }

    #[test]
    fn a_check_must_ask_exactly_one_thing() {
        assert_error_at(
            &with_check(""),
            7,
            11,
            "set `kv: {key: …}`, `health: {service: …}` or `leader: {}`",
        );
        assert_error_at(
            &with_check("    kv: {key: a}\n    leader: {}\n"),
            10,
            5,
            "set only one of kv, health and leader (found kv and leader)",
        );
    }

    #[test]
    fn keys_services_and_values_are_checked_where_written() {
        assert_error_at(
            &with_check("    kv:\n      key: /app/limit\n"),
            10,
            12,
            "Consul keys do not start with `/`: write \"app/limit\"",
        );
        assert_error_at(
            &with_check("    health: {service: \"\"}\n"),
            9,
            23,
            "service is empty",
        );
        let text = load_errors_of(&with_check("    health: {service: web, value: healthy}\n"));
        assert!(text.contains("line: 9"), "{text}");
        assert!(text.contains("healthy"), "{text}");
        let text = load_errors_of(&with_check("    kv: {key: a, value: size}\n"));
        assert!(text.contains("size"), "{text}");
    }

    #[test]
    fn target_mistakes_are_reported_at_the_field() {
        let check = "checks:\n  - {name: c, kind: consul, target: consul, leader: {}}\n";
        assert_error_at(
            &format!("targets:\n  consul:\n    kind: consul\n    url: consul:8500\n{check}"),
            4,
            10,
            "url must be http:// or https://",
        );
        assert_error_at(
            &format!("{TARGET}    token: \"${{env:EMPTY}}\"\n{check}"),
            5,
            12,
            "token is empty",
        );
        assert_error_at(
            &format!("{TARGET}    datacenter: eu west\n{check}"),
            5,
            17,
            "not a Consul datacenter name",
        );
        assert_error_at(
            &format!("{TARGET}    tls: {{insecure_skip_verify: true}}\n{check}"),
            5,
            5,
            "tls applies to https URLs only",
        );
    }

    #[test]
    fn a_consul_check_needs_a_consul_target() {
        let yaml = "targets:\n  web: {kind: http, url: \"http://127.0.0.1:1\"}\n\
                    checks:\n  - {name: c, kind: consul, target: web, leader: {}}\n";
        let text = load_errors_of(yaml);
        assert!(text.contains("consul"), "{text}");
    }
}
