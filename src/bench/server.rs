//! The benchmark's target: an axum server on a random loopback port answering `/health/{i}`
//! with a small JSON body, like a service's health endpoint.

use axum::Router;
use axum::routing::get;

/// Binds 127.0.0.1:0 (so the port is known before anyone connects), serves on a spawned task and
/// returns the port.
pub async fn start() -> std::io::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new().route(
        "/health/{i}",
        get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("bench server stopped: {e}");
        }
    });
    Ok(port)
}
