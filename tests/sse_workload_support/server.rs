//! A small real SSE server for the workload tests (axum on 127.0.0.1:0): `POST /pub` stores an
//! event with an opaque id (`n1-7f3a:<n>`) in a bounded replay buffer and pushes it to every
//! stream; `GET /sub` replays what follows `Last-Event-ID`, then streams live events with
//! heartbeat comments and a `retry:` hint.
//!
//! Faults the tests switch on (each makes the server lose or duplicate events in a way whose
//! exact effect the test can compute): end every stream; close (refuse streams, keep accepting
//! publishes without delivering them) and reopen ignoring `Last-Event-ID`; a blind window of
//! seqs accepted but never delivered; seqs delivered twice; publishes answered 500.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, broadcast, watch};

pub const ID_PREFIX: &str = "n1-7f3a:";

/// How a publish of a given seq is answered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PublishFault {
    None,
    /// 500, nothing stored or delivered.
    Reject,
    /// Stored and delivered, then 500 (the publisher must still not count it as owed).
    DeliverThenReject,
}

#[derive(Default)]
struct Faults {
    ignore_last_event_id: bool,
    /// Refusing streams; publishes with seq ≤ `stale_below` get 503, later ones are stored
    /// but not delivered.
    closed: Option<u64>,
    /// After reopening: publishes wait until this many streams are open.
    hold_until_streams: Option<usize>,
    /// Seqs accepted (200) but never stored or delivered.
    blind: Option<(u64, u64)>,
    /// Seqs above this and divisible by the modulus are delivered twice: (above, modulus).
    duplicate: Option<(u64, u64)>,
    publish_fault: Option<fn(u64) -> PublishFault>,
}

struct Inner {
    next: u64,
    buffer: VecDeque<(String, Bytes)>,
    capacity: usize,
    faults: Faults,
}

/// What the server did that the tests compare the report with.
#[derive(Default)]
pub struct Counters {
    pub accepted_while_closed: AtomicU64,
    pub blinded: AtomicU64,
    pub duplicated: AtomicU64,
    pub rejected: AtomicU64,
    pub streams_opened: AtomicU64,
    /// Streams that fell behind the live channel (the server itself lost events).
    pub lagged: AtomicU64,
}

struct Shared {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Bytes>,
    generation: watch::Sender<u64>,
    open_streams: AtomicUsize,
    streams_changed: Notify,
    heartbeat: Duration,
    retry_ms: u64,
    counters: Counters,
}

pub struct SseServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SseServer {
    /// Starts the server with a replay buffer of `capacity` events.
    pub async fn start(capacity: usize, heartbeat: Duration, retry_ms: u64) -> SseServer {
        let (live, _) = broadcast::channel(8192);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next: 0,
                buffer: VecDeque::new(),
                capacity,
                faults: Faults::default(),
            }),
            live,
            generation: watch::Sender::new(0),
            open_streams: AtomicUsize::new(0),
            streams_changed: Notify::new(),
            heartbeat,
            retry_ms,
            counters: Counters::default(),
        });
        let app = Router::new()
            .route("/sub", get(subscribe))
            .route("/pub", post(publish))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SseServer { addr, shared }
    }

    pub fn sub_url(&self) -> String {
        format!("http://{}/sub", self.addr)
    }

    pub fn pub_url(&self) -> String {
        format!("http://{}/pub", self.addr)
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn open_streams(&self) -> usize {
        self.shared.open_streams.load(Ordering::SeqCst)
    }

    fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.inner.lock().unwrap().faults);
    }

    /// Ends every open stream (events already pushed to a stream are still written).
    pub fn drop_all_streams(&self) {
        let _guard = self.shared.inner.lock().unwrap();
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Ends every stream and refuses new ones; publishes of seqs ≤ `stale_below` get 503, later
    /// ones are stored (for replay) but reach nobody.
    pub fn close(&self, stale_below: u64) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.faults.closed = Some(stale_below);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Accepts streams again; publishes wait until `streams` streams are open.
    pub fn reopen(&self, streams: usize) {
        self.faults(|f| {
            f.closed = None;
            f.hold_until_streams = Some(streams);
        });
    }

    pub fn ignore_last_event_id(&self) {
        self.faults(|f| f.ignore_last_event_id = true);
    }

    pub fn blind(&self, first: u64, last: u64) {
        self.faults(|f| f.blind = Some((first, last)));
    }

    pub fn duplicate(&self, above: u64, modulus: u64) {
        self.faults(|f| f.duplicate = Some((above, modulus)));
    }

    pub fn publish_fault(&self, rule: fn(u64) -> PublishFault) {
        self.faults(|f| f.publish_fault = Some(rule));
    }
}

fn frame(id: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: {data}\n\n"))
}

async fn publish(State(s): State<Arc<Shared>>, body: String) -> StatusCode {
    let Some(seq) = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["seq"].as_u64())
    else {
        return StatusCode::BAD_REQUEST;
    };
    loop {
        match handle_publish(&s, seq, &body) {
            Ok(status) => return status,
            Err(streams) => wait_for_streams(&s, streams).await,
        }
    }
}

/// Handles a publish under the lock; `Err(n)` when it must first wait for `n` open streams.
fn handle_publish(s: &Shared, seq: u64, body: &str) -> Result<StatusCode, usize> {
    let mut inner = s.inner.lock().unwrap();
    if let Some(n) = inner.faults.hold_until_streams
        && s.open_streams.load(Ordering::SeqCst) < n
    {
        return Err(n);
    }
    let fault = inner
        .faults
        .publish_fault
        .map_or(PublishFault::None, |f| f(seq));
    if fault == PublishFault::Reject {
        s.counters.rejected.fetch_add(1, Ordering::SeqCst);
        return Ok(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if let Some(stale_below) = inner.faults.closed
        && seq <= stale_below
    {
        return Ok(StatusCode::SERVICE_UNAVAILABLE);
    }
    if inner
        .faults
        .blind
        .is_some_and(|(a, b)| (a..=b).contains(&seq))
    {
        s.counters.blinded.fetch_add(1, Ordering::SeqCst);
        return Ok(StatusCode::OK);
    }
    inner.next += 1;
    let id = format!("{ID_PREFIX}{}", inner.next);
    let bytes = frame(&id, body);
    if inner.buffer.len() == inner.capacity {
        inner.buffer.pop_front();
    }
    inner.buffer.push_back((id, bytes.clone()));
    if inner.faults.closed.is_some() {
        s.counters
            .accepted_while_closed
            .fetch_add(1, Ordering::SeqCst);
    } else {
        // Sent while holding the lock, so a stream that snapshots the buffer under the lock
        // and subscribes there sees every event exactly once.
        let _ = s.live.send(bytes.clone());
        if inner
            .faults
            .duplicate
            .is_some_and(|(above, m)| seq > above && seq.is_multiple_of(m))
        {
            s.counters.duplicated.fetch_add(1, Ordering::SeqCst);
            let _ = s.live.send(bytes);
        }
    }
    if fault == PublishFault::DeliverThenReject {
        s.counters.rejected.fetch_add(1, Ordering::SeqCst);
        return Ok(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok(StatusCode::OK)
}

async fn wait_for_streams(s: &Shared, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let changed = s.streams_changed.notified();
        if s.open_streams.load(Ordering::SeqCst) >= n {
            return;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            panic!("the held publish waited 20 s for {n} streams");
        }
    }
}

/// Counts an open stream until dropped.
struct StreamGuard(Arc<Shared>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
        self.0.streams_changed.notify_waiters();
    }
}

async fn subscribe(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (replay, live, mut generation) = {
        let inner = s.inner.lock().unwrap();
        if inner.faults.closed.is_some() {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let replay: Vec<Bytes> = match last_id.filter(|_| !inner.faults.ignore_last_event_id) {
            Some(id) => {
                // After the named event; everything kept when it already left the buffer.
                let from = inner
                    .buffer
                    .iter()
                    .position(|(i, _)| *i == id)
                    .map_or(0, |p| p + 1);
                inner
                    .buffer
                    .iter()
                    .skip(from)
                    .map(|(_, b)| b.clone())
                    .collect()
            }
            None => Vec::new(),
        };
        s.open_streams.fetch_add(1, Ordering::SeqCst);
        (replay, s.live.subscribe(), s.generation.subscribe())
    };
    s.streams_changed.notify_waiters();
    s.counters.streams_opened.fetch_add(1, Ordering::SeqCst);
    generation.mark_unchanged();
    let hello = Bytes::from(format!("retry: {}\n: connected\n\n", s.retry_ms));
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + s.heartbeat, s.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pump = Pump {
        pending: std::iter::once(hello).chain(replay).collect(),
        live,
        generation,
        heartbeat,
        ending: false,
        _guard: StreamGuard(s.clone()),
        shared: s,
    };
    let body = Body::from_stream(futures::stream::unfold(pump, Pump::next));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap()
}

/// One stream's writer: the retry hint and the replay, then live events and heartbeats until
/// the generation changes (events already sent to it are still written) or the client leaves
/// (the body is dropped, and the guard with it).
struct Pump {
    pending: VecDeque<Bytes>,
    live: broadcast::Receiver<Bytes>,
    generation: watch::Receiver<u64>,
    heartbeat: tokio::time::Interval,
    ending: bool,
    shared: Arc<Shared>,
    _guard: StreamGuard,
}

impl Pump {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Pump)> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some((Ok(b), self));
            }
            if self.ending {
                return None;
            }
            tokio::select! {
                biased;
                _ = self.generation.changed() => {
                    self.ending = true;
                    while let Ok(b) = self.live.try_recv() {
                        self.pending.push_back(b);
                    }
                }
                r = self.live.recv() => match r {
                    Ok(b) => return Some((Ok(b), self)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // A real loss made by this server: the tests assert it never happens.
                        self.shared.counters.lagged.fetch_add(1, Ordering::SeqCst);
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => return Some((Ok(Bytes::from_static(b": ping\n\n")), self)),
            }
        }
    }
}
