//! The demo's HTTP service: an axum app on 127.0.0.1 with a `/health` endpoint whose latency and
//! reported queue depth the demo turns with [`Knobs`], so the checks measure real requests whose
//! behaviour changes exactly when the demo injects its anomaly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// What the service does right now. Atomics, because the demo changes them while requests run.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Mean delay before `/health` answers.
    latency_ms: AtomicU64,
    /// Half-width of the uniform jitter around the mean delay.
    jitter_ms: AtomicU64,
    /// `queue_depth` reported in the health body.
    queue_depth: AtomicU64,
}

impl Knobs {
    pub fn new(latency_ms: u64, jitter_ms: u64) -> Arc<Knobs> {
        let k = Knobs::default();
        k.set_latency(latency_ms, jitter_ms);
        Arc::new(k)
    }

    pub fn set_latency(&self, latency_ms: u64, jitter_ms: u64) {
        self.latency_ms.store(latency_ms, Ordering::Relaxed);
        self.jitter_ms.store(jitter_ms, Ordering::Relaxed);
    }

    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    fn queue_depth(&self) -> u64 {
        self.queue_depth.load(Ordering::Relaxed)
    }

    /// The delay of one request: the mean plus uniform jitter.
    fn next_delay(&self) -> Duration {
        let base = self.latency_ms.load(Ordering::Relaxed);
        let jitter = self.jitter_ms.load(Ordering::Relaxed);
        Duration::from_micros(jittered_micros(base, jitter, fastrand::f64()))
    }
}

/// `base ± jitter` milliseconds in microseconds, with `unit` in [0, 1) choosing the point in the
/// jitter range (0 → base − jitter, 0.5 → base); never negative.
pub fn jittered_micros(base_ms: u64, jitter_ms: u64, unit: f64) -> u64 {
    let offset = (unit.clamp(0.0, 1.0) * 2.0 - 1.0) * jitter_ms as f64;
    ((base_ms as f64 + offset).max(0.0) * 1000.0).round() as u64
}

/// The running service; stops when dropped.
pub struct DemoService {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DemoService {
    /// Binds 127.0.0.1 on a free port before serving, so the address is usable at once.
    pub async fn start(knobs: Arc<Knobs>) -> std::io::Result<DemoService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/health", get(health))
            .with_state(knobs);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!("demo service stopped: {e}");
            }
        });
        Ok(DemoService { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for DemoService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /health`: waits the current delay, then reports itself up with its queue depth.
async fn health(State(knobs): State<Arc<Knobs>>) -> Json<Value> {
    tokio::time::sleep(knobs.next_delay()).await;
    Json(json!({
        "status": "UP",
        "queue_depth": knobs.queue_depth(),
        "version": "1.4.2",
        "checks": { "db": "UP", "cache": "UP" },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spans_the_range_around_the_mean() {
        assert_eq!(jittered_micros(20, 5, 0.0), 15_000);
        assert_eq!(jittered_micros(20, 5, 0.5), 20_000);
        assert_eq!(jittered_micros(20, 5, 1.0), 25_000);
        assert_eq!(jittered_micros(20, 0, 0.9), 20_000);
    }

    #[test]
    fn jitter_never_goes_below_zero() {
        assert_eq!(jittered_micros(2, 5, 0.0), 0);
    }

    #[test]
    fn knobs_change_what_requests_see() {
        let k = Knobs::new(20, 0);
        assert_eq!(k.next_delay(), Duration::from_millis(20));
        k.set_latency(200, 0);
        assert_eq!(k.next_delay(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn health_answers_with_the_queue_depth() {
        let knobs = Knobs::new(0, 0);
        knobs.set_queue_depth(42);
        let svc = DemoService::start(knobs).await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
        let body = http_get(&mut stream, "/health").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains(r#""queue_depth":42"#), "{body}");
        assert!(body.contains(r#""status":"UP""#), "{body}");
    }

    /// A minimal HTTP/1.1 GET without a client library (the probe under test is not needed here).
    async fn http_get(stream: &mut tokio::net::TcpStream, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }
}
