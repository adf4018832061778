//! The alerting endpoints end to end: `/api/v1/alerts`, `/api/v1/outbox` and
//! `/api/v1/silences` on the real router over a real SQLite store (see `api_support`).

mod common;
#[path = "api_support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as Span, Utc};
use patrol::alert::{Alert, AlertStatus, Notification};
use patrol::store::{NewNotification, OutboxStatus};
use serde_json::json;
use support::Harness;

const TOKEN: &str = "alert-api-token";

fn notification(receiver: &str, key: &str, summary: &str, at: DateTime<Utc>) -> NewNotification {
    let labels: BTreeMap<String, String> = [("alertname", "api-up"), ("service", "orders")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let annotations = BTreeMap::from([("summary".to_string(), summary.to_string())]);
    let payload = Notification {
        receiver: receiver.into(),
        group_key: "orders".into(),
        status: AlertStatus::Firing,
        group_labels: BTreeMap::new(),
        common_labels: labels.clone(),
        common_annotations: annotations.clone(),
        alerts: vec![Alert {
            status: AlertStatus::Firing,
            labels,
            annotations,
            starts_at: at,
            ends_at: None,
            generator_url: "http://127.0.0.1:9464/".into(),
            fingerprint: format!("fp-{key}"),
        }],
        external_url: "http://127.0.0.1:9464".into(),
        idempotency_key: key.into(),
    };
    NewNotification {
        receiver: receiver.into(),
        group_key: "orders".into(),
        idempotency_key: key.into(),
        payload,
        not_before: None,
    }
}

async fn delete(h: &Harness, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = h.http.delete(h.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    support::json_of(req.send().await.unwrap()).await
}

fn silence_body(matcher: &str, ends_at: DateTime<Utc>) -> serde_json::Value {
    json!({
        "matchers": [matcher],
        "ends_at": ends_at,
        "created_by": "ana",
        "comment": "orders deploy",
    })
}

#[tokio::test]
async fn alerts_list_every_state_and_filter_by_phase() {
    let h = Harness::start(None).await;
    let firing = json!({"phase": "firing", "labels": {"check": "api-up"}});
    let pending = json!({"phase": "pending", "labels": {"check": "db-port"}});
    let now = Utc::now();
    h.state
        .store
        .save_alert_changes(&[("fp-a", &firing), ("fp-b", &pending)], &[], now)
        .await
        .unwrap();

    let (status, body) = h.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"alerts": [
            {"fingerprint": "fp-a", "state": firing},
            {"fingerprint": "fp-b", "state": pending},
        ]})
    );
    let (status, body) = h.get("/api/v1/alerts?state=firing").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["alerts"],
        json!([{"fingerprint": "fp-a", "state": firing}])
    );
    let (status, body) = h.get("/api/v1/alerts?state=inactive").await;
    assert_eq!((status, body["alerts"].clone()), (200, json!([])));
    let (status, body) = h.get("/api/v1/alerts?state=burning").await;
    assert_eq!((status, body["error"].is_string()), (400, true), "{body}");
}

#[tokio::test]
async fn the_outbox_filters_by_status_limits_and_shows_no_secret() {
    let h = Harness::start(None).await;
    let secret = common::unique_name("hunter2-outbox-secret");
    patrol::secrets::register(&secret);
    let now = Utc::now();
    let queued = [
        notification("ops", "k1", "first", now),
        notification("ops", "k2", &format!("token {secret} leaked"), now),
        notification("pager", "k3", "third", now),
    ];
    let n = h
        .state
        .store
        .save_alert_changes(&[], &queued, now)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let first_id = h.state.store.outbox(None, 10).await.unwrap()[2].id;
    assert!(h.state.store.mark_sent(first_id, now).await.unwrap());

    let (status, body) = h.get("/api/v1/outbox").await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k3", "k2", "k1"], "newest first");
    assert!(!body.to_string().contains(&secret), "{body}");

    let (_, body) = h.get("/api/v1/outbox?status=pending").await;
    let pending: Vec<(&str, &str)> = body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["idempotency_key"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pending, [("k3", "pending"), ("k2", "pending")]);
    let (_, body) = h.get("/api/v1/outbox?status=sent").await;
    assert_eq!(body["notifications"][0]["idempotency_key"], "k1");
    assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
    let (_, body) = h.get("/api/v1/outbox?limit=1").await;
    assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.state
            .store
            .outbox(Some(OutboxStatus::Dead), 10)
            .await
            .unwrap()
            .len(),
        0
    );
    let (_, body) = h.get("/api/v1/outbox?status=dead").await;
    assert_eq!(body["notifications"], json!([]));
    for bad in ["/api/v1/outbox?status=lost", "/api/v1/outbox?limit=0"] {
        let (status, body) = h.get(bad).await;
        assert_eq!((status, body["error"].is_string()), (400, true), "{bad}");
    }
}

#[tokio::test]
async fn silences_are_created_listed_and_expired() {
    let h = Harness::start(Some(TOKEN)).await;
    // Followers of the event stream hear of the silence as it is made and ended.
    let mut events = support::open_stream(&h, None).await;
    let ends = Utc::now() + Span::hours(2);
    let body = silence_body(r#"service="orders""#, ends);
    let (status, created) = h.post("/api/v1/silences", body, Some(TOKEN)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, kind, made) = events.next_event(support::WAIT).await.unwrap();
    assert_eq!(kind, "silence");
    assert_eq!(
        made["data"],
        json!({"id": id, "action": "created"}),
        "{made}"
    );

    let (status, listed) = h.get("/api/v1/silences").await;
    assert_eq!(status, 200, "{listed}");
    let silence = &listed["silences"][0];
    assert_eq!(silence["id"], id.as_str());
    assert_eq!(silence["matchers"], json!([r#"service="orders""#]));
    assert_eq!(silence["state"], "active");
    assert_eq!(silence["created_by"], "ana");
    assert_eq!(silence["comment"], "orders deploy");
    let stored = h.state.store.list_silences(Some(Utc::now())).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].matchers, json!([r#"service="orders""#]));

    let path = format!("/api/v1/silences/{id}");
    assert_eq!(delete(&h, &path, None).await.0, 401);
    let (status, body) = delete(&h, &path, Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (_, kind, ended) = events.next_event(support::WAIT).await.unwrap();
    assert_eq!(kind, "silence");
    assert_eq!(ended["data"]["action"], "expired", "{ended}");
    let (status, body) = delete(&h, &path, Some(TOKEN)).await;
    assert_eq!((status, body["error"].is_string()), (404, true), "{body}");
    let (status, body) = delete(&h, "/api/v1/silences/nope", Some(TOKEN)).await;
    assert_eq!(status, 404, "{body}");

    let (_, active) = h.get("/api/v1/silences?active=true").await;
    assert_eq!(active["silences"], json!([]));
    let (_, all) = h.get("/api/v1/silences").await;
    assert_eq!(all["silences"][0]["state"], "expired");
}

#[tokio::test]
async fn creating_a_silence_needs_the_token_and_a_valid_body() {
    let h = Harness::start(Some(TOKEN)).await;
    let ends = Utc::now() + Span::hours(1);
    let (status, _) = h
        .post("/api/v1/silences", silence_body(r#"a="1""#, ends), None)
        .await;
    assert_eq!(status, 401);

    let past = Utc::now() - Span::hours(1);
    let mut body = silence_body(r#"env!="dev""#, past);
    body["comment"] = json!(" ");
    let (status, answer) = h.post("/api/v1/silences", body, Some(TOKEN)).await;
    assert_eq!(status, 400, "{answer}");
    let problems: Vec<&str> = answer["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].starts_with("matchers:"), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("ends_at:")));
    assert!(problems.iter().any(|p| p.starts_with("comment:")));

    let bad = silence_body(r#"service="orders"#, ends);
    let (status, answer) = h.post("/api/v1/silences", bad, Some(TOKEN)).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("column"),
        "{answer}"
    );
    assert!(h.state.store.list_silences(None).await.unwrap().is_empty());
}
