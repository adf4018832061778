//! The built-in TCP fault proxy and its toxics.
//!
//! Like Toxiproxy, a proxy listens on one address and forwards each connection to an upstream
//! (round-robin, skipping upstreams that refuse the connection). Unlike it, toxics also hit
//! connections that are already open — added or removed, they act on the very next chunk, and
//! on idle connections at once — and `cut_after` closes a stream even while heartbeats keep it
//! busy. Each connection runs one task per direction ([`pipe`]); the toxic set is published
//! through a `watch` channel that every pipe follows.

mod pipe;
mod spec;
mod toxic;

pub use spec::{CutAfterSpec, Direction, ProxySpec, SlicerSpec, ToxicSpec};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Issues;
use pipe::{Conn, Pipe};
use toxic::{ActiveToxic, Flow, ToxicSet};

/// Longest wait for one upstream to accept a connection before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest `shutdown` waits for connections to close.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running fault proxy. Cheap to clone; the proxy stops when `shutdown` is called or the last
/// handle is dropped.
#[derive(Clone)]
pub struct FaultProxy {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

/// What the accept loop and connection tasks use.
struct Shared {
    upstreams: Vec<String>,
    next_upstream: AtomicUsize,
    toxics: watch::Sender<ToxicSet>,
    next_serial: AtomicU64,
    open: Arc<AtomicUsize>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("name", &self.inner.name)
            .field("local_addr", &self.inner.local_addr)
            .field("upstreams", &self.inner.shared.upstreams)
            .finish()
    }
}

impl FaultProxy {
    /// Binds `spec.listen` and starts accepting. Fails if the address cannot be bound or the
    /// spec has no upstream.
    pub async fn start(spec: &ProxySpec) -> std::io::Result<FaultProxy> {
        if spec.upstream.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "proxy {}: upstream: at least one host:port is required",
                    spec.name
                ),
            ));
        }
        let listener = TcpListener::bind(&spec.listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("proxy {}: listen {}: {e}", spec.name, spec.listen),
            )
        })?;
        let local_addr = listener.local_addr()?;
        let (toxics, _) = watch::channel(ToxicSet::default());
        let shared = Arc::new(Shared {
            upstreams: spec.upstream.clone(),
            next_upstream: AtomicUsize::new(0),
            toxics,
            next_serial: AtomicU64::new(1),
            open: Arc::new(AtomicUsize::new(0)),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        shared.tasks.spawn(accept_loop(listener, shared.clone()));
        tracing::info!(proxy = %spec.name, %local_addr, upstream = ?spec.upstream, "fault proxy listening");
        Ok(FaultProxy {
            inner: Arc::new(Inner {
                name: spec.name.clone(),
                local_addr,
                shared,
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address clients connect to (the real port when `listen` said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Adds toxic `id`; it acts on open connections at once and on every new one. Fails if the
    /// spec is invalid, names another proxy, or `id` is already active.
    pub fn add_toxic(&self, id: &str, toxic: &ToxicSpec) -> Result<(), String> {
        let mut issues = Issues::default();
        toxic.validate(&mut issues);
        if let Some((_, msg)) = issues.items.first() {
            return Err(format!("toxic {id}: {msg}"));
        }
        if toxic.proxy != self.inner.name {
            return Err(format!(
                "toxic {id}: proxy: it names proxy {:?}, this is {:?}",
                toxic.proxy, self.inner.name
            ));
        }
        let shared = &self.inner.shared;
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let active = ActiveToxic::new(id, serial, toxic.clone());
        let mut duplicate = false;
        shared.toxics.send_if_modified(|set| {
            duplicate = set.iter().any(|t| t.id == id);
            if !duplicate {
                let mut next = (**set).clone();
                next.push(active);
                *set = Arc::new(next);
            }
            !duplicate
        });
        if duplicate {
            return Err(format!(
                "toxic {id}: already active on proxy {}",
                self.inner.name
            ));
        }
        tracing::info!(proxy = %self.inner.name, toxic = id, what = %toxic.describe(), "toxic added");
        Ok(())
    }

    /// Removes toxic `id`; open connections forward normally again at once. False if it was not
    /// active.
    pub fn remove_toxic(&self, id: &str) -> bool {
        let removed = self.inner.shared.toxics.send_if_modified(|set| {
            if !set.iter().any(|t| t.id == id) {
                return false;
            }
            *set = Arc::new(set.iter().filter(|t| t.id != id).cloned().collect());
            true
        });
        if removed {
            tracing::info!(proxy = %self.inner.name, toxic = id, "toxic removed");
        }
        removed
    }

    /// Ids of the active toxics, in the order they were added.
    pub fn active_toxics(&self) -> Vec<String> {
        let set = self.inner.shared.toxics.borrow();
        set.iter().map(|t| t.id.clone()).collect()
    }

    /// Connections being proxied (or connecting to an upstream) right now.
    pub fn open_connections(&self) -> usize {
        self.inner.shared.open.load(Ordering::SeqCst)
    }

    /// Stops accepting, closes every connection and waits (bounded) for them to be gone.
    /// Other handles see a stopped proxy.
    pub async fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.cancel.cancel();
        shared.tasks.close();
        if timeout(SHUTDOWN_TIMEOUT, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(proxy = %self.inner.name, "fault proxy: connections still closing after {SHUTDOWN_TIMEOUT:?}");
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((client, _)) => admit(&shared, client),
            Err(e) => {
                tracing::warn!("fault proxy: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Refuses the new connection (down, reset) or starts proxying it.
fn admit(shared: &Arc<Shared>, client: TcpStream) {
    let seed = fastrand::u64(..);
    let set = shared.toxics.borrow().clone();
    if let Some(t) = toxic::down::refusing(&set, seed) {
        tracing::debug!(toxic = %t.id, "fault proxy: new connection refused");
        toxic::reset::abort_on_close(&client);
        return;
    }
    let conn = Conn::new(seed, shared.cancel.child_token(), shared.open.clone());
    shared.tasks.spawn(serve(shared.clone(), client, conn));
}

/// Dials an upstream, then runs the upstream direction here and the downstream one in a task.
async fn serve(shared: Arc<Shared>, client: TcpStream, conn: Arc<Conn>) {
    let _ = client.set_nodelay(true);
    let upstream = tokio::select! {
        _ = conn.cancel.cancelled() => return,
        u = connect_upstream(&shared) => u,
    };
    let Some(upstream) = upstream else {
        tracing::warn!(upstreams = ?shared.upstreams, "fault proxy: no upstream accepted the connection");
        toxic::reset::abort_on_close(&client);
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let down = Pipe::new(
        Flow::Downstream,
        upstream_read,
        client_write,
        conn.clone(),
        shared.toxics.subscribe(),
    );
    let up = Pipe::new(
        Flow::Upstream,
        client_read,
        upstream_write,
        conn,
        shared.toxics.subscribe(),
    );
    shared.tasks.spawn(down.run());
    drop(shared);
    up.run().await;
}

/// The next upstream in turn that accepts a connection; each is tried at most once.
async fn connect_upstream(shared: &Shared) -> Option<TcpStream> {
    let n = shared.upstreams.len();
    let start = shared.next_upstream.fetch_add(1, Ordering::Relaxed);
    for i in 0..n {
        let addr = &shared.upstreams[(start + i) % n];
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr.as_str())).await {
            Ok(Ok(sock)) => {
                let _ = sock.set_nodelay(true);
                return Some(sock);
            }
            Ok(Err(e)) => tracing::debug!(upstream = %addr, "fault proxy: upstream refused: {e}"),
            Err(_) => tracing::debug!(upstream = %addr, "fault proxy: upstream connect timed out"),
        }
    }
    None
}
