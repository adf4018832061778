//! Counting what a stream sent during the window, without keeping it: events, comments, when the
//! first event came, and the longest silence. Times are offsets from the moment the response
//! headers arrived, so this part needs no clock and is tested with plain durations.

use std::time::Duration;

use crate::sse::SseItem;

/// What was seen on the stream so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Tally {
    pub events: u64,
    /// Comment lines (`: ping`), the usual heartbeat.
    pub comments: u64,
    /// When the first event was dispatched, after the headers.
    pub first_event: Option<Duration>,
    /// Longest time without an event or a comment: from the headers to the first item, between
    /// items, and from the last item to the end of listening.
    pub max_gap: Duration,
    /// When the last event or comment arrived (the headers count as the start).
    last_activity: Duration,
    /// Bytes received since the last event or comment: what the parser may be holding for an
    /// event not yet complete.
    pub pending_bytes: usize,
}

impl Tally {
    /// Records a chunk of `bytes` bytes that arrived `at` after the headers and completed `items`.
    pub fn record(&mut self, at: Duration, bytes: usize, items: &[SseItem]) {
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        if items.is_empty() {
            return;
        }
        // Every item of a chunk arrived at the same moment: one gap ends here.
        self.note_gap(at);
        self.last_activity = at;
        self.pending_bytes = 0;
        for item in items {
            match item {
                SseItem::Event(_) => {
                    self.events += 1;
                    self.first_event.get_or_insert(at);
                }
                SseItem::Comment(_) => self.comments += 1,
            }
        }
    }

    /// Listening stopped `end` after the headers: the silence since the last item counts too.
    pub fn finish(&mut self, end: Duration) {
        self.note_gap(end);
    }

    /// Whether anything at all (an event or a comment) arrived.
    pub fn any_activity(&self) -> bool {
        self.events > 0 || self.comments > 0
    }

    fn note_gap(&mut self, at: Duration) {
        self.max_gap = self.max_gap.max(at.saturating_sub(self.last_activity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `chunks` (arrival in ms after the headers, bytes) through a real parser.
    fn tally_of(chunks: &[(u64, &str)], end: u64) -> Tally {
        let mut parser = SseParser::new();
        let mut tally = Tally::default();
        for (at, text) in chunks {
            let items = parser.feed(text.as_bytes());
            tally.record(ms(*at), text.len(), &items);
        }
        tally.finish(ms(end));
        tally
    }

    #[test]
    fn events_are_counted_and_the_first_one_timed() {
        let t = tally_of(
            &[
                (100, "data: a\n\n"),
                (200, "data: b\n\ndata: c\n\n"),
                (300, "data: d\n\n"),
            ],
            1000,
        );
        assert_eq!(t.events, 4);
        assert_eq!(t.comments, 0);
        assert_eq!(t.first_event, Some(ms(100)));
        // Longest silence: from the last event (300 ms) to the end of the window.
        assert_eq!(t.max_gap, ms(700));
    }

    #[test]
    fn the_gap_before_the_first_item_counts() {
        let t = tally_of(&[(800, "data: late\n\n"), (900, "data: x\n\n")], 1000);
        assert_eq!(t.max_gap, ms(800));
    }

    #[test]
    fn the_largest_gap_between_items_wins() {
        let t = tally_of(
            &[
                (10, "data: a\n\n"),
                (60, ": hb\n"),
                (560, "data: b\n\n"),
                (600, "data: c\n\n"),
            ],
            700,
        );
        assert_eq!(t.max_gap, ms(500));
    }

    #[test]
    fn comments_are_activity_but_not_events() {
        let t = tally_of(
            &[(100, ": ping\n"), (200, ": ping\n"), (300, ": ping\n")],
            400,
        );
        assert_eq!(t.events, 0);
        assert_eq!(t.comments, 3);
        assert_eq!(t.first_event, None);
        assert_eq!(t.max_gap, ms(100));
        assert!(t.any_activity());
    }

    #[test]
    fn a_silent_stream_is_one_gap_as_long_as_the_window() {
        let t = tally_of(&[], 5000);
        assert_eq!(t.max_gap, ms(5000));
        assert!(!t.any_activity());
    }

    #[test]
    fn an_event_split_across_chunks_counts_when_it_completes() {
        let t = tally_of(&[(100, "data: hel"), (400, "lo\n"), (450, "\n")], 500);
        assert_eq!(t.events, 1);
        assert_eq!(t.first_event, Some(ms(450)));
        // Partial lines are not activity: the silence lasted until the event was complete.
        assert_eq!(t.max_gap, ms(450));
        assert_eq!(t.pending_bytes, 0);
    }

    #[test]
    fn bytes_of_an_incomplete_event_are_pending() {
        let t = tally_of(&[(1, "data: a\n\n"), (2, "data: 123"), (3, "45")], 10);
        assert_eq!(t.pending_bytes, "data: 12345".len());
    }

    #[test]
    fn fields_that_dispatch_nothing_are_not_activity() {
        // `retry:` alone and an event without data complete no item.
        let t = tally_of(&[(100, "retry: 3000\n\n"), (200, "event: x\n\n")], 300);
        assert!(!t.any_activity());
        assert_eq!(t.max_gap, ms(300));
    }
}
