use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use super::*;

/// A loopback server whose `/flaky` fails every third request; returns its base URL and the
/// number of requests it answered 200 and 500.
async fn server() -> (String, Arc<(AtomicU64, AtomicU64)>) {
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let c = counts.clone();
    let app = Router::new().route(
        "/flaky",
        get(move || {
            let c = c.clone();
            async move {
                let n = c.0.load(Ordering::SeqCst) + c.1.load(Ordering::SeqCst);
                if n % 3 == 2 {
                    c.1.fetch_add(1, Ordering::SeqCst);
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    c.0.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, counts)
}

fn spec(url: String, rate: &str) -> HttpWorkloadSpec {
    HttpWorkloadSpec {
        url,
        method: "GET".into(),
        rate: rate.into(),
        headers: BTreeMap::new(),
        body: None,
        timeout: Some(Duration::from_secs(5)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_counts_what_the_server_answered() {
    let (base, counts) = server().await;
    let load = HttpLoad::start(&spec(format!("{base}/flaky"), "100/s"), client()).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(load.progress().requests > 0);
    let report = load.finish().await;
    let (ok, failed) = (
        counts.0.load(Ordering::SeqCst),
        counts.1.load(Ordering::SeqCst),
    );
    assert_eq!(report.ok, ok);
    assert_eq!(report.failed, failed);
    assert_eq!(report.requests, ok + failed);
    // 1.5 s at 100/s: ~150 requests, and the pacing is real (not a burst of thousands).
    assert!((100..=200).contains(&report.requests), "{report:?}");
    assert!((report.success_rate - ok as f64 / (ok + failed) as f64).abs() < 1e-9);
    assert_eq!(
        report.errors,
        vec!["HTTP 500 Internal Server Error".to_string()]
    );
    assert!(report.per_second.len() >= 2, "{:?}", report.per_second);
    let per_second_total: u64 = report.per_second.iter().map(|s| s.requests).sum();
    assert_eq!(per_second_total, report.requests);
    assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p99 >= report.latency_ms.p50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_failed_request() {
    // Bind then drop: nothing listens on the port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let load =
        HttpLoad::start(&spec(format!("http://127.0.0.1:{port}/"), "50/s"), client()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = load.finish().await;
    assert!(report.requests > 0);
    assert_eq!(report.ok, 0);
    assert_eq!(report.success_rate, 0.0);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
}

#[test]
fn bad_specs_name_the_field() {
    let mut s = spec("http://127.0.0.1:1/".into(), "often");
    s.method = "GE T".into();
    let e = s.check().unwrap_err();
    assert!(e.contains("method:") && e.contains("rate:"), "{e}");
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
    assert_eq!(percentile_ms(&v, 0.5), 50.0);
    assert_eq!(percentile_ms(&v, 0.99), 99.0);
    assert_eq!(percentile_ms(&[], 0.5), 0.0);
}

fn client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::new()
}
