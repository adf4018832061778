//! Secrets substituted from `${env:…}` and `${file:…}` are registered here when rules load, and every
//! string patrol prints, logs or stores passes through [`redact`], so a password that ends up inside
//! an error message ("connection to postgres://app:hunter2@db failed") never leaves the process.
//!
//! The registry is process-wide on purpose: a message can be built anywhere (a driver error, a
//! panic, a log line), and a registry that must be threaded through every call would be forgotten
//! somewhere.

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

/// Shorter values are not redacted: replacing every "1" or "on" in messages would make them unreadable,
/// and a secret that short offers no protection anyway.
pub const MIN_SECRET_LEN: usize = 4;

pub const MASK: &str = "••••••";

static SECRETS: LazyLock<RwLock<Vec<String>>> = LazyLock::new(|| RwLock::new(Vec::new()));

/// Remembers `value` as secret. Multi-line values (key files) are registered line by line too.
pub fn register(value: &str) {
    let mut candidates: Vec<&str> = vec![value.trim()];
    if value.contains('\n') {
        candidates.extend(value.lines().map(str::trim));
    }
    let mut set = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for c in candidates {
        if c.chars().count() >= MIN_SECRET_LEN && !set.iter().any(|s| s == c) {
            set.push(c.to_string());
            // Longest first, so a secret containing another is masked whole.
            set.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// `s` with every registered secret (and its percent-encoded form, as it appears inside URLs) masked.
pub fn redact(s: &str) -> Cow<'_, str> {
    let set = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out: Cow<'_, str> = Cow::Borrowed(s);
    for secret in set.iter() {
        for form in [Cow::Borrowed(secret.as_str()), percent_encode(secret)] {
            if out.contains(form.as_ref()) {
                out = Cow::Owned(out.replace(form.as_ref(), MASK));
            }
        }
    }
    out
}

/// Owned convenience for struct fields.
pub fn redact_owned(s: String) -> String {
    match redact(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

fn percent_encode(s: &str) -> Cow<'_, str> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_plain_and_url_encoded() {
        register("s3cr3t/pa ss");
        let msg = "login failed for postgres://app:s3cr3t%2Fpa%20ss@db and s3cr3t/pa ss";
        let r = redact(msg);
        assert!(!r.contains("s3cr3t"), "{r}");
        assert_eq!(r.matches(MASK).count(), 2);
    }

    #[test]
    fn short_values_are_left_alone() {
        register("ab");
        assert_eq!(redact("abc ab"), "abc ab");
    }
}
