//! Loopback servers and clients for the toxic tests. Every wait is bounded.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout};

use crate::chaos::proxy::{FaultProxy, ProxySpec, ToxicSpec};

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);
/// Cap on what a streaming server sends, so no loop runs unbounded.
const STREAM_CAP: u64 = 512 * 1024 * 1024;

/// What a test server saw.
#[derive(Default)]
pub struct ServerStats {
    pub accepted: AtomicUsize,
    pub received: AtomicU64,
    pub changed: Notify,
}

impl ServerStats {
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `received` reaches `n`.
    pub async fn wait_received(&self, n: u64) {
        let waited = timeout(STEP, async {
            loop {
                let notified = self.changed.notified();
                if self.received() >= n {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "server got {} bytes, expected {n}",
            self.received()
        );
    }
}

/// Starts a server on a random loopback port; `handle` runs for each connection.
pub async fn server<F, Fut>(handle: F) -> (SocketAddr, Arc<ServerStats>)
where
    F: Fn(TcpStream, Arc<ServerStats>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ServerStats::default());
    let shared = stats.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            shared.accepted.fetch_add(1, Ordering::SeqCst);
            shared.changed.notify_waiters();
            tokio::spawn(handle(sock, shared.clone()));
        }
    });
    (addr, stats)
}

/// Echoes every byte back.
pub async fn echo_server() -> SocketAddr {
    server(|mut sock, stats| async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 || sock.write_all(&buf[..n]).await.is_err() {
                return;
            }
            stats.received.fetch_add(n as u64, Ordering::SeqCst);
        }
    })
    .await
    .0
}

/// Sends `hello` on connect, then counts (and drops) what it receives.
pub async fn greeting_sink() -> (SocketAddr, Arc<ServerStats>) {
    server(|mut sock, stats| async move {
        if sock.write_all(b"hello").await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                return;
            }
            stats.received.fetch_add(n as u64, Ordering::SeqCst);
            stats.changed.notify_waiters();
        }
    })
    .await
}

/// Writes `chunk`-sized blocks as fast as the reader takes them (a busy stream).
pub async fn stream_server(chunk: usize) -> SocketAddr {
    server(move |mut sock, _| async move {
        let block = vec![b'x'; chunk];
        let mut sent = 0u64;
        while sent < STREAM_CAP && sock.write_all(&block).await.is_ok() {
            sent += chunk as u64;
        }
    })
    .await
    .0
}

/// Writes a heartbeat line every `every` (a stream kept alive, like SSE comments).
pub async fn heartbeat_server(every: Duration) -> SocketAddr {
    server(move |mut sock, _| async move {
        for _ in 0..10_000 {
            if sock.write_all(b": ping\n").await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    })
    .await
    .0
}

/// Sends exactly `total` bytes (counting 0..=255) then closes.
pub async fn fixed_sender(total: usize) -> SocketAddr {
    server(move |mut sock, _| async move {
        let data = pattern(total);
        let _ = sock.write_all(&data).await;
    })
    .await
    .0
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A proxy named `p` in front of `upstreams`, on a random port.
pub async fn proxy_to(upstreams: &[SocketAddr]) -> FaultProxy {
    let spec = ProxySpec {
        name: "p".into(),
        listen: "127.0.0.1:0".into(),
        upstream: upstreams.iter().map(|a| a.to_string()).collect(),
    };
    FaultProxy::start(&spec).await.unwrap()
}

/// Adds toxic `id` to `proxy`, its fields set by `set`.
pub fn add(proxy: &FaultProxy, id: &str, set: impl FnOnce(&mut ToxicSpec)) {
    let mut spec = ToxicSpec {
        proxy: proxy.name().to_string(),
        ..Default::default()
    };
    set(&mut spec);
    proxy.add_toxic(id, &spec).unwrap();
}

pub async fn connect(proxy: &FaultProxy) -> TcpStream {
    let sock = timeout(STEP, TcpStream::connect(proxy.local_addr()))
        .await
        .expect("connect timed out")
        .unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}

pub async fn write_all(sock: &mut TcpStream, data: &[u8]) {
    timeout(STEP, sock.write_all(data))
        .await
        .expect("write timed out")
        .unwrap();
}

/// Reads exactly `n` bytes.
pub async fn read_exact_len(sock: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    timeout(STEP, sock.read_exact(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("reading {n} bytes timed out"))
        .unwrap();
    buf
}

/// Sends `msg` and waits for it to come back; the round-trip time.
pub async fn round_trip(sock: &mut TcpStream, msg: &[u8]) -> Duration {
    let started = Instant::now();
    write_all(sock, msg).await;
    let back = read_exact_len(sock, msg.len()).await;
    assert_eq!(back, msg);
    started.elapsed()
}

/// True when nothing arrives within `window` (reading nothing is the point).
pub async fn quiet_for(sock: &mut TcpStream, window: Duration) -> bool {
    let mut byte = [0u8; 1];
    timeout(window, sock.read(&mut byte)).await.is_err()
}

/// How a read loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Clean end of stream (FIN).
    Eof,
    /// ECONNRESET.
    Reset,
    Other(ErrorKind),
}

/// Reads until the stream ends; the bytes read and how it ended. Panics after `limit`.
pub async fn read_to_end(sock: &mut TcpStream, limit: Duration) -> (u64, Ending) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let ending = timeout(limit, async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) => return Ending::Eof,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ending::Reset,
                Err(e) => return Ending::Other(e.kind()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("stream still open after {limit:?}"));
    (total, ending)
}

/// Reads until no byte has arrived for `idle` (bounded by `STEP`); the bytes read.
pub async fn drain_until_idle(sock: &mut TcpStream, idle: Duration) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let deadline = Instant::now() + STEP;
    while Instant::now() < deadline {
        match timeout(idle, sock.read(&mut buf)).await {
            Err(_) => return total,
            Ok(Ok(0)) => panic!("stream closed while draining"),
            Ok(Ok(n)) => total += n as u64,
            Ok(Err(e)) => panic!("read failed while draining: {e}"),
        }
    }
    panic!("stream never went idle");
}
