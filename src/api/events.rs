//! `GET /api/v1/events`: the event log as Server-Sent Events. Each event is `id:` (its stored
//! id), `event:` (its kind) and `data:` (`{"id","kind","at","data"}` as JSON); an idle stream
//! sends a `: heartbeat` comment every 15 s.
//!
//! **Nothing missed, nothing repeated.** A client that reconnects with `Last-Event-ID: N` (or
//! `?last_event_id=N`) first gets every stored event after N, page by page, then live events.
//! The live subscription is taken BEFORE the backlog is read, so an event published meanwhile is
//! either in the backlog or in the subscription; live events with ids already sent are skipped.
//! Ids become visible in the store in id order (see `store::events`), but two publishers may
//! announce out of order: a live event that is not the next id, or a subscription that lagged,
//! sends the stream back to the store to catch up. A stream without `Last-Event-ID` starts with
//! the first live event it receives.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Api, ApiError};
use crate::daemon::events::EventBus;
use crate::store::{Store, StoreError, StoredEvent};

/// Events read from the store per query while catching up.
const PAGE: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    last_event_id: Option<String>,
}

pub(super) async fn stream(
    State(api): State<Api>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let header = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_string());
    let last = header
        .or(q.last_event_id)
        .map(|text| parse_event_id(&text))
        .transpose()?;
    // Subscribe now, before any backlog is read.
    let cursor = Cursor::new(api.state.store.clone(), &api.state.events, last);
    let events = futures::stream::unfold(cursor, |mut c| async move {
        c.next().await.map(|e| (sse_event(&e), c))
    })
    .map(Ok::<Event, Infallible>)
    .take_until(api.options.closing.clone().cancelled_owned());
    let heartbeat = KeepAlive::new()
        .interval(api.options.heartbeat)
        .text("heartbeat");
    // Reverse proxies (nginx) would otherwise buffer the stream and hold events back.
    let unbuffered = [("x-accel-buffering", "no")];
    Ok((unbuffered, Sse::new(events).keep_alive(heartbeat)))
}

fn parse_event_id(text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("Last-Event-ID {text:?} is not an event id")))
}

fn sse_event(e: &StoredEvent) -> Event {
    let kind: String = e
        .kind
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".to_string());
    Event::default().id(e.id.to_string()).event(kind).data(data)
}

/// Where a stream stands: the last id sent, events read but not yet sent, and whether the store
/// must be read before the live subscription can be trusted again.
struct Cursor {
    store: Store,
    live: broadcast::Receiver<StoredEvent>,
    last: Option<i64>,
    pending: VecDeque<StoredEvent>,
    catching_up: bool,
}

impl Cursor {
    fn new(store: Store, bus: &EventBus, last: Option<i64>) -> Cursor {
        let live = bus.subscribe();
        Cursor {
            store,
            live,
            last,
            pending: VecDeque::new(),
            catching_up: last.is_some(),
        }
    }

    /// The next event to send; `None` when the stream ends (the bus closed, or the store failed:
    /// the client reconnects with `Last-Event-ID` and loses nothing).
    async fn next(&mut self) -> Option<StoredEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                self.last = Some(e.id);
                return Some(e);
            }
            if self.catching_up {
                if let Err(e) = self.read_store_page().await {
                    tracing::warn!("event stream: {e}; the client will resume from its last id");
                    return None;
                }
                continue;
            }
            match self.live.recv().await {
                Ok(e) => self.take_live(e),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!("event stream lagged by {missed}; catching up from the store");
                    self.catching_up = self.last.is_some();
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Sends the next id straight away, skips ids already sent and reads the store on a gap.
    fn take_live(&mut self, e: StoredEvent) {
        match self.last {
            None => self.pending.push_back(e),
            Some(last) if e.id <= last => {}
            Some(last) if e.id == last + 1 => self.pending.push_back(e),
            Some(_) => self.catching_up = true,
        }
    }

    /// Queues the next page of stored events after the last one sent; a short page ends the
    /// catching up.
    async fn read_store_page(&mut self) -> Result<(), StoreError> {
        let after = self.last.unwrap_or(0);
        let page = self.store.events_after(after, PAGE).await?;
        self.catching_up = page.len() >= PAGE as usize;
        self.pending
            .extend(page.into_iter().filter(|e| e.id > after));
        Ok(())
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
