//! From what the stream did to a measurement: the chosen `value:` and one failure per problem
//! (status, content type, stall, early close, each unmet `expect:`), each naming what was seen.

use std::time::Duration;

use super::stream::{Listened, PENDING_LIMIT, StreamEnd, whole_millis};
use super::{SseExpect, SseValue};
use crate::condition::Condition;
use crate::probe::{Measurement, Sample};
use crate::result::{Value, format_number};

/// Everything one run observed.
pub(super) struct Observed {
    pub status: u16,
    pub content_type: Option<String>,
    pub time_to_headers: Duration,
    /// The window in effect.
    pub window: Duration,
    pub timeout: Duration,
    /// The stream as listened to; `None` when the status said there is none.
    pub listened: Option<Listened>,
}

pub(super) fn measurement(value: SseValue, expect: &SseExpect, o: &Observed) -> Measurement {
    let mut failures = head_failures(expect, o);
    if let Some(l) = &o.listened {
        failures.extend(stream_failure(expect, o, l));
        failures.extend(unmet_expectations(expect, l));
    }
    let mut samples = Vec::new();
    match read_value(value, o) {
        Some(v) => samples.push(Sample::single(Value::Num(v))),
        // Without a value the result must still say why; other failures usually already do.
        None if failures.is_empty() => failures.push(missing_value(value, o)),
        None => {}
    }
    Measurement {
        samples,
        unit: value.unit().to_string(),
        failures,
        ..Measurement::default()
    }
}

fn read_value(value: SseValue, o: &Observed) -> Option<f64> {
    let l = o.listened.as_ref();
    match value {
        SseValue::Events => l.map(|l| l.tally.events as f64),
        SseValue::TimeToHeadersMs => Some(millis(o.time_to_headers)),
        SseValue::TimeToFirstEventMs => l
            .and_then(|l| l.tally.first_event)
            .map(|first| millis(o.time_to_headers + first)),
        SseValue::MaxGapMs => l.map(|l| millis(l.tally.max_gap)),
        SseValue::RetryMs => l.and_then(|l| l.retry).map(millis),
    }
}

fn missing_value(value: SseValue, o: &Observed) -> String {
    let name = value.name();
    let Some(l) = &o.listened else {
        return format!("{name}: not measured, status {}", o.status);
    };
    let span = whole_millis(l.span);
    match value {
        SseValue::TimeToFirstEventMs => {
            format!("{name}: no event within {span} ({})", seen(l))
        }
        SseValue::RetryMs => format!("{name}: the stream set no retry: within {span}"),
        _ => format!("{name}: not measured"),
    }
}

/// Problems with the response itself.
fn head_failures(expect: &SseExpect, o: &Observed) -> Vec<String> {
    if o.status != 200 {
        let reason = reqwest::StatusCode::from_u16(o.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        // An error page is no stream: its content type says nothing worth reporting.
        return vec![format!(
            "status {}{reason}, want 200 (an EventSource gives up on any other status)",
            o.status
        )];
    }
    let Some(want) = expect.content_type() else {
        return Vec::new();
    };
    match o.content_type.as_deref() {
        Some(got) if essence(got).eq_ignore_ascii_case(essence(want)) => Vec::new(),
        Some(got) => vec![format!(
            "expect.content_type: got {:?}, want {:?}",
            got.trim(),
            essence(want)
        )],
        None => vec![format!(
            "expect.content_type: got no Content-Type, want {:?}",
            essence(want)
        )],
    }
}

/// How the stream behaved: a stall after the headers, an early close (unless allowed), a break.
fn stream_failure(expect: &SseExpect, o: &Observed, l: &Listened) -> Option<String> {
    let span = whole_millis(l.span);
    match &l.end {
        StreamEnd::WindowOver if !l.tally.any_activity() => {
            let cut = if l.span < o.window {
                format!(
                    " (the {} window was cut short by the {} timeout)",
                    whole_millis(o.window),
                    whole_millis(o.timeout)
                )
            } else {
                String::new()
            };
            Some(format!(
                "no event or comment within {span}: the stream stalled after its headers{cut}"
            ))
        }
        StreamEnd::WindowOver => None,
        StreamEnd::Closed if !expect.stays_open => None,
        StreamEnd::Closed => Some(format!(
            "the server closed the stream after {span} ({})",
            seen(l)
        )),
        StreamEnd::Broken(e) => Some(format!("the stream broke after {span} ({}): {e}", seen(l))),
        StreamEnd::Overlong => Some(format!(
            "the stream sent more than {} MiB without completing an event; stopped reading after {span}",
            PENDING_LIMIT / (1024 * 1024)
        )),
    }
}

/// The `expect:` conditions on what the stream sent.
fn unmet_expectations(expect: &SseExpect, l: &Listened) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(cond) = &expect.events {
        failures.extend(unmet("expect.events", l.tally.events as f64, "", cond));
    }
    if let Some(cond) = &expect.max_gap {
        failures.extend(unmet(
            "expect.max_gap",
            millis(l.tally.max_gap),
            " ms",
            cond,
        ));
    }
    failures
}

/// `"<what>: got X, want cond"` when `v` does not satisfy `cond`.
fn unmet(what: &str, v: f64, unit: &str, cond: &Condition) -> Option<String> {
    (!cond.matches(&Value::Num(v)))
        .then(|| format!("{what}: got {}{unit}, want {cond}", format_number(v)))
}

/// "3 events, 1 comment" or "nothing".
fn seen(l: &Listened) -> String {
    let count = |n: u64, one: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {one}s"),
    };
    match (l.tally.events, l.tally.comments) {
        (0, 0) => "nothing received".into(),
        (e, 0) => count(e, "event"),
        (e, c) => format!("{}, {}", count(e, "event"), count(c, "comment")),
    }
}

/// The media type without parameters (`text/event-stream; charset=utf-8` → `text/event-stream`).
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::sse::tally::Tally;
    use crate::sse::{SseEvent, SseItem};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn event() -> SseItem {
        SseItem::Event(SseEvent {
            event_type: "message".into(),
            data: "x".into(),
            id: String::new(),
        })
    }

    /// A stream whose items arrived at these times (ms after the headers) and ended at `span`.
    fn listened(items: &[(u64, SseItem)], span: u64, end: StreamEnd) -> Listened {
        let mut tally = Tally::default();
        for (at, item) in items {
            tally.record(ms(*at), 10, std::slice::from_ref(item));
        }
        tally.finish(ms(span));
        Listened {
            tally,
            retry: None,
            span: ms(span),
            end,
        }
    }

    fn observed(listened: Option<Listened>) -> Observed {
        Observed {
            status: 200,
            content_type: Some("text/event-stream; charset=utf-8".into()),
            time_to_headers: ms(20),
            window: ms(1000),
            timeout: ms(2000),
            listened,
        }
    }

    fn flowing() -> Listened {
        listened(
            &[
                (100, event()),
                (400, SseItem::Comment("hb".into())),
                (500, event()),
            ],
            1000,
            StreamEnd::WindowOver,
        )
    }

    fn measure(value: SseValue, expect: &SseExpect, o: &Observed) -> (Option<f64>, Vec<String>) {
        let m = measurement(value, expect, o);
        let v = m.samples.first().and_then(|s| s.value.as_f64());
        (v, m.failures)
    }

    #[test]
    fn every_value_of_a_healthy_stream() {
        let mut l = flowing();
        l.retry = Some(ms(3000));
        let o = observed(Some(l));
        let ok = SseExpect::default();
        assert_eq!(measure(SseValue::Events, &ok, &o), (Some(2.0), vec![]));
        assert_eq!(
            measure(SseValue::TimeToHeadersMs, &ok, &o),
            (Some(20.0), vec![])
        );
        assert_eq!(
            measure(SseValue::TimeToFirstEventMs, &ok, &o),
            (Some(120.0), vec![])
        );
        assert_eq!(measure(SseValue::MaxGapMs, &ok, &o), (Some(500.0), vec![]));
        assert_eq!(measure(SseValue::RetryMs, &ok, &o), (Some(3000.0), vec![]));
        assert_eq!(measurement(SseValue::MaxGapMs, &ok, &o).unit, "ms");
        assert_eq!(measurement(SseValue::Events, &ok, &o).unit, "");
    }

    #[test]
    fn a_stall_after_the_headers_is_a_failure_with_the_window() {
        let o = observed(Some(listened(&[], 1000, StreamEnd::WindowOver)));
        let (v, failures) = measure(SseValue::Events, &SseExpect::default(), &o);
        assert_eq!(v, Some(0.0));
        assert_eq!(
            failures,
            ["no event or comment within 1s: the stream stalled after its headers"]
        );
        let (gap, _) = measure(SseValue::MaxGapMs, &SseExpect::default(), &o);
        assert_eq!(gap, Some(1000.0));
    }

    #[test]
    fn a_window_cut_by_the_timeout_says_so() {
        let mut o = observed(Some(listened(&[], 400, StreamEnd::WindowOver)));
        o.window = ms(1500);
        let (_, failures) = measure(SseValue::Events, &SseExpect::default(), &o);
        assert_eq!(
            failures,
            [
                "no event or comment within 400ms: the stream stalled after its headers (the 1s 500ms window was cut short by the 2s timeout)"
            ]
        );
    }

    #[test]
    fn comments_alone_are_no_stall_but_no_events() {
        let comments: Vec<_> = (1..10)
            .map(|i| (i * 100, SseItem::Comment("ping".into())))
            .collect();
        let o = observed(Some(listened(&comments, 1000, StreamEnd::WindowOver)));
        let expect = SseExpect {
            events: Some(Condition::parse("gt(0)")),
            ..SseExpect::default()
        };
        let (v, failures) = measure(SseValue::Events, &expect, &o);
        assert_eq!(v, Some(0.0));
        assert_eq!(failures, ["expect.events: got 0, want gt(0)"]);
        let (v, failures) = measure(SseValue::TimeToFirstEventMs, &SseExpect::default(), &o);
        assert_eq!(v, None);
        assert_eq!(
            failures,
            ["time_to_first_event_ms: no event within 1s (0 events, 9 comments)"]
        );
    }

    #[test]
    fn max_gap_expectation_names_the_gap() {
        let o = observed(Some(flowing()));
        let expect = SseExpect {
            max_gap: Some(Condition::parse("lt(300)")),
            ..SseExpect::default()
        };
        let (_, failures) = measure(SseValue::Events, &expect, &o);
        assert_eq!(failures, ["expect.max_gap: got 500 ms, want lt(300)"]);
    }

    #[test]
    fn an_early_close_fails_unless_allowed() {
        let closed = || observed(Some(listened(&[(50, event())], 300, StreamEnd::Closed)));
        let (v, failures) = measure(SseValue::Events, &SseExpect::default(), &closed());
        assert_eq!(v, Some(1.0));
        assert_eq!(
            failures,
            ["the server closed the stream after 300ms (1 event)"]
        );
        let allowed = SseExpect {
            stays_open: false,
            ..SseExpect::default()
        };
        assert_eq!(
            measure(SseValue::Events, &allowed, &closed()),
            (Some(1.0), vec![])
        );
    }

    #[test]
    fn a_broken_or_overlong_stream_fails() {
        let o = observed(Some(listened(&[], 200, StreamEnd::Broken("reset".into()))));
        assert_eq!(
            measure(SseValue::Events, &SseExpect::default(), &o).1,
            ["the stream broke after 200ms (nothing received): reset"]
        );
        let o = observed(Some(listened(&[], 200, StreamEnd::Overlong)));
        assert_eq!(
            measure(SseValue::Events, &SseExpect::default(), &o).1,
            [
                "the stream sent more than 16 MiB without completing an event; stopped reading after 200ms"
            ]
        );
    }

    #[test]
    fn a_status_other_than_200_is_the_only_failure() {
        let mut o = observed(None);
        o.status = 503;
        o.content_type = Some("text/html".into());
        let expect = SseExpect {
            events: Some(Condition::parse("gt(0)")),
            ..SseExpect::default()
        };
        let want = "status 503 Service Unavailable, want 200 (an EventSource gives up on any other status)";
        assert_eq!(
            measure(SseValue::Events, &expect, &o),
            (None, vec![want.to_string()])
        );
        // Time to headers is still measured.
        assert_eq!(
            measure(SseValue::TimeToHeadersMs, &expect, &o).0,
            Some(20.0)
        );
    }

    #[test]
    fn content_type_is_compared_without_parameters_and_case() {
        let mut o = observed(Some(flowing()));
        o.content_type = Some("Text/Event-Stream".into());
        assert!(
            measure(SseValue::Events, &SseExpect::default(), &o)
                .1
                .is_empty()
        );
        o.content_type = Some("application/json".into());
        assert_eq!(
            measure(SseValue::Events, &SseExpect::default(), &o).1,
            [r#"expect.content_type: got "application/json", want "text/event-stream""#]
        );
        o.content_type = None;
        assert_eq!(
            measure(SseValue::Events, &SseExpect::default(), &o).1,
            [r#"expect.content_type: got no Content-Type, want "text/event-stream""#]
        );
        let any = SseExpect {
            content_type: Some(String::new()),
            ..SseExpect::default()
        };
        assert!(measure(SseValue::Events, &any, &o).1.is_empty());
    }

    #[test]
    fn a_missing_retry_is_explained() {
        let o = observed(Some(flowing()));
        assert_eq!(
            measure(SseValue::RetryMs, &SseExpect::default(), &o),
            (
                None,
                vec!["retry_ms: the stream set no retry: within 1s".to_string()]
            )
        );
    }
}
