//! Escaping for XML and HTML (the same rules serve both): the five markup characters become
//! entities, and characters XML 1.0 forbids (control characters other than tab, newline and
//! carriage return, lone surrogates cannot occur in a `str`, U+FFFE and U+FFFF) are dropped, so a
//! probe's message with a stray escape byte cannot make a JUnit file unreadable.

use std::borrow::Cow;

/// `text` safe inside XML/HTML text and inside attribute values quoted with `"` or `'`.
pub fn xml(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_work) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if allowed_in_xml(c) => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out)
}

fn needs_work(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'') || !allowed_in_xml(c)
}

/// The `Char` production of XML 1.0.
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_entities() {
        assert_eq!(
            xml(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn characters_xml_forbids_are_dropped_and_the_rest_kept() {
        assert_eq!(xml("a\u{1b}[31mb\u{0}c\u{FFFF}"), "a[31mbc");
        assert_eq!(xml("tab\tnl\ncr\r é ✓ 🚀"), "tab\tnl\ncr\r é ✓ 🚀");
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(xml("plain text 42"), Cow::Borrowed(_)));
    }
}
