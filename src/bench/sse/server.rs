//! The benchmark's SSE server, run as a child process (`patrol bench sse server`) so the swarm's
//! memory is measured alone: `GET /sub` streams every event of one broadcast, generated here at
//! a constant rate (`id: b<shard>-<n>`, `data: {"seq":n,"ts":ms}`), with heartbeat comments.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use tokio::sync::broadcast;

use crate::chaos::workload::pace::Pacer;

/// Heartbeat comments, sent to every stream through the same broadcast as the events.
const HEARTBEAT: Duration = Duration::from_secs(15);

struct Shared {
    events: broadcast::Sender<Bytes>,
    /// Events a stream missed because it fell behind (reported on exit).
    lagged: AtomicU64,
}

/// Serves on 127.0.0.1:0, prints the port as the first stdout line, and generates `rate` events
/// per second until stdin closes (the parent died or is done).
pub async fn run(shard: u32, rate: f64) -> Result<(), String> {
    crate::chaos::workload::raise_fd_limit(64).map_err(|e| format!("file descriptors: {e}"))?;
    let (events, _) = broadcast::channel(4096);
    let shared = Arc::new(Shared {
        events,
        lagged: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let app = Router::new()
        .route("/sub", get(subscribe))
        .with_state(shared.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bench sse server: {e}");
        }
    });
    tokio::spawn(generate(shared.events.clone(), shard, rate));
    println!("{port}");
    wait_for_stdin_to_close().await;
    let lagged = shared.lagged.load(Ordering::Relaxed);
    if lagged > 0 {
        eprintln!("bench sse server {shard}: streams fell behind and skipped {lagged} events");
    }
    Ok(())
}

async fn wait_for_stdin_to_close() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

async fn generate(events: broadcast::Sender<Bytes>, shard: u32, rate: f64) {
    let mut pacer = Pacer::new(rate);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    for seq in 1u64.. {
        tokio::select! {
            _ = pacer.tick() => {
                let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
                let frame = format!("id: b{shard}-{seq}\ndata: {{\"seq\":{seq},\"ts\":{ts}}}\n\n");
                let _ = events.send(Bytes::from(frame));
            }
            _ = heartbeat.tick() => {
                let _ = events.send(Bytes::from_static(b": hb\n\n"));
            }
        }
    }
}

async fn subscribe(State(shared): State<Arc<Shared>>) -> Response {
    let rx = shared.events.subscribe();
    let hello = Some(Bytes::from_static(b"retry: 1000\n: hello\n\n"));
    let stream = futures::stream::unfold(
        (rx, hello, shared),
        |(mut rx, mut hello, shared)| async move {
            if let Some(h) = hello.take() {
                return Some((Ok::<_, std::io::Error>(h), (rx, hello, shared)));
            }
            loop {
                match rx.recv().await {
                    Ok(b) => return Some((Ok(b), (rx, hello, shared))),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        shared.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
