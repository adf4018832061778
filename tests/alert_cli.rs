//! `patrol alert test RECEIVER` against a real webhook receiver on loopback: a delivered test
//! notification exits 0, a refused one exits 1 with the receiver's reason, an unknown name exits 2.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

/// A webhook that records bodies and answers with `status`.
async fn receiver(status: StatusCode) -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(body);
                (status, "{\"error\":\"refused by test\"}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

fn rules(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    let yaml = format!(
        "receivers:\n  ops:\n    kind: webhook\n    url: \"http://127.0.0.1:{port}/hook\"\n"
    );
    std::fs::write(dir.path().join("rules/r.yaml"), yaml).unwrap();
    dir
}

async fn patrol(dir: &std::path::Path, receiver: &str) -> std::process::Output {
    let dir = dir.to_path_buf();
    let receiver = receiver.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::patrol_bin())
            .current_dir(dir)
            .args(["alert", "test", &receiver])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_delivered_test_notification_exits_zero() {
    let (port, got) = receiver(StatusCode::OK).await;
    let dir = rules(port);
    let out = patrol(dir.path(), "ops").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("sent: a test notification reached ops (webhook)")
    );
    let bodies = got.lock().unwrap();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["commonLabels"]["alertname"], "patrol-test");
    assert_eq!(bodies[0]["status"], "firing");
}

#[tokio::test]
async fn a_refused_one_exits_one_with_the_reason() {
    let (port, _) = receiver(StatusCode::BAD_REQUEST).await;
    let dir = rules(port);
    let out = patrol(dir.path(), "ops").await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed (permanent): ops (webhook): HTTP 400"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_receiver_exits_two() {
    let (port, _) = receiver(StatusCode::OK).await;
    let dir = rules(port);
    let out = patrol(dir.path(), "nope").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("defined receivers: ops"));
}
