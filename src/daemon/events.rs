//! The event stream behind `/api/v1/events`: every event is stored first (which gives it its id),
//! then broadcast to live subscribers. A subscriber that reconnects with `Last-Event-ID` reads the
//! backlog from the store, so nothing is lost across a reconnect.

use tokio::sync::broadcast;

use crate::store::{NewEvent, Store, StoreError, StoredEvent};

/// Live events kept for slow subscribers before they must catch up from the store.
const LIVE_BUFFER: usize = 4096;

#[derive(Clone)]
pub struct EventBus {
    live: broadcast::Sender<StoredEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> EventBus {
        EventBus {
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }

    /// Stores `events` and then broadcasts them with their ids.
    pub async fn publish(
        &self,
        store: &Store,
        events: &[NewEvent],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let stored = store.append_events(events).await?;
        self.announce(&stored);
        Ok(stored)
    }

    /// Broadcasts events already stored (e.g. written in the same transaction as a batch of results).
    pub fn announce(&self, stored: &[StoredEvent]) {
        for e in stored {
            // No subscriber is fine: the store keeps the event for later readers.
            let _ = self.live.send(e.clone());
        }
    }

    /// A receiver of live events. Subscribe BEFORE reading the backlog, then skip ids already sent.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.live.subscribe()
    }
}
