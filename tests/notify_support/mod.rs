//! Shared harness for receiver tests: a fake vendor on loopback (axum) that records every request
//! and answers through a vendor-specific closure, sample notifications, and a fixed-clock
//! `SendContext` so signed requests are deterministic.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use patrol::alert::{Alert, AlertStatus, Notification, SendContext};

pub mod chat;
pub mod vendors;

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    /// The query string exactly as sent (still percent-encoded).
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// Query parameters, decoded the way a server framework decodes them.
    pub fn query(&self, name: &str) -> Option<String> {
        form_pairs(&self.raw_query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON (None when it is not JSON at all).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Decodes `a=b&c=d` as application/x-www-form-urlencoded (`+` is a space, `%XX` a byte).
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).expect("a query string");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// What the fake answers.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type", "text/plain".into())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

type Judge = dyn Fn(&Received) -> Answer + Send + Sync;

struct Shared {
    received: Mutex<Vec<Received>>,
    judge: Box<Judge>,
}

/// A fake vendor listening on 127.0.0.1.
pub struct Fake {
    pub base: String,
    shared: Arc<Shared>,
}

impl Fake {
    /// Binds first (the port is known before the server runs), then serves every request through
    /// `judge`.
    pub async fn start(judge: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            judge: Box::new(judge),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { base, shared }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Received {
        self.received().pop().expect("the fake received a request")
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        method,
        path: uri.path().to_string(),
        raw_query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    let answer = (shared.judge)(&received);
    shared.received.lock().unwrap().push(received);
    let mut response = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}

/// Answers to give in order; once used up, the fake's normal verdict applies.
#[derive(Clone, Default)]
pub struct Script(Arc<Mutex<VecDeque<Answer>>>);

impl Script {
    pub fn push(&self, a: Answer) {
        self.0.lock().unwrap().push_back(a);
    }

    pub fn next(&self) -> Option<Answer> {
        self.0.lock().unwrap().pop_front()
    }
}

/// A fixed clock for signatures.
pub fn at_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

pub fn client() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

pub fn ctx(http: &reqwest::Client, now: DateTime<Utc>) -> SendContext<'_> {
    SendContext {
        http,
        timeout: Duration::from_secs(10),
        now,
        parts: Default::default(),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A firing alert of `check` in service `orders`, value 250 ms against a 120 – 180 ms band.
pub fn alert(check: &str, summary: &str) -> Alert {
    Alert {
        status: AlertStatus::Firing,
        labels: map(&[
            ("alertname", check),
            ("check", check),
            ("service", "orders"),
            ("severity", "critical"),
        ]),
        annotations: map(&[
            ("summary", summary),
            ("value", "250"),
            ("unit", "ms"),
            ("baseline_low", "120"),
            ("baseline_high", "180"),
            ("score", "62"),
            ("revision", "r-42"),
        ]),
        starts_at: Utc.with_ymd_and_hms(2025, 3, 1, 2, 0, 0).unwrap(),
        ends_at: None,
        generator_url: format!("https://patrol.example/checks/{check}"),
        fingerprint: format!("fp-{check}"),
    }
}

pub fn notification(alerts: Vec<Alert>) -> Notification {
    let status = Notification::status_of(&alerts);
    Notification {
        receiver: "oncall".into(),
        group_key: "{}:{service=\"orders\"}".into(),
        status,
        group_labels: map(&[("service", "orders")]),
        common_labels: map(&[("service", "orders")]),
        common_annotations: BTreeMap::new(),
        alerts,
        external_url: "https://patrol.example".into(),
        idempotency_key: "idem-1".into(),
    }
}

/// One alert about API latency.
pub fn small() -> Notification {
    notification(vec![alert("api-latency", "p99 latency above baseline")])
}

/// `n` alerts with Chinese names and summaries: far beyond any chat vendor's size limit.
pub fn long_cjk(n: usize) -> Notification {
    notification(
        (0..n)
            .map(|i| {
                alert(
                    &format!("磁盘使用率过高-{i}"),
                    "数据库主库磁盘使用率超过阈值，请值班同学立即处理",
                )
            })
            .collect(),
    )
}
