//! One node of the SSE cluster, run as its own process by the hidden
//! `patrol demo sse-node --log FILE --listen HOST:PORT --pidfile PATH` command:
//!
//! - `GET /sub/{topic}`: `text/event-stream` — a `retry: 1000` hint, `: ping` heartbeats, and
//!   events as `id: <opaque id>` + `data: <published body>`. With `Last-Event-ID` the stream first
//!   replays every buffered event after that id (all it has when the id is older than the buffer
//!   or unknown: the gap is lost, as in production), then goes live.
//! - `POST /pub/{topic}`: appends the body to the shared log; 201 with the new id as the body.
//! - `GET /healthz`: 200 while the process runs (a paused process answers nothing).
//!
//! Nodes never talk to each other: each appends to and polls the shared SQLite log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Interval, MissedTickBehavior};

use super::hub::{Hub, Resume};
use super::log::{EventLog, LoggedEvent, valid_topic};
use crate::cli::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

/// How often a node looks for events other nodes appended.
const POLL_INTERVAL: Duration = Duration::from_millis(15);
/// Rows read per query while catching up.
const POLL_BATCH: i64 = 1000;
/// The reconnection delay suggested to clients, in milliseconds.
pub const RETRY_MS: u64 = 1000;
/// The heartbeat comment.
pub const HEARTBEAT: &str = ": ping\n\n";

/// `patrol demo sse-node`: one node of the demo SSE cluster (hidden; started by the cluster).
#[derive(clap::Args, Debug, Clone)]
pub struct SseNodeArgs {
    /// The shared SQLite event log (created when missing).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: String,
    /// Where the node writes its process id.
    #[arg(long, value_name = "PATH")]
    pub pidfile: PathBuf,
    /// Events kept in memory for `Last-Event-ID` replays.
    #[arg(long, default_value_t = 1000)]
    pub buffer: usize,
    /// Interval between `: ping` comments on every stream.
    #[arg(long, default_value = "1s", value_parser = crate::config::duration::parse)]
    pub heartbeat: Duration,
    /// Start every stream at "now", ignoring `Last-Event-ID` (a faulty node, for tests).
    #[arg(long)]
    pub ignore_last_event_id: bool,
}

struct NodeState {
    log: EventLog,
    hub: Arc<Hub>,
    heartbeat: Duration,
    ignore_last_event_id: bool,
}

/// Runs a node until SIGTERM or SIGINT. Prints `listening on ADDR` to stderr once it serves.
pub async fn run_node(args: SseNodeArgs) -> u8 {
    if args.heartbeat.is_zero() {
        eprintln!("patrol demo sse-node: --heartbeat must be greater than 0");
        return EXIT_INVALID;
    }
    match serve(args).await {
        Ok(()) => EXIT_OK,
        Err(msg) => {
            eprintln!("patrol demo sse-node: {msg}");
            EXIT_FAILED
        }
    }
}

async fn serve(args: SseNodeArgs) -> Result<(), String> {
    let log = EventLog::open(&args.log).await?;
    let head = log.head().await?;
    let preload = log
        .last(i64::try_from(args.buffer).unwrap_or(i64::MAX))
        .await?;
    let hub = Arc::new(Hub::new(args.buffer, head, preload));
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    write_pidfile(&args.pidfile)?;
    tokio::spawn(poll_log(log.clone(), hub.clone(), head));
    let state = Arc::new(NodeState {
        log,
        hub,
        heartbeat: args.heartbeat,
        ignore_last_event_id: args.ignore_last_event_id,
    });
    let app = router(state);
    // Small SSE frames must leave at once, not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    // The readiness signal the cluster waits for; stderr may be gone later, so never panic on it.
    let _ = writeln!(std::io::stderr(), "listening on {addr}");
    let outcome = tokio::select! {
        served = server => match served {
            Ok(Ok(())) => Err("the server stopped".to_string()),
            Ok(Err(e)) => Err(format!("the server failed: {e}")),
            Err(e) => Err(format!("the server task failed: {e}")),
        },
        () = shutdown_signal() => Ok(()),
    };
    remove_own_pidfile(&args.pidfile);
    outcome
}

fn router(state: Arc<NodeState>) -> Router {
    Router::new()
        .route("/sub/{topic}", get(subscribe))
        .route("/pub/{topic}", post(publish))
        .route("/healthz", get(health))
        .with_state(state)
}

async fn publish(
    State(state): State<Arc<NodeState>>,
    UrlPath(topic): UrlPath<String>,
    body: Bytes,
) -> Response {
    if !valid_topic(&topic) {
        return bad_topic(&topic);
    }
    let Ok(body) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body must be UTF-8 text\n").into_response();
    };
    match state.log.append(&topic, body).await {
        Ok(id) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            id,
        )
            .into_response(),
        Err(msg) => (StatusCode::SERVICE_UNAVAILABLE, format!("{msg}\n")).into_response(),
    }
}

async fn subscribe(
    State(state): State<Arc<NodeState>>,
    UrlPath(topic): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if !valid_topic(&topic) {
        return bad_topic(&topic);
    }
    let resume = resume_point(&state, &headers);
    let stream = EventStream::start(&state, topic, resume);
    let body = futures::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), s))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// 200 while the node runs, with how far it has followed the log and what it can replay.
async fn health(State(state): State<Arc<NodeState>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "UP",
        "log_position": state.hub.newest(),
        "buffered": state.hub.buffered(),
    }))
}

fn bad_topic(topic: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!(
            "topic {topic:?}: use 1 to {} letters, digits, '-', '_' or '.'\n",
            super::log::MAX_TOPIC_LEN
        ),
    )
        .into_response()
}

/// Where a stream starts, from the `Last-Event-ID` header.
fn resume_point(state: &NodeState, headers: &HeaderMap) -> Resume {
    if state.ignore_last_event_id {
        return Resume::Now;
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match last {
        None => Resume::Now,
        // An id this log does not know: replay everything buffered, the client sorts it out.
        Some(id) => Resume::After(state.log.position_of(id).unwrap_or(0)),
    }
}

/// One subscriber's stream: the opening chunk, then live events and heartbeats.
struct EventStream {
    topic: String,
    hub: Arc<Hub>,
    opening: Option<Bytes>,
    live: tokio::sync::broadcast::Receiver<Arc<LoggedEvent>>,
    cursor: i64,
    heartbeat: Interval,
}

impl EventStream {
    fn start(state: &NodeState, topic: String, resume: Resume) -> EventStream {
        let sub = state.hub.subscribe(&topic, resume);
        let mut opening = format!("retry: {RETRY_MS}\n\n");
        let mut cursor = sub.cursor;
        for event in &sub.replay {
            write_event(&mut opening, event);
            cursor = cursor.max(event.pos);
        }
        let start = tokio::time::Instant::now() + state.heartbeat;
        let mut heartbeat = tokio::time::interval_at(start, state.heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        EventStream {
            topic,
            hub: state.hub.clone(),
            opening: Some(Bytes::from(opening)),
            live: sub.live,
            cursor,
            heartbeat,
        }
    }

    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(opening);
        }
        loop {
            let mut out = String::new();
            tokio::select! {
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(HEARTBEAT.as_bytes())),
                received = self.live.recv() => match received {
                    Ok(event) => {
                        self.write_if_new(&event, &mut out);
                        self.drain_ready(&mut out);
                    }
                    Err(RecvError::Lagged(_)) => self.catch_up(&mut out),
                    Err(RecvError::Closed) => return None,
                },
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
    }

    /// Events already waiting go out in the same chunk.
    fn drain_ready(&mut self, out: &mut String) {
        while let Ok(event) = self.live.try_recv() {
            self.write_if_new(&event, out);
        }
    }

    /// This subscriber fell behind the live feed: take what the buffer still holds.
    fn catch_up(&mut self, out: &mut String) {
        for event in self.hub.buffered_after(&self.topic, self.cursor) {
            self.write_if_new(&event, out);
        }
    }

    fn write_if_new(&mut self, event: &LoggedEvent, out: &mut String) {
        if event.pos > self.cursor && event.topic == self.topic {
            write_event(out, event);
            self.cursor = event.pos;
        }
    }
}

/// Appends one event in wire format; every line of the body becomes a `data:` line.
pub fn write_event(out: &mut String, event: &LoggedEvent) {
    out.push_str("id: ");
    out.push_str(&event.id);
    out.push('\n');
    let body = event.body.replace("\r\n", "\n").replace('\r', "\n");
    for line in body.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// Follows the shared log from position `from`, handing new events to the hub.
async fn poll_log(log: EventLog, hub: Arc<Hub>, mut cursor: i64) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match log.after(cursor, POLL_BATCH).await {
                Ok(events) => {
                    let full = events.len() as i64 == POLL_BATCH;
                    if let Some(last) = events.last() {
                        cursor = last.pos;
                    }
                    hub.push(events);
                    if !full {
                        break;
                    }
                }
                Err(msg) => {
                    tracing::warn!("sse node: {msg}");
                    break;
                }
            }
        }
    }
}

/// Writes our pid atomically (a reader never sees a half-written file).
fn write_pidfile(path: &Path) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write the pidfile {}: {e}", path.display()))
}

/// Removes the pidfile unless a newer node already wrote its own pid there.
fn remove_own_pidfile(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .map(|text| text.trim() == std::process::id().to_string())
        .unwrap_or(false);
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // Without a SIGTERM handler the default action (exit) still stops the node.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
