use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// One case of the shared test vectors (`shared/testdata/sse-streams.json`).
#[derive(Debug, serde::Deserialize)]
struct Case {
    name: String,
    stream: String,
    events: Vec<Expected>,
    final_last_event_id: String,
    retry_ms: Option<u64>,
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Expected {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    last_event_id: String,
}

fn vectors() -> Vec<Case> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sse-streams.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the SSE test vectors {}: {e}", path.display()));
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<Case> = serde_json::from_value(file["cases"].clone()).unwrap();
    assert!(!cases.is_empty(), "no cases in {}", path.display());
    cases
}

/// Feeds `chunks` in order to a fresh parser; returns the events and the final state.
fn parse(chunks: &[&[u8]]) -> (Vec<Expected>, String, Option<Duration>) {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        for item in parser.feed(chunk) {
            if let SseItem::Event(e) = item {
                events.push(Expected {
                    event_type: e.event_type,
                    data: e.data,
                    last_event_id: e.id,
                });
            }
        }
    }
    (events, parser.last_event_id().to_string(), parser.retry())
}

fn check(case: &Case, how: &str, got: (Vec<Expected>, String, Option<Duration>)) {
    let (events, last_id, retry) = got;
    assert_eq!(events, case.events, "{} ({how}): events", case.name);
    assert_eq!(
        last_id, case.final_last_event_id,
        "{} ({how}): final last event id",
        case.name
    );
    assert_eq!(
        retry,
        case.retry_ms.map(Duration::from_millis),
        "{} ({how}): retry",
        case.name
    );
}

#[test]
fn every_vector_parses_when_fed_whole() {
    for case in vectors() {
        check(&case, "whole", parse(&[case.stream.as_bytes()]));
    }
}

#[test]
fn every_vector_parses_when_split_at_every_byte_position() {
    for case in vectors() {
        let bytes = case.stream.as_bytes();
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            check(&case, &format!("split at byte {at}"), parse(&[a, b]));
        }
    }
}

#[test]
fn every_vector_parses_when_fed_one_byte_at_a_time() {
    for case in vectors() {
        let bytes = case.stream.as_bytes();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        check(&case, "byte by byte", parse(&chunks));
    }
}

#[test]
fn the_vectors_cover_the_hard_splits() {
    // The split test is only as good as its inputs: make sure they contain a CRLF pair, a lone
    // CR, a multi-byte character and a BOM, so splitting inside each of them is exercised.
    let all: Vec<u8> = vectors()
        .iter()
        .flat_map(|c| c.stream.as_bytes().to_vec())
        .collect();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"\r\n"), "a CRLF pair");
    assert!(has(b"\r\r"), "a lone CR");
    assert!(has(&BOM), "a BOM");
}

#[test]
fn a_multi_byte_character_split_anywhere_survives() {
    let stream = "id: n1-7f3a:42\ndata: caf\u{e9} \u{1F600} \u{4E2D}\n\n".as_bytes();
    for at in 0..=stream.len() {
        let (a, b) = stream.split_at(at);
        let (events, last, _) = parse(&[a, b]);
        assert_eq!(events.len(), 1, "split at {at}");
        assert_eq!(
            events[0].data, "caf\u{e9} \u{1F600} \u{4E2D}",
            "split at {at}"
        );
        assert_eq!(last, "n1-7f3a:42");
    }
}

#[test]
fn comments_are_reported_as_heartbeats() {
    let mut p = SseParser::new();
    let items = p.feed(b": ping\n:\n:x\r\ndata: a\n\n");
    assert_eq!(
        items,
        vec![
            SseItem::Comment("ping".into()),
            SseItem::Comment(String::new()),
            SseItem::Comment("x".into()),
            SseItem::Event(SseEvent {
                event_type: "message".into(),
                data: "a".into(),
                id: String::new(),
            }),
        ]
    );
}

#[test]
fn only_a_bom_at_the_very_start_is_skipped() {
    let bom = "\u{feff}";
    let (events, ..) = parse(&[format!("data: a\n\n{bom}data: b\n\n").as_bytes()]);
    // The second BOM is part of the field name "\u{feff}data", an unknown field.
    assert_eq!(events.len(), 1);
    // A stream starting with the first byte of a BOM but not a BOM keeps those bytes.
    let (events, ..) = parse(&[&[0xEF], b"data: x\n\n"]);
    assert!(events.is_empty(), "\u{fffd}data is an unknown field");
}

#[test]
fn a_new_stream_keeps_the_last_event_id_and_retry_but_drops_the_pending_event() {
    let mut p = SseParser::new();
    p.feed(b"retry: 150\nid: a:1\ndata: one\n\ndata: half");
    assert_eq!(p.last_event_id(), "a:1");
    p.new_stream();
    let items = p.feed(b"\n\ndata: two\n\n");
    assert_eq!(items.len(), 1);
    let SseItem::Event(e) = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(e.data, "two");
    assert_eq!(e.id, "a:1");
    assert_eq!(p.retry(), Some(Duration::from_millis(150)));
}

#[test]
fn a_heartbeat_after_a_reconnect_keeps_the_last_event_id() {
    let mut p = SseParser::new();
    p.feed(b"id: n1-7f3a:42\ndata: x\n\n");
    p.new_stream();
    // A comment block and an empty block dispatch nothing and must not blank the ID.
    assert_eq!(p.feed(b": ping\n\n\n").len(), 1);
    assert_eq!(p.last_event_id(), "n1-7f3a:42");
    // An explicit empty id still resets it.
    p.feed(b"id\n\n");
    assert_eq!(p.last_event_id(), "");
}

#[test]
fn an_unterminated_last_line_waits_for_its_terminator() {
    let mut p = SseParser::new();
    assert!(p.feed(b"data: a\n").is_empty());
    assert!(p.feed(b"\r").len() == 1);
    // The LF after that CR belongs to the same line ending: no second (empty) line.
    assert!(p.feed(b"\ndata: b\n").is_empty());
    assert_eq!(p.feed(b"\n").len(), 1);
}
