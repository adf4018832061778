//! Byte-safe truncation for vendor limits (WeCom markdown 4096 bytes, DingTalk 20000, …): never
//! splits a UTF-8 character (Chinese text is 3 bytes a character), and says how much was left out.

/// `s` cut to at most `max` characters, with "…" when cut.
pub fn chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The longest prefix of `s` that fits in `max` bytes and ends on a character boundary.
pub fn to_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Joins `lines` with newlines within `max` bytes. Lines that do not fit are left out whole and
/// replaced by one `more(n)` line (e.g. "… and 12 more"), which always fits.
pub fn lines_within(lines: &[String], max: usize, more: impl Fn(usize) -> String) -> String {
    let total: usize = lines.iter().map(|l| l.len() + 1).sum();
    if total <= max.saturating_add(1) {
        return lines.join("\n");
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let tail = more(lines.len() - i);
        let needed = out.len() + usize::from(!out.is_empty()) + line.len() + 1 + tail.len();
        if needed > max {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(to_bytes(&tail, max.saturating_sub(out.len())));
            return out;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cjk_is_never_split() {
        let s = "磁盘使用率过高";
        assert_eq!(to_bytes(s, 7), "磁盘");
        assert_eq!(to_bytes(s, 6), "磁盘");
        assert_eq!(to_bytes(s, 2), "");
        assert_eq!(chars(s, 2), "磁盘…");
        assert_eq!(chars("ok", 5), "ok");
    }

    #[test]
    fn lines_that_do_not_fit_become_one_more_line() {
        let lines: Vec<String> = (0..10).map(|i| format!("告警 {i}: value 42")).collect();
        let out = lines_within(&lines, 60, |n| format!("… and {n} more"));
        assert!(out.len() <= 60, "{} bytes", out.len());
        assert!(out.starts_with("告警 0"));
        assert!(out.ends_with("more"), "{out}");
        let kept = out.lines().count() - 1;
        assert!(out.ends_with(&format!("… and {} more", 10 - kept)), "{out}");
        assert_eq!(
            lines_within(&lines[..2], 4096, |n| format!("{n}")),
            lines[..2].join("\n")
        );
    }

    proptest! {
        #[test]
        fn results_are_valid_utf8_within_the_limit(s in "\\PC{0,200}", max in 0usize..300) {
            let cut = to_bytes(&s, max);
            prop_assert!(cut.len() <= max);
            prop_assert!(s.starts_with(cut));
        }

        #[test]
        fn line_budget_is_kept(lines in proptest::collection::vec("\\PC{0,40}", 0..30), max in 20usize..500) {
            let out = lines_within(&lines, max, |n| format!("… and {n} more"));
            if lines.join("\n").len() <= max {
                prop_assert_eq!(out, lines.join("\n"));
            } else {
                prop_assert!(out.len() <= max, "{} > {}", out.len(), max);
            }
        }
    }
}
