//! An incremental parser for `text/event-stream`, following WHATWG HTML "Parsing an event stream"
//! and "Dispatch the event" to the letter, because the drill's verdict rests on it: an event that
//! is wrongly dispatched or dropped would be a loss invented or hidden.
//!
//! Bytes may arrive split anywhere (inside a CRLF pair, inside a multi-byte UTF-8 character,
//! inside the leading BOM): the parser keeps the incomplete line as bytes and decodes a line only
//! once its terminator has arrived. CR, LF and CRLF all end a line; a CR at the end of a chunk
//! ends the line at once and a LF that follows it in the next chunk is swallowed.

use std::time::Duration;

/// The UTF-8 byte order mark; one at the very start of the stream is skipped.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One thing read from the stream: an event, or a comment line (servers send comments as
/// heartbeats, and a silence between them is how a stalled stream shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    Event(SseEvent),
    /// The text after the `:` (one leading space removed, like a field value).
    Comment(String),
}

/// A dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// `message` unless an `event:` field named another type.
    pub event_type: String,
    pub data: String,
    /// The last event ID after this event (what a reconnecting client sends as `Last-Event-ID`).
    /// Opaque: never assume it is a number.
    pub id: String,
}

/// Parses one event stream after another (one per connection of an `EventSource`); the last
/// event ID and the reconnection time survive [`SseParser::new_stream`], like on an `EventSource`.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read (terminator not seen yet).
    line: Vec<u8>,
    /// The previous byte was a CR: a LF right after it belongs to the same line ending.
    after_cr: bool,
    /// How many bytes of a leading BOM have been matched; `None` once the start of the stream
    /// has been decided (BOM skipped or absent).
    bom_matched: Option<usize>,
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    retry: Option<Duration>,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            bom_matched: Some(0),
            ..SseParser::default()
        }
    }

    /// Starts a new stream (a reconnection): the incomplete line and the pending event are
    /// discarded; the last event ID and the reconnection time are kept.
    ///
    /// The new stream's last event ID buffer starts at the last event ID, as Chromium does
    /// (`EventSourceParser(last_event_id, …)`), not empty: otherwise a heartbeat block before
    /// the first event of the new stream would blank the ID, and a second drop would reconnect
    /// without `Last-Event-ID` and lose the replay a browser gets.
    pub fn new_stream(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.bom_matched = Some(0);
        self.data.clear();
        self.event_type.clear();
        self.last_event_id_buffer.clone_from(&self.last_event_id);
    }

    /// The last event ID string: what to send as `Last-Event-ID` when reconnecting.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time set by the last valid `retry:` field, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Feeds the next bytes of the stream; returns the events and comments they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseItem> {
        let mut items = Vec::new();
        let mut rest = self.skip_bom(bytes);
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.line.extend_from_slice(&rest[..end]);
                    self.after_cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, &mut items);
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.line.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        items
    }

    /// Consumes the bytes of a leading BOM (possibly split across chunks) and returns what
    /// follows. Bytes that only looked like the start of a BOM are put back into the line.
    fn skip_bom<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let Some(mut matched) = self.bom_matched else {
            return bytes;
        };
        let mut rest = bytes;
        while let Some((&b, tail)) = rest.split_first() {
            if b != BOM[matched] {
                // Not a BOM: the bytes matched so far are ordinary line content.
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom_matched = None;
                return rest;
            }
            matched += 1;
            rest = tail;
            if matched == BOM.len() {
                self.bom_matched = None;
                return rest;
            }
        }
        self.bom_matched = Some(matched);
        rest
    }

    fn process_line(&mut self, raw: &[u8], items: &mut Vec<SseItem>) {
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            if let Some(event) = self.dispatch() {
                items.push(SseItem::Event(event));
            }
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            let text = comment.strip_prefix(' ').unwrap_or(comment);
            items.push(SseItem::Comment(text.to_string()));
            return;
        }
        match line.split_once(':') {
            Some((field, value)) => {
                self.process_field(field, value.strip_prefix(' ').unwrap_or(value))
            }
            None => self.process_field(&line, ""),
        }
    }

    fn process_field(&mut self, field: &str, value: &str) {
        match field {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.last_event_id_buffer.clear();
                self.last_event_id_buffer.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // All digits: only an absurdly long value overflows; it means "very long".
                let ms = value.parse::<u64>().unwrap_or(u64::MAX);
                self.retry = Some(Duration::from_millis(ms));
            }
            _ => {}
        }
    }

    /// "Dispatch the event": the last event ID is set even when no event is dispatched.
    fn dispatch(&mut self) -> Option<SseEvent> {
        if self.last_event_id != self.last_event_id_buffer {
            self.last_event_id.clone_from(&self.last_event_id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event_type = if self.event_type.is_empty() {
            "message".to_string()
        } else {
            std::mem::take(&mut self.event_type)
        };
        let data = std::mem::take(&mut self.data);
        Some(SseEvent {
            event_type,
            data,
            id: self.last_event_id.clone(),
        })
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
