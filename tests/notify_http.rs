//! The HTTP receivers against servers on loopback: a generic webhook and PagerDuty against fakes
//! that check what the real services check and answer the way they answer, and the alertmanager
//! receiver against a real Alertmanager (Debian `prometheus-alertmanager`) passing the pushed
//! alerts on to a webhook served here.

mod alertmanager_support;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alertmanager_support::fake::{Captured, Fake, Reply, pagerduty_verdict, refused_url};
use alertmanager_support::fixtures::{
    EXTERNAL_URL, IDEMPOTENCY_KEY, client, context, disk_alert, expected_webhook_alert, live_alert,
    load_receivers, notification, strings,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use patrol::alert::notifier::Notifier;
use patrol::alert::notifier::alertmanager::{Alertmanager, BasicAuth};
use patrol::alert::notifier::pagerduty::{self, PagerDuty};
use patrol::alert::notifier::webhook::{Webhook, ZERO_TIME};
use patrol::alert::{Alert, AlertStatus, Notification, SendError};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(5);
/// A client timeout short enough for the hanging fakes.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
const ROUTING_KEY: &str = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32";

fn outcome(r: &Result<(), SendError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(SendError::Retryable(_)) => "retryable",
        Err(SendError::Permanent(_)) => "permanent",
    }
}

fn firing_and_resolved() -> Notification {
    notification(vec![
        disk_alert("node-1", AlertStatus::Firing),
        disk_alert("node-2", AlertStatus::Resolved),
    ])
}

fn webhook(url: String) -> Webhook {
    Webhook {
        url,
        headers: BTreeMap::new(),
        template: None,
        content_type: None,
        max_alerts: 0,
    }
}

#[tokio::test]
async fn webhook_posts_the_alertmanager_v4_payload_with_idempotency_key_and_headers() {
    let fake = Fake::replying(200, "").await;
    let mut hook = webhook(fake.url("/hooks/patrol"));
    hook.headers = strings(&[
        ("Authorization", "Bearer hook-secret-token"),
        ("X-Team", "sre"),
    ]);
    let http = client();

    let sent = hook
        .send(&firing_and_resolved(), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/patrol")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some(IDEMPOTENCY_KEY));
    assert_eq!(r.header("authorization"), Some("Bearer hook-secret-token"));
    assert_eq!(r.header("x-team"), Some("sre"));
    let expected = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"disk-usage\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ops",
        "groupLabels": {"alertname": "disk-usage"},
        "commonLabels": {"alertname": "disk-usage", "service": "orders"},
        "commonAnnotations": {"summary": "disk almost full"},
        "externalURL": EXTERNAL_URL,
        "alerts": [
            expected_webhook_alert("node-1", "firing", ZERO_TIME),
            expected_webhook_alert("node-2", "resolved", "2026-03-01T02:15:30.250Z"),
        ],
        "idempotencyKey": IDEMPOTENCY_KEY,
    });
    assert_eq!(r.json(), expected);
}

#[tokio::test]
async fn webhook_max_alerts_sends_the_first_ones_and_counts_the_rest() {
    let fake = Fake::replying(204, "").await;
    let mut hook = webhook(fake.url("/"));
    hook.max_alerts = 2;
    let alerts = (1..=5)
        .map(|i| disk_alert(&format!("node-{i}"), AlertStatus::Firing))
        .collect();
    let http = client();

    let sent = hook
        .send(&notification(alerts), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let body = fake.requests()[0].json();
    assert_eq!(body["truncatedAlerts"], 3);
    let series: Vec<&str> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["series"].as_str().unwrap())
        .collect();
    assert_eq!(series, ["node-1", "node-2"]);
}

#[tokio::test]
async fn webhook_template_replaces_the_body_with_its_content_type() {
    let fake = Fake::replying(200, "").await;
    let mut hook = webhook(fake.url("/text"));
    hook.template = Some(
        "{{ status }} {{ receiver }}:{% for a in alerts %} {{ a.check }}@{{ a.series }}={{ a.status }}{% endfor %}"
            .into(),
    );
    hook.content_type = Some("text/plain; charset=utf-8".into());
    let http = client();

    let sent = hook
        .send(&firing_and_resolved(), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let r = &fake.requests()[0];
    assert_eq!(
        r.text(),
        "firing ops: disk-usage@node-1=firing disk-usage@node-2=resolved"
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("idempotency-key"), Some(IDEMPOTENCY_KEY));
}

#[tokio::test]
async fn webhook_answers_are_classified_and_errors_never_show_the_url() {
    let http = client();
    let n = firing_and_resolved();
    let cases = [
        (200, "ok"),
        (202, "ok"),
        (204, "ok"),
        (400, "permanent"),
        (401, "permanent"),
        (404, "permanent"),
        (429, "retryable"),
        (500, "retryable"),
        (503, "retryable"),
    ];
    for (status, expected) in cases {
        let fake = Fake::replying(status, r#"{"error":"nope"}"#).await;
        let sent = webhook(fake.url("/t/hook-token-123"))
            .send(&n, &context(&http, TIMEOUT))
            .await;
        assert_eq!(outcome(&sent), expected, "HTTP {status}: {sent:?}");
        if let Err(e) = sent {
            assert!(e.message().contains(&format!("HTTP {status}")), "{e:?}");
        }
    }

    let hanging = Fake::start(|_| Reply::Hang).await;
    let sent = webhook(hanging.url("/t/hook-token-123"))
        .send(&n, &context(&http, SHORT_TIMEOUT))
        .await;
    assert_eq!(outcome(&sent), "retryable", "{sent:?}");
    assert!(
        sent.as_ref().unwrap_err().message().contains("timed out"),
        "{sent:?}"
    );

    let refused = webhook(refused_url("/t/hook-token-123"))
        .send(&n, &context(&http, TIMEOUT))
        .await;
    assert_eq!(outcome(&refused), "retryable", "{refused:?}");
    for e in [sent.unwrap_err(), refused.unwrap_err()] {
        assert!(!e.message().contains("hook-token-123"), "{e:?}");
    }
}

fn pagerduty_at(url: String, routing_key: &str) -> PagerDuty {
    PagerDuty {
        url,
        routing_key: routing_key.into(),
        source: None,
        template: None,
    }
}

#[tokio::test]
async fn pagerduty_triggers_firing_alerts_and_resolves_resolved_ones_by_fingerprint() {
    let fake = Fake::start(pagerduty_verdict).await;
    let pd = pagerduty_at(fake.url("/v2/enqueue"), ROUTING_KEY);
    let http = client();

    let sent = pd
        .send(&firing_and_resolved(), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let events: Vec<Value> = fake.requests().iter().map(Captured::json).collect();
    assert_eq!(events.len(), 2, "one event per alert");
    let alert = expected_webhook_alert("node-1", "firing", ZERO_TIME);
    assert_eq!(
        events[0],
        json!({
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "fp-node-1",
            "client": "patrol",
            "client_url": EXTERNAL_URL,
            "payload": {
                "summary": "disk-usage on node-1 (orders): disk almost full — value 93 % (baseline 40 – 70 %)",
                "source": "node-1",
                "severity": "critical",
                "timestamp": "2026-03-01T02:00:00Z",
                "component": "disk-usage",
                "group": "orders",
                "custom_details": {"labels": alert["labels"], "annotations": alert["annotations"]},
            },
            "links": [{"href": alert["generatorURL"], "text": "patrol"}],
        })
    );
    assert_eq!(
        events[1],
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "fp-node-2"})
    );
    assert!(fake.requests().iter().all(|r| r.path == "/v2/enqueue"));
}

#[tokio::test]
async fn pagerduty_template_sets_the_summary_and_severity_follows_the_check() {
    let fake = Fake::start(pagerduty_verdict).await;
    let mut pd = pagerduty_at(fake.url("/v2/enqueue"), ROUTING_KEY);
    pd.template = Some("{{ alerts[0].check }} is {{ status }} on {{ alerts[0].series }}".into());
    pd.source = Some("db-cluster-7".into());
    let mut info = disk_alert("node-3", AlertStatus::Firing);
    info.labels.insert("severity".into(), "info".into());
    let http = client();

    let sent = pd
        .send(&notification(vec![info]), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let payload = fake.requests()[0].json()["payload"].clone();
    assert_eq!(payload["summary"], "disk-usage is firing on node-3");
    assert_eq!(payload["source"], "db-cluster-7");
    assert_eq!(payload["severity"], "info");
    assert_eq!(pagerduty::severity(Some(&"warning".to_string())), "warning");
}

#[tokio::test]
async fn pagerduty_invalid_events_are_permanent_with_pagerduty_reasons() {
    let fake = Fake::start(pagerduty_verdict).await;
    let short_key = &ROUTING_KEY[..31];
    let pd = pagerduty_at(fake.url("/v2/enqueue"), short_key);
    let http = client();

    let sent = pd
        .send(&firing_and_resolved(), &context(&http, TIMEOUT))
        .await;

    let Err(SendError::Permanent(message)) = sent else {
        panic!("expected a permanent failure, got {sent:?}");
    };
    assert!(
        message.contains("Event object is invalid: Length of 'routing_key' is incorrect"),
        "{message}"
    );
    assert!(message.contains("and 1 more failed events"), "{message}");
    assert!(!message.contains(short_key), "{message}");
    assert_eq!(fake.requests().len(), 2, "every alert was tried");
}

#[tokio::test]
async fn pagerduty_answers_are_classified() {
    let http = client();
    let n = notification(vec![disk_alert("node-1", AlertStatus::Firing)]);
    let cases = [
        (429, "retryable"),
        (500, "retryable"),
        (502, "retryable"),
        (403, "permanent"),
        (404, "permanent"),
    ];
    for (status, expected) in cases {
        let fake = Fake::replying(status, r#"{"status":"throttled"}"#).await;
        let sent = pagerduty_at(fake.url("/v2/enqueue"), ROUTING_KEY)
            .send(&n, &context(&http, TIMEOUT))
            .await;
        assert_eq!(outcome(&sent), expected, "HTTP {status}: {sent:?}");
    }
    let hanging = Fake::start(|_| Reply::Hang).await;
    let sent = pagerduty_at(hanging.url("/v2/enqueue"), ROUTING_KEY)
        .send(&n, &context(&http, SHORT_TIMEOUT))
        .await;
    assert_eq!(outcome(&sent), "retryable", "{sent:?}");
    let sent = pagerduty_at(refused_url("/v2/enqueue"), ROUTING_KEY)
        .send(&n, &context(&http, TIMEOUT))
        .await;
    assert_eq!(outcome(&sent), "retryable", "{sent:?}");

    let defaults: PagerDuty = serde_json::from_value(json!({"routing_key": ROUTING_KEY})).unwrap();
    assert_eq!(defaults.url, pagerduty::DEFAULT_URL);
}

fn alertmanager_at(url: String) -> Alertmanager {
    serde_json::from_value(json!({"url": url, "resolve_timeout": "10m"})).unwrap()
}

#[tokio::test]
async fn alertmanager_receiver_posts_v2_alerts_with_basic_auth() {
    let fake = Fake::replying(200, "").await;
    let mut am = alertmanager_at(fake.url("/am/"));
    am.basic_auth = Some(BasicAuth {
        username: "patrol".into(),
        password: "am-s3cret".into(),
    });
    let http = client();

    let sent = am
        .send(&firing_and_resolved(), &context(&http, TIMEOUT))
        .await;

    assert_eq!(sent, Ok(()));
    let r = &fake.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/am/api/v2/alerts")
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("patrol:am-s3cret");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let alert = |series: &str, ends_at: &str| {
        let a = expected_webhook_alert(series, "", "");
        json!({
            "labels": a["labels"], "annotations": a["annotations"],
            "startsAt": "2026-03-01T02:00:00Z", "endsAt": ends_at, "generatorURL": a["generatorURL"],
        })
    };
    // Firing: now (03:00:00) + resolve_timeout (10m); resolved: when it resolved.
    let expected = json!([
        alert("node-1", "2026-03-01T03:10:00Z"),
        alert("node-2", "2026-03-01T02:15:30.250Z"),
    ]);
    assert_eq!(r.json(), expected);
}

#[tokio::test]
async fn alertmanager_receiver_sends_its_bearer_token_and_classifies_answers() {
    let http = client();
    let n = firing_and_resolved();
    for (status, expected) in [
        (200, "ok"),
        (400, "permanent"),
        (429, "retryable"),
        (503, "retryable"),
    ] {
        let fake = Fake::replying(status, "\"maxFailures exceeded\"").await;
        let mut am = alertmanager_at(fake.base.clone());
        am.bearer_token = Some("am-bearer-token".into());
        let sent = am.send(&n, &context(&http, TIMEOUT)).await;
        assert_eq!(outcome(&sent), expected, "HTTP {status}: {sent:?}");
        let r = &fake.requests()[0];
        assert_eq!(r.header("authorization"), Some("Bearer am-bearer-token"));
    }
    let sent = alertmanager_at(refused_url(""))
        .send(&n, &context(&http, TIMEOUT))
        .await;
    assert_eq!(outcome(&sent), "retryable", "{sent:?}");
}

#[tokio::test]
async fn a_real_alertmanager_receives_firing_then_resolved_alerts_and_passes_them_on() {
    let hook = Fake::replying(200, "").await;
    let am = alertmanager_support::Alertmanager::start(&hook.url("/am-hook")).await;
    let receiver = alertmanager_at(am.url.clone());
    let http = client();
    let name = common::unique_name("patrol_am");
    let firing = live_alert(&name, Utc::now(), AlertStatus::Firing);

    let ctx = patrol::alert::SendContext {
        http: &http,
        timeout: TIMEOUT,
        now: Utc::now(),
        parts: Default::default(),
    };
    let sent = receiver
        .send(&notification(vec![firing.clone()]), &ctx)
        .await;
    assert_eq!(sent, Ok(()), "{}", am.log());

    let active = am.listed(&http, &name).await;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["labels"], json!(firing.labels));
    assert_eq!(active[0]["annotations"], json!(firing.annotations));
    assert_eq!(active[0]["generatorURL"], firing.generator_url);
    assert_eq!(active[0]["status"]["state"], "active");
    let notice = hook
        .next_matching(Duration::from_secs(15), |c| {
            alertmanager_support::is_notice_about(c, &name, "firing")
        })
        .await
        .unwrap_or_else(|| panic!("no firing notice from Alertmanager; its log:\n{}", am.log()));
    let passed = &notice.json()["alerts"][0];
    assert_eq!(passed["labels"], json!(firing.labels));
    assert_eq!(passed["endsAt"], ZERO_TIME);
    assert_eq!(
        passed["startsAt"].as_str().map(parse_time),
        Some(firing.starts_at)
    );

    let resolved = live_alert(&name, Utc::now(), AlertStatus::Resolved);
    let resolved = Alert {
        starts_at: firing.starts_at,
        ..resolved
    };
    let ctx = patrol::alert::SendContext {
        http: &http,
        timeout: TIMEOUT,
        now: Utc::now(),
        parts: Default::default(),
    };
    let sent = receiver
        .send(&notification(vec![resolved.clone()]), &ctx)
        .await;
    assert_eq!(sent, Ok(()), "{}", am.log());

    let notice = hook
        .next_matching(Duration::from_secs(15), |c| {
            alertmanager_support::is_notice_about(c, &name, "resolved")
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no resolved notice from Alertmanager; its log:\n{}",
                am.log()
            )
        });
    let passed = &notice.json()["alerts"][0];
    assert_eq!(passed["status"], "resolved");
    assert_eq!(passed["endsAt"].as_str().map(parse_time), resolved.ends_at);
    assert!(
        am.listed(&http, &name).await.is_empty(),
        "resolved alerts are no longer active"
    );
}

#[tokio::test]
async fn a_real_alertmanager_rejecting_an_alert_is_a_permanent_failure() {
    let hook = Fake::replying(200, "").await;
    let am = alertmanager_support::Alertmanager::start(&hook.url("/am-hook")).await;
    let mut unlabelled = live_alert("x", Utc::now(), AlertStatus::Firing);
    unlabelled.labels = strings(&[("alertname", "")]);
    let http = client();
    let ctx = patrol::alert::SendContext {
        http: &http,
        timeout: TIMEOUT,
        now: Utc::now(),
        parts: Default::default(),
    };

    let sent = alertmanager_at(am.url.clone())
        .send(&notification(vec![unlabelled]), &ctx)
        .await;

    let Err(SendError::Permanent(message)) = sent else {
        panic!("expected a permanent failure, got {sent:?}");
    };
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(
        message.contains("at least one label pair required"),
        "{message}"
    );
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn http_receivers_load_from_rule_files_with_secret_references() {
    let yaml = r#"
receivers:
  hook:
    kind: webhook
    url: http://127.0.0.1:9/hook
    headers:
      Authorization: Bearer ${env:HOOK_TOKEN}
    max_alerts: 10
  am:
    kind: alertmanager
    url: http://127.0.0.1:9093
    resolve_timeout: 2m
    basic_auth: {username: patrol, password: "${env:AM_PASSWORD}"}
  pd:
    kind: pagerduty
    routing_key: ${env:PD_KEY}
"#;
    let env = [
        ("HOOK_TOKEN", "hook-token-from-env"),
        ("AM_PASSWORD", "am-password-from-env"),
        ("PD_KEY", ROUTING_KEY),
    ];
    let rules = load_receivers(yaml, &env).unwrap();
    use patrol::alert::ReceiverSpec;
    let spec = |name: &str| rules.receivers[name].spec.clone();
    let ReceiverSpec::Webhook(hook) = spec("hook") else {
        panic!("hook is a webhook")
    };
    assert_eq!(hook.headers["Authorization"], "Bearer hook-token-from-env");
    assert_eq!(hook.max_alerts, 10);
    let ReceiverSpec::Alertmanager(am) = spec("am") else {
        panic!("am is an alertmanager")
    };
    assert_eq!(am.resolve_timeout, Duration::from_secs(120));
    assert_eq!(am.basic_auth.unwrap().password, "am-password-from-env");
    let ReceiverSpec::PagerDuty(pd) = spec("pd") else {
        panic!("pd is a pagerduty")
    };
    assert_eq!(
        (pd.url.as_str(), pd.routing_key.as_str()),
        (pagerduty::DEFAULT_URL, ROUTING_KEY)
    );
}

#[test]
fn http_receiver_problems_are_reported_at_their_lines_without_secrets() {
    let yaml = r#"receivers:
  hook:
    kind: webhook
    url: ftp://127.0.0.1/hook
    template: "{{ status"
    headers:
      X-Token: "${env:HOOK_TOKEN}"
  am:
    kind: alertmanager
    url: http://127.0.0.1:9093
    resolve_timeout: 0s
  pd:
    kind: pagerduty
    routing_key: ${env:PD_KEY}
"#;
    let env = [
        ("HOOK_TOKEN", "line1\nline2-secret"),
        ("PD_KEY", "short-pd-key"),
    ];
    let report = load_receivers(yaml, &env).unwrap_err();
    for expected in [
        "4:10: must be an http:// or https:// URL",
        "5:15: template error",
        "7:16: invalid header value",
        "11:22: must be positive",
        "14:18: a PagerDuty routing key has 32 characters, this one 12",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    assert!(
        !report.contains("line2-secret") && !report.contains("short-pd-key"),
        "{report}"
    );
}
