//! The fault proxy in front of real HTTP streaming (SSE-like) servers: round-robin over two
//! upstreams and failover when one dies, and toxics that act on a stream that is already open.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::get;
use patrol::chaos::proxy::{CutAfterSpec, Direction, FaultProxy, ProxySpec, ToxicSpec};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const STEP: Duration = Duration::from_secs(10);
/// Time between two events of the test server; a heartbeat comment goes between them.
const TICK: Duration = Duration::from_millis(20);

/// A streaming node: `GET /events` sends `id: <label>-<n>` / `data: <label>` events forever
/// (bounded), with heartbeat comments in between.
struct Node {
    addr: SocketAddr,
    server: JoinHandle<()>,
}

async fn start_node(label: &'static str) -> Node {
    let app = Router::new().route("/events", get(move || events(label)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Node { addr, server }
}

async fn events(label: &'static str) -> Response {
    let stream = futures::stream::unfold(0u32, move |n| async move {
        if n >= 10_000 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(TICK).await;
        }
        let text = format!("id: {label}-{n}\ndata: {label}\n\n: heartbeat\n\n");
        Some((Ok::<_, std::io::Error>(Bytes::from(text)), n + 1))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// Kills the node's listener (open streams may go on): new connections are refused.
async fn kill_listener(node: Node) {
    node.server.abort();
    let _ = node.server.await;
    let refused = tokio::net::TcpStream::connect(node.addr).await;
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused,
        "the killed node still accepts"
    );
}

async fn start_proxy(upstreams: &[SocketAddr]) -> FaultProxy {
    let spec = ProxySpec {
        name: "lb".into(),
        listen: "127.0.0.1:0".into(),
        upstream: upstreams.iter().map(|a| a.to_string()).collect(),
    };
    FaultProxy::start(&spec).await.unwrap()
}

fn http() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// An open SSE stream read event by event.
struct Stream {
    resp: reqwest::Response,
    text: String,
}

impl Stream {
    async fn open(http: &reqwest::Client, proxy: &FaultProxy) -> Stream {
        let url = format!("http://{}/events", proxy.local_addr());
        let resp = timeout(STEP, http.get(url).send()).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        Stream {
            resp,
            text: String::new(),
        }
    }

    /// The next event's id (`A-3`), or None when the stream ended.
    async fn next_id(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(id) = self.take_id() {
                return Some(id);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.resp.chunk()).await {
                Err(_) => panic!("no event within {within:?}"),
                Ok(Ok(Some(bytes))) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) => return None,
            }
        }
    }

    fn take_id(&mut self) -> Option<String> {
        let start = self.text.find("id: ")?;
        let end = start + self.text[start..].find('\n')?;
        let id = self.text[start + 4..end].to_string();
        self.text.drain(..end);
        Some(id)
    }

    /// Reads until nothing has come for `idle`; false if the stream ended.
    async fn drain_until_idle(&mut self, idle: Duration) -> bool {
        for _ in 0..10_000 {
            match timeout(idle, self.resp.chunk()).await {
                Err(_) => return true,
                Ok(Ok(Some(bytes))) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) => return false,
            }
        }
        panic!("the stream never went idle");
    }

    /// Reads until the stream ends; panics after `limit`.
    async fn until_end(&mut self, limit: Duration) {
        let ended = timeout(limit, async {
            while let Ok(Some(_)) = self.resp.chunk().await {}
        })
        .await;
        assert!(ended.is_ok(), "stream still open after {limit:?}");
    }
}

fn seq_of(id: &str) -> u32 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

fn node_of(id: &str) -> &str {
    id.split_once('-').unwrap().0
}

fn toxic(set: impl FnOnce(&mut ToxicSpec)) -> ToxicSpec {
    let mut spec = ToxicSpec {
        proxy: "lb".into(),
        ..Default::default()
    };
    set(&mut spec);
    spec
}

#[tokio::test]
async fn round_robin_and_failover_when_an_upstream_dies() {
    let a = start_node("A").await;
    let b = start_node("B").await;
    let proxy = start_proxy(&[a.addr, b.addr]).await;
    let http = http();

    let mut nodes = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..4 {
        let mut s = Stream::open(&http, &proxy).await;
        let id = s.next_id(STEP).await.expect("stream ended at once");
        nodes.push(node_of(&id).to_string());
        streams.push(s);
    }
    assert_eq!(
        nodes,
        ["A", "B", "A", "B"],
        "round-robin over two upstreams"
    );
    assert_eq!(proxy.open_connections(), 4);

    kill_listener(a).await;
    for _ in 0..4 {
        let mut s = Stream::open(&http, &proxy).await;
        let id = s.next_id(STEP).await.expect("stream ended at once");
        assert_eq!(
            node_of(&id),
            "B",
            "a new connection went to the dead upstream"
        );
        streams.push(s);
    }
    // The streams opened before the kill still flow through the proxy.
    for s in &mut streams[..4] {
        assert!(s.next_id(STEP).await.is_some());
    }
    drop(streams);
    proxy.shutdown().await;
    assert_eq!(proxy.open_connections(), 0);
    drop(b);
}

#[tokio::test]
async fn toxics_added_while_a_stream_is_open_act_on_it() {
    let node = start_node("A").await;
    let proxy = start_proxy(&[node.addr]).await;
    let http = http();
    let mut stream = Stream::open(&http, &proxy).await;
    let first = stream.next_id(STEP).await.unwrap();

    // Stall: the open stream goes silent although the server keeps sending...
    let stall = toxic(|t| {
        t.stall = true;
        t.direction = Direction::Downstream;
    });
    proxy.add_toxic("stall", &stall).unwrap();
    assert!(
        stream.drain_until_idle(Duration::from_millis(300)).await,
        "stream ended"
    );
    assert!(
        stream.drain_until_idle(Duration::from_millis(500)).await,
        "stream ended"
    );
    let before = stream.text.clone();
    assert!(
        timeout(Duration::from_millis(500), stream.resp.chunk())
            .await
            .is_err(),
        "bytes flowed through a stall"
    );
    assert_eq!(stream.text, before);

    // ...and once removed, every event held back arrives, in order, none lost.
    assert!(proxy.remove_toxic("stall"));
    let mut last = seq_of(&first);
    for _ in 0..40 {
        let id = stream
            .next_id(STEP)
            .await
            .expect("stream ended after the stall");
        assert_eq!(
            seq_of(&id),
            last + 1,
            "event lost or reordered across the stall"
        );
        last = seq_of(&id);
    }

    // cut_after: the heartbeat-kept stream is closed although it is busy.
    let cut = toxic(|t| {
        t.cut_after = Some(CutAfterSpec {
            bytes: None,
            after: Some(Duration::from_millis(300)),
        })
    });
    let added = Instant::now();
    proxy.add_toxic("cut", &cut).unwrap();
    stream.until_end(STEP).await;
    let lived = added.elapsed();
    assert!(lived >= Duration::from_millis(300), "cut after {lived:?}");
    assert!(lived < Duration::from_secs(3), "cut after {lived:?}");
    assert_eq!(proxy.active_toxics(), ["cut"]);
    assert!(proxy.remove_toxic("cut"));

    // Latency added to a new stream delays its events; removed, the stream is fast again.
    proxy
        .add_toxic(
            "slow",
            &toxic(|t| t.latency = Some(Duration::from_millis(400))),
        )
        .unwrap();
    let opened = Instant::now();
    let mut slow = Stream::open(&http, &proxy).await;
    slow.next_id(STEP).await.unwrap();
    assert!(
        opened.elapsed() >= Duration::from_millis(800),
        "request and response both delayed"
    );
    assert!(proxy.remove_toxic("slow"));
    let mut fast = Stream::open(&http, &proxy).await;
    let started = Instant::now();
    fast.next_id(STEP).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(400));
}

/// Thousands of open connections: all carry bytes, and one toxic reaches every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toxic_reaches_thousands_of_open_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CONNS: usize = 3_000;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                if sock.write_all(b"hello").await.is_ok() {
                    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    let proxy = start_proxy(&[upstream]).await;
    let mut clients = Vec::with_capacity(CONNS);
    for batch in 0..CONNS / 100 {
        let opened = futures::future::join_all((0..100).map(|_| async {
            let mut sock = tokio::net::TcpStream::connect(proxy.local_addr())
                .await
                .unwrap();
            let mut hello = [0u8; 5];
            timeout(STEP, sock.read_exact(&mut hello))
                .await
                .unwrap()
                .unwrap();
            sock
        }))
        .await;
        assert_eq!(opened.len(), 100, "batch {batch}");
        clients.extend(opened);
    }
    assert_eq!(proxy.open_connections(), CONNS);

    proxy.add_toxic("rst", &toxic(|t| t.reset = true)).unwrap();
    let started = Instant::now();
    let endings = futures::future::join_all(clients.iter_mut().map(|sock| async move {
        let mut buf = [0u8; 16];
        timeout(STEP, sock.read(&mut buf))
            .await
            .map(|r| r.map_err(|e| e.kind()))
    }))
    .await;
    let reset = endings
        .iter()
        .filter(|e| matches!(e, Ok(Err(std::io::ErrorKind::ConnectionReset))))
        .count();
    assert_eq!(reset, CONNS, "connections not reset: {}", CONNS - reset);
    assert!(started.elapsed() < STEP);
    for _ in 0..500 {
        if proxy.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.open_connections(), 0);
}
