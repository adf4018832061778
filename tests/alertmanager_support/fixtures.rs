//! Notifications the HTTP receiver tests send, and the context they send them with.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeZone, Utc};
use patrol::alert::{Alert, AlertStatus, Notification, SendContext};
use serde_json::{Value, json};

pub const EXTERNAL_URL: &str = "https://patrol.example.com";
pub const IDEMPOTENCY_KEY: &str = "ops/disk-usage/3f9a/17";

pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
}

/// The disk-usage alert on `series`: firing since 02:00:00, or resolved at 02:15:30.250.
pub fn disk_alert(series: &str, status: AlertStatus) -> Alert {
    let labels = [
        ("alertname", "disk-usage"),
        ("check", "disk-usage"),
        ("series", series),
        ("service", "orders"),
        ("severity", "critical"),
    ];
    let annotations = [
        ("summary", "disk almost full"),
        ("value", "93"),
        ("unit", "%"),
        ("baseline", "40 – 70"),
    ];
    Alert {
        status,
        labels: strings(&labels),
        annotations: strings(&annotations),
        starts_at: at(2, 0, 0),
        ends_at: (status == AlertStatus::Resolved)
            .then(|| at(2, 15, 30) + chrono::Duration::milliseconds(250)),
        generator_url: format!("{EXTERNAL_URL}/checks/disk-usage?series={series}"),
        fingerprint: format!("fp-{series}"),
    }
}

/// A notification to receiver `ops` about `alerts` (firing if any of them fires).
pub fn notification(alerts: Vec<Alert>) -> Notification {
    let status = Notification::status_of(&alerts);
    Notification {
        receiver: "ops".into(),
        group_key: "{}:{alertname=\"disk-usage\"}".into(),
        status,
        group_labels: strings(&[("alertname", "disk-usage")]),
        common_labels: strings(&[("alertname", "disk-usage"), ("service", "orders")]),
        common_annotations: strings(&[("summary", "disk almost full")]),
        alerts,
        external_url: EXTERNAL_URL.into(),
        idempotency_key: IDEMPOTENCY_KEY.into(),
    }
}

pub fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn client() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

/// A context with `timeout` per request, at 03:00:00 on the fixtures' day.
pub fn context(http: &reqwest::Client, timeout: Duration) -> SendContext<'_> {
    SendContext {
        http,
        timeout,
        now: at(3, 0, 0),
        parts: Default::default(),
    }
}

/// One alert of the fixtures as Alertmanager's webhook carries it.
pub fn expected_webhook_alert(series: &str, status: &str, ends_at: &str) -> Value {
    json!({
        "status": status,
        "labels": {
            "alertname": "disk-usage", "check": "disk-usage", "series": series,
            "service": "orders", "severity": "critical",
        },
        "annotations": {"summary": "disk almost full", "value": "93", "unit": "%", "baseline": "40 – 70"},
        "startsAt": "2026-03-01T02:00:00Z",
        "endsAt": ends_at,
        "generatorURL": format!("{EXTERNAL_URL}/checks/disk-usage?series={series}"),
        "fingerprint": format!("fp-{series}"),
    })
}

pub fn load_receivers(yaml: &str, env: &[(&str, &str)]) -> Result<patrol::config::RuleSet, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receivers.yaml");
    std::fs::write(&file, yaml).unwrap();
    let env: BTreeMap<String, String> = strings(env);
    patrol::config::load_with_env(&[file], &env).map_err(|diags| {
        let lines: Vec<String> = diags
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        lines.join("\n")
    })
}

/// The alert `name` fired a minute before `now` (whole seconds: Alertmanager's API rounds).
pub fn live_alert(name: &str, now: DateTime<Utc>, status: AlertStatus) -> Alert {
    let now = now.duration_trunc(chrono::Duration::seconds(1)).unwrap();
    Alert {
        status,
        labels: strings(&[
            ("alertname", name),
            ("service", "orders"),
            ("severity", "warning"),
        ]),
        annotations: strings(&[("summary", "replication delay above band"), ("value", "42")]),
        starts_at: now - chrono::Duration::minutes(1),
        ends_at: (status == AlertStatus::Resolved).then_some(now),
        generator_url: format!("{EXTERNAL_URL}/checks/{name}"),
        fingerprint: name.into(),
    }
}
