//! What one node knows of the shared log: a bounded replay buffer of the newest events it has
//! seen and a live feed of new ones. Both are updated under one lock, so a subscriber that takes
//! its replay and joins the live feed at the same moment neither misses nor repeats an event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::log::LoggedEvent;

/// Events a slow subscriber may fall behind before it has to catch up from the buffer.
const LIVE_CAPACITY: usize = 4096;

/// Where a new stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Only events published from now on (no `Last-Event-ID`, or a node that ignores it).
    Now,
    /// Every buffered event after this log position (0: everything buffered).
    After(i64),
}

/// A new subscriber's start: the replay, the live feed, and the position it has reached.
pub struct Subscription {
    pub replay: Vec<Arc<LoggedEvent>>,
    pub live: broadcast::Receiver<Arc<LoggedEvent>>,
    /// Live events at or before this position were already sent (or seen by the client).
    pub cursor: i64,
}

pub struct Hub {
    inner: Mutex<Inner>,
}

struct Inner {
    capacity: usize,
    buffer: VecDeque<Arc<LoggedEvent>>,
    /// Position of the newest event this node has seen, even when the buffer holds none.
    newest: i64,
    live: broadcast::Sender<Arc<LoggedEvent>>,
}

impl Hub {
    /// A hub keeping at most `capacity` events, starting with the newest of `preload` and knowing
    /// the log up to `head`.
    pub fn new(capacity: usize, head: i64, preload: Vec<LoggedEvent>) -> Hub {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let mut inner = Inner {
            capacity,
            buffer: VecDeque::with_capacity(capacity.min(LIVE_CAPACITY)),
            newest: head,
            live,
        };
        for event in preload {
            inner.remember(Arc::new(event));
        }
        inner.newest = inner.newest.max(head);
        Hub {
            inner: Mutex::new(inner),
        }
    }

    /// Buffers new events (in log order) and hands them to live subscribers.
    pub fn push(&self, events: Vec<LoggedEvent>) {
        let mut inner = self.lock();
        for event in events {
            let event = Arc::new(event);
            inner.remember(event.clone());
            // No receiver is not an error: nobody is subscribed right now.
            let _ = inner.live.send(event);
        }
    }

    /// Starts a stream on `topic`.
    pub fn subscribe(&self, topic: &str, resume: Resume) -> Subscription {
        let inner = self.lock();
        let live = inner.live.subscribe();
        let (replay, cursor) = match resume {
            Resume::Now => (Vec::new(), inner.newest),
            Resume::After(pos) => (inner.buffered_after(topic, pos), inner.newest.max(pos)),
        };
        Subscription {
            replay,
            live,
            cursor,
        }
    }

    /// Buffered events of `topic` after position `pos`: how a subscriber that fell behind the
    /// live feed catches up (what left the buffer meanwhile is lost, as in production).
    pub fn buffered_after(&self, topic: &str, pos: i64) -> Vec<Arc<LoggedEvent>> {
        self.lock().buffered_after(topic, pos)
    }

    /// Position of the newest event seen.
    pub fn newest(&self) -> i64 {
        self.lock().newest
    }

    /// Number of events buffered.
    pub fn buffered(&self) -> usize {
        self.lock().buffer.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the buffer half-updated in a way that
        // matters more than stopping the node, so take the data as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn remember(&mut self, event: Arc<LoggedEvent>) {
        self.newest = self.newest.max(event.pos);
        if self.capacity == 0 {
            return;
        }
        if self.buffer.len() == self.capacity {
            self.buffer.pop_front();
        }
        self.buffer.push_back(event);
    }

    fn buffered_after(&self, topic: &str, pos: i64) -> Vec<Arc<LoggedEvent>> {
        // The buffer is in log order: skip to the first position after `pos`.
        let start = self.buffer.partition_point(|e| e.pos <= pos);
        self.buffer
            .range(start..)
            .filter(|e| e.topic == topic)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
