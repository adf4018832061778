//! Reading the legacy text profiles Go's `net/http/pprof` writes with `?debug=1`.
//!
//! The goroutine profile (`runtime/pprof.printCountProfile`) starts with
//! `goroutine profile: total N`, then one stanza per distinct stack, biggest count first:
//! `COUNT @ 0xPC 0xPC …`, an optional `# labels: {…}` line, and one `#\tPC\tfunc+off\tfile:line`
//! line per frame (columns padded with tabs by text/tabwriter), ending with a blank line.
//!
//! The heap profile (`writeHeapInternal`) starts with `heap profile: A: B [C: D] @ heap/RATE`,
//! has stanzas of the same shape, and ends with a `# runtime.MemStats` block of `# Name = value`
//! lines, among them `# HeapInuse = BYTES`.

use crate::probe::tcp::escape_bytes;

/// Bytes of an unexpected first line quoted in an error.
const QUOTE_LIMIT: usize = 120;

/// What a goroutine profile says.
#[derive(Clone, Debug, PartialEq)]
pub struct Goroutines {
    /// `total N` of the header: every goroutine alive when the profile was taken.
    pub total: u64,
    /// The stanza with the most goroutines, the usual suspect of a leak.
    pub largest: Option<Group>,
}

/// Goroutines sharing one stack.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub count: u64,
    /// The innermost frame Go printed (leading runtime frames are hidden by Go itself):
    /// `function (file:line)`.
    pub top_frame: Option<String>,
}

/// The total of a goroutine profile, and its largest group.
pub fn goroutines(text: &str) -> Result<Goroutines, String> {
    let mut lines = text.lines();
    let header = first_line(&mut lines);
    let total = header
        .strip_prefix("goroutine profile: total ")
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| not_a_profile("goroutine", text))?;
    Ok(Goroutines {
        total,
        largest: largest_group(lines),
    })
}

/// `HeapInuse` of a heap profile's `# runtime.MemStats` block, in bytes.
pub fn heap_inuse(text: &str) -> Result<u64, String> {
    let mut lines = text.lines();
    if !first_line(&mut lines).starts_with("heap profile: ") {
        return Err(not_a_profile("heap", text));
    }
    let mut memstats = false;
    for line in lines {
        let line = line.trim();
        if line == "# runtime.MemStats" {
            memstats = true;
        } else if let Some(value) = line.strip_prefix("# HeapInuse = ")
            && memstats
        {
            return value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("the heap profile's HeapInuse is not a number: {value:?}"));
        }
    }
    Err(match memstats {
        true => "the heap profile's runtime.MemStats block has no HeapInuse line".into(),
        false => {
            "the heap profile has no runtime.MemStats block (HeapInuse is read from it)".into()
        }
    })
}

/// The first non-blank line, trimmed ("" when there is none).
fn first_line<'a>(lines: &mut std::str::Lines<'a>) -> &'a str {
    lines.find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

/// The stanza with the highest count (the first of equals, as Go orders them).
fn largest_group<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Group> {
    let mut largest: Option<Group> = None;
    let mut current: Option<Group> = None;
    let close = |group: Option<Group>, largest: &mut Option<Group>| {
        if let Some(g) = group
            && largest.as_ref().is_none_or(|l| g.count > l.count)
        {
            *largest = Some(g);
        }
    };
    for line in lines {
        if let Some(count) = stanza_count(line) {
            close(current.take(), &mut largest);
            current = Some(Group {
                count,
                top_frame: None,
            });
        } else if let Some(group) = current.as_mut().filter(|g| g.top_frame.is_none()) {
            group.top_frame = frame(line);
        }
    }
    close(current, &mut largest);
    largest
}

/// The count of a stanza's first line, `COUNT @ 0x… 0x…`.
fn stanza_count(line: &str) -> Option<u64> {
    let (count, pcs) = line.trim().split_once(" @")?;
    let all_pcs = pcs.split_whitespace().all(|pc| pc.starts_with("0x"));
    all_pcs.then(|| count.parse().ok()).flatten()
}

/// `function (file:line)` of a frame line `#\t0xPC\tfunction+0xOFF\tfile:line`.
fn frame(line: &str) -> Option<String> {
    let mut cells = line.split('\t').map(str::trim).filter(|c| !c.is_empty());
    if cells.next()? != "#" {
        return None;
    }
    let _pc = cells.next().filter(|pc| pc.starts_with("0x"))?;
    let function = cells.next()?;
    let function = function.rsplit_once("+0x").map_or(function, |(f, _)| f);
    Some(match cells.next() {
        Some(location) => format!("{function} ({location})"),
        None => function.to_string(),
    })
}

/// Why `text` is not a `kind` profile, quoting its first line.
fn not_a_profile(kind: &str, text: &str) -> String {
    // Read lossily, gzip's magic 1f 8b becomes "\u{1f}\u{fffd}".
    let first_bytes: String = text.chars().take(QUOTE_LIMIT).collect();
    if first_bytes.starts_with('\u{1f}') || first_bytes.contains('\u{fffd}') {
        return format!(
            "expected the {kind} profile as text (debug=1) but got binary data (a gzip-compressed \
             protobuf profile?)"
        );
    }
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if line.is_empty() {
        return format!("expected a {kind} profile but the answer is empty");
    }
    format!(
        "not a {kind} profile (debug=1 text); its first line is \"{}\"",
        escape_bytes(line.trim().as_bytes(), QUOTE_LIMIT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Go 1.22 writes it: tabwriter padding, leading runtime frames hidden, a labels line.
    const GOROUTINES: &str = "goroutine profile: total 1007\n\
        1000 @ 0x43e44e 0x40a6cd 0x40a2f7 0x8b1a6d 0x4739a1\n\
        #\t0x8b1a6c\tmain.(*Subscriber).forward+0x8c\t/app/events/subscriber.go:112\n\
        \n\
        6 @ 0x43e44e 0x437037 0x4a0c05 0x6c4f1d 0x4739a1\n\
        # labels: {\"handler\":\"orders\"}\n\
        #\t0x4a0c04\tinternal/poll.runtime_pollWait+0x84\t\t/usr/local/go/src/runtime/netpoll.go:345\n\
        #\t0x6c4f1c\tnet/http.(*connReader).backgroundRead+0x3c\t/usr/local/go/src/net/http/server.go:681\n\
        \n\
        1 @ 0x46d6b5 0x4739a1\n\
        #\t0x46d6b4\truntime/pprof.writeRuntimeProfile+0xb4\t/usr/local/go/src/runtime/pprof/pprof.go:793\n\
        \n";

    #[test]
    fn the_goroutine_total_and_the_largest_group_are_read() {
        let g = goroutines(GOROUTINES).unwrap();
        assert_eq!(g.total, 1007);
        assert_eq!(
            g.largest,
            Some(Group {
                count: 1000,
                top_frame: Some(
                    "main.(*Subscriber).forward (/app/events/subscriber.go:112)".into()
                ),
            })
        );
    }

    #[test]
    fn the_largest_group_does_not_rely_on_go_s_order() {
        let text = "goroutine profile: total 5\n1 @ 0x1\n#\t0x0\ta.b+0x1\tf.go:1\n\n\
                    4 @ 0x2\n#\t0x1\tc.d+0x2\tg.go:2\n\n";
        let g = goroutines(text).unwrap();
        assert_eq!(
            g.largest.unwrap().top_frame.as_deref(),
            Some("c.d (g.go:2)")
        );
    }

    #[test]
    fn a_profile_of_only_the_header_has_no_groups() {
        let g = goroutines("\ngoroutine profile: total 3\n").unwrap();
        assert_eq!((g.total, g.largest), (3, None));
    }

    #[test]
    fn heap_inuse_is_read_from_the_memstats_block() {
        let text = "heap profile: 2: 2048 [5: 8192] @ heap/1048576\n\
                    2: 2048 [5: 8192] @ 0x8a1f05 0x4739a1\n\
                    #\t0x8a1f04\tmain.cache+0x64\t/app/cache.go:41\n\
                    \n\
                    \n# runtime.MemStats\n# Alloc = 3342336\n# HeapAlloc = 3342336\n\
                    # HeapInuse = 4505600\n# HeapReleased = 2596864\n# MaxRSS = 19841024\n";
        assert_eq!(heap_inuse(text).unwrap(), 4_505_600);
    }

    #[test]
    fn a_heap_profile_without_heap_inuse_is_an_error() {
        let err = heap_inuse("heap profile: 0: 0 [0: 0] @ heap/1048576\n").unwrap_err();
        assert!(err.contains("no runtime.MemStats block"), "{err}");
        let err = heap_inuse(
            "heap profile: 0: 0 [0: 0] @ heap/1048576\n# runtime.MemStats\n# Alloc = 1\n",
        )
        .unwrap_err();
        assert!(err.contains("no HeapInuse line"), "{err}");
        let err =
            heap_inuse("heap profile: 0: 0 [0: 0] @ heap/2\n# runtime.MemStats\n# HeapInuse = x\n")
                .unwrap_err();
        assert!(err.contains("not a number: \"x\""), "{err}");
    }

    #[test]
    fn other_answers_are_quoted_by_their_first_line() {
        let err = goroutines("<!DOCTYPE html>\n<html><body>login</body></html>\n").unwrap_err();
        assert_eq!(
            err,
            "not a goroutine profile (debug=1 text); its first line is \"<!DOCTYPE html>\""
        );
        let err = heap_inuse("goroutine profile: total 3\n").unwrap_err();
        assert!(
            err.contains("its first line is \"goroutine profile: total 3\""),
            "{err}"
        );
        assert!(goroutines("goroutine profile: total many\n").is_err());
        assert!(goroutines("   \n").unwrap_err().contains("answer is empty"));
    }

    #[test]
    fn a_binary_profile_is_named_as_such() {
        let gzip = String::from_utf8_lossy(&[0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe]).into_owned();
        let err = goroutines(&gzip).unwrap_err();
        assert!(err.contains("binary data"), "{err}");
    }

    #[test]
    fn frames_without_a_location_keep_the_function() {
        assert_eq!(frame("#\t0x46d6b4"), None);
        assert_eq!(frame("#\t0x46d6b4\tmain.f+0x1").as_deref(), Some("main.f"));
        assert_eq!(frame("# labels: {}"), None);
        assert_eq!(stanza_count("12 @ 0x1 0x2"), Some(12));
        assert_eq!(stanza_count("heap profile: 1: 2 [3: 4] @ heap/1"), None);
    }
}
