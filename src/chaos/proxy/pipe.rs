//! One direction of one proxied connection: read from one socket, write to the other, and on
//! every chunk obey the toxic set as it is *now* (a `watch` channel wakes the pipe when it
//! changes, so toxics hit open connections immediately, even idle ones).
//!
//! With no toxic the pipe reads into its 16 KiB buffer and writes straight from it (no
//! allocation per chunk). With a toxic, chunks that must wait (latency) are copied into a queue
//! with the instant they become due, and writes are cut into pieces (slicer, bandwidth, cut
//! budget). Every wait is a `select!` that also watches the toxic set, the connection's cancel
//! token and the cut deadline, so a stall, reset or cut acts even on a busy stream.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::toxic::cut_after::CutMarks;
use super::toxic::reset::{ResetSides, abort_on_close};
use super::toxic::{ConnFacts, Effect, Flow, ToxicSet, bandwidth};

/// Read buffer of one direction.
pub(crate) const BUF_SIZE: usize = 16 * 1024;
/// Most bytes a direction holds for delayed delivery before it stops reading (back-pressure).
const MAX_QUEUED: usize = 256 * 1024;
/// Pacing makes up for timer lateness up to this much, so throughput meets the bandwidth.
const PACING_CATCH_UP: Duration = Duration::from_millis(100);
/// Longest wait for a FIN to be written when a direction ends.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What both directions of a connection share.
pub(crate) struct Conn {
    pub facts: ConnFacts,
    /// Cancelled when the connection must close (cut, reset, error, proxy shutdown).
    pub cancel: CancellationToken,
    /// The client socket is being aborted: its write half must not send a FIN first.
    reset_client: AtomicBool,
    reset_upstream: AtomicBool,
    open: Arc<AtomicUsize>,
}

impl Conn {
    /// A connection counted in `open` until both directions are gone.
    pub fn new(seed: u64, cancel: CancellationToken, open: Arc<AtomicUsize>) -> Arc<Conn> {
        open.fetch_add(1, Ordering::SeqCst);
        Arc::new(Conn {
            facts: ConnFacts {
                seed,
                opened_at: Instant::now(),
            },
            cancel,
            reset_client: AtomicBool::new(false),
            reset_upstream: AtomicBool::new(false),
            open,
        })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Bytes read but not yet written, waiting for their due time.
struct Chunk {
    data: Vec<u8>,
    sent: usize,
    due: Instant,
}

enum Event {
    Cancelled,
    Changed,
    CutDeadline,
    Wake,
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
}

enum End {
    /// The source closed and everything was written: pass the FIN on.
    Eof,
    /// The other direction (or the proxy) closed the connection.
    Closed,
    Cut,
    Reset(ResetSides),
    /// An I/O error; a reset read from one side is passed on as a reset.
    Failed {
        reset_peer: bool,
    },
}

/// When the next piece may be written.
enum WritePlan {
    Now(usize),
    At(Instant),
    Never,
}

pub(crate) struct Pipe {
    flow: Flow,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    conn: Arc<Conn>,
    toxics: watch::Receiver<ToxicSet>,
    buf: Box<[u8]>,
    /// Bytes of `buf` read on the fast path and not yet written.
    held: Range<usize>,
    queue: VecDeque<Chunk>,
    queued: usize,
    forwarded: u64,
    marks: CutMarks,
    effect: Effect,
    next_write: Option<Instant>,
    last_due: Option<Instant>,
    eof: bool,
}

impl Pipe {
    pub fn new(
        flow: Flow,
        reader: OwnedReadHalf,
        writer: OwnedWriteHalf,
        conn: Arc<Conn>,
        toxics: watch::Receiver<ToxicSet>,
    ) -> Pipe {
        Pipe {
            flow,
            reader,
            writer,
            conn,
            toxics,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            held: 0..0,
            queue: VecDeque::new(),
            queued: 0,
            forwarded: 0,
            marks: CutMarks::default(),
            effect: Effect::default(),
            next_write: None,
            last_due: None,
            eof: false,
        }
    }

    /// Copies until the connection ends, then closes this direction the way the end demands.
    pub async fn run(mut self) {
        self.refresh();
        let end = self.copy().await;
        self.finish(end).await;
    }

    async fn copy(&mut self) -> End {
        loop {
            if let Some(sides) = self.effect.reset {
                return End::Reset(sides);
            }
            if self.cut_due() {
                return End::Cut;
            }
            if self.eof && self.held.is_empty() && self.queue.is_empty() {
                return End::Eof;
            }
            let event = self.next_event().await;
            if let Some(end) = self.handle(event) {
                return end;
            }
        }
    }

    fn refresh(&mut self) {
        let set = self.toxics.borrow_and_update().clone();
        let facts = self.conn.facts;
        self.effect = Effect::compute(&set, facts, self.flow, &mut self.marks, self.forwarded);
    }

    fn cut_due(&self) -> bool {
        self.effect
            .cut_at_bytes
            .is_some_and(|at| self.forwarded >= at)
            || self
                .effect
                .cut_deadline
                .is_some_and(|t| t <= Instant::now())
    }

    fn can_read(&self) -> bool {
        !self.eof && self.held.is_empty() && !self.effect.stall && self.queued < MAX_QUEUED
    }

    /// Waits for the next thing to do. Two shapes: bytes held in `buf` (no read until they are
    /// written) or not (read into `buf`, write from the queue).
    async fn next_event(&mut self) -> Event {
        let now = Instant::now();
        let (piece, wake) = match self.write_plan(now) {
            WritePlan::Now(len) => (Some(len), None),
            WritePlan::At(t) => (None, Some(t)),
            WritePlan::Never => (None, None),
        };
        let cut_at = self.effect.cut_deadline;
        if !self.held.is_empty() {
            let start = self.held.start;
            let src = &self.buf[start..start + piece.unwrap_or(0)];
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => Event::Cancelled,
                r = self.toxics.changed() => changed(r),
                _ = sleep_until(cut_at.unwrap_or(now)), if cut_at.is_some() => Event::CutDeadline,
                r = self.writer.write(src), if piece.is_some() => Event::Wrote(r),
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => Event::Wake,
            }
        } else {
            let can_read = self.can_read();
            let src = match (piece, self.queue.front()) {
                (Some(len), Some(c)) => &c.data[c.sent..c.sent + len],
                _ => &[][..],
            };
            tokio::select! {
                biased;
                _ = self.conn.cancel.cancelled() => Event::Cancelled,
                r = self.toxics.changed() => changed(r),
                _ = sleep_until(cut_at.unwrap_or(now)), if cut_at.is_some() => Event::CutDeadline,
                r = self.writer.write(src), if piece.is_some() => Event::Wrote(r),
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => Event::Wake,
                r = self.reader.read(&mut self.buf), if can_read => Event::Read(r),
            }
        }
    }

    fn handle(&mut self, event: Event) -> Option<End> {
        match event {
            Event::Cancelled => return Some(End::Closed),
            Event::Changed => self.refresh(),
            Event::CutDeadline => return Some(End::Cut),
            Event::Wake => {}
            Event::Read(Ok(0)) => self.eof = true,
            Event::Read(Ok(n)) => self.take_read(n),
            Event::Read(Err(e)) => {
                let reset_peer = e.kind() == ErrorKind::ConnectionReset;
                return Some(End::Failed { reset_peer });
            }
            Event::Wrote(Ok(0)) | Event::Wrote(Err(_)) => {
                return Some(End::Failed { reset_peer: false });
            }
            Event::Wrote(Ok(n)) => self.advance(n),
        }
        None
    }

    /// `n` fresh bytes in `buf`: dropped (blackhole), written at once (no toxic), or queued.
    fn take_read(&mut self, n: usize) {
        if self.effect.blackhole {
            return;
        }
        if self.effect.is_plain() && self.queue.is_empty() {
            match self.writer.try_write(&self.buf[..n]) {
                Ok(w) => {
                    self.forwarded += w as u64;
                    self.held = w..n;
                }
                // WouldBlock, or an error the next write reports.
                Err(_) => self.held = 0..n,
            }
            if self.held.is_empty() {
                self.held = 0..0;
            }
            return;
        }
        let due = self.due_time();
        self.queued += n;
        self.queue.push_back(Chunk {
            data: self.buf[..n].to_vec(),
            sent: 0,
            due,
        });
    }

    /// When a chunk read now may be written: now plus the latency, never before the previous.
    fn due_time(&mut self) -> Instant {
        let now = Instant::now();
        let Some(latency) = self.effect.latency else {
            return now;
        };
        let due = (now + latency.sample()).max(self.last_due.unwrap_or(now));
        self.last_due = Some(due);
        due
    }

    fn write_plan(&self, now: Instant) -> WritePlan {
        let available = if !self.held.is_empty() {
            self.held.len()
        } else if let Some(c) = self.queue.front() {
            c.data.len() - c.sent
        } else {
            return WritePlan::Never;
        };
        if self.effect.holds_writes() {
            return WritePlan::Never;
        }
        let mut at = now;
        if self.effect.latency.is_some()
            && self.held.is_empty()
            && let Some(c) = self.queue.front()
        {
            at = at.max(c.due);
        }
        if self.effect.paced()
            && let Some(next) = self.next_write
        {
            at = at.max(next);
        }
        if at > now {
            return WritePlan::At(at);
        }
        WritePlan::Now(self.piece_len(available))
    }

    /// How much of the `available` bytes one write may carry.
    fn piece_len(&self, available: usize) -> usize {
        let mut n = available;
        if let Some((size, _)) = self.effect.slicer {
            n = n.min(size);
        }
        if let Some(bw) = self.effect.bandwidth {
            n = n.min(bandwidth::piece_limit(bw));
        }
        if let Some(at) = self.effect.cut_at_bytes {
            let budget = at.saturating_sub(self.forwarded);
            n = n.min(usize::try_from(budget).unwrap_or(usize::MAX));
        }
        n.max(1)
    }

    /// `n` bytes were written.
    fn advance(&mut self, n: usize) {
        self.forwarded += n as u64;
        if !self.held.is_empty() {
            self.held.start += n;
            if self.held.is_empty() {
                self.held = 0..0;
            }
        } else if let Some(c) = self.queue.front_mut() {
            c.sent += n;
            self.queued -= n;
            if c.sent == c.data.len() {
                self.queue.pop_front();
            }
        }
        if self.effect.paced() {
            self.next_write = Some(self.pace_after(n));
        }
    }

    /// The earliest next write after `n` bytes under bandwidth and slicer.
    fn pace_after(&self, n: usize) -> Instant {
        let now = Instant::now();
        let mut next = now;
        if let Some(bw) = self.effect.bandwidth {
            let base = match self.next_write {
                Some(prev) if prev + PACING_CATCH_UP >= now => prev,
                _ => now,
            };
            next = base + bandwidth::cost(n, bw);
        }
        if let Some((_, delay)) = self.effect.slicer {
            next = next.max(now + delay);
        }
        next
    }

    async fn finish(mut self, end: End) {
        match end {
            End::Eof => {
                let _ = timeout(SHUTDOWN_WAIT, self.writer.shutdown()).await;
            }
            End::Closed => {}
            End::Cut => self.conn.cancel.cancel(),
            End::Reset(sides) => {
                self.abort(sides);
                self.conn.cancel.cancel();
            }
            End::Failed { reset_peer } => {
                if reset_peer {
                    self.abort(self.writer_side());
                }
                self.conn.cancel.cancel();
            }
        }
        self.release();
    }

    /// The sides (as reset targets) of the socket this pipe writes to.
    fn writer_side(&self) -> ResetSides {
        let to_client = self.flow == Flow::Downstream;
        ResetSides {
            client: to_client,
            upstream: !to_client,
        }
    }

    fn sockets(&self) -> (&TcpStream, &TcpStream) {
        match self.flow {
            Flow::Upstream => (self.reader.as_ref(), self.writer.as_ref()),
            Flow::Downstream => (self.writer.as_ref(), self.reader.as_ref()),
        }
    }

    /// Sets up the RST on the chosen sockets; flags them before the cancel, so the other
    /// direction sees them.
    fn abort(&self, sides: ResetSides) {
        let (client, upstream) = self.sockets();
        if sides.client {
            self.conn.reset_client.store(true, Ordering::SeqCst);
            abort_on_close(client);
        }
        if sides.upstream {
            self.conn.reset_upstream.store(true, Ordering::SeqCst);
            abort_on_close(upstream);
        }
    }

    /// Drops both halves. A write half whose socket is being reset is forgotten rather than
    /// shut down, so no FIN goes out before the RST.
    fn release(self) {
        let flag = match self.flow {
            Flow::Upstream => &self.conn.reset_upstream,
            Flow::Downstream => &self.conn.reset_client,
        };
        if flag.load(Ordering::SeqCst) {
            self.writer.forget();
        }
    }
}

fn changed(r: Result<(), watch::error::RecvError>) -> Event {
    match r {
        Ok(()) => Event::Changed,
        // The proxy is gone.
        Err(_) => Event::Cancelled,
    }
}
