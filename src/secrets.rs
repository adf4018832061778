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

/// The password of a `scheme://user:password@host/…` URL as written (percent-encoded), so it
/// can be registered as a secret and masked in any driver message that might echo it.
pub fn url_password(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then_some(password)
}

/// `%XX` escapes of a URL component decoded; malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `msg` with the password of `url` masked, as written and decoded (drivers rarely echo URLs, but
/// a message must never carry one).
pub fn mask_url_password(msg: &str, url: &str) -> String {
    let Some(raw) = url_password(url) else {
        return msg.to_string();
    };
    let decoded = percent_decode(raw);
    let mut out = msg.to_string();
    for secret in [raw, decoded.as_str()] {
        if !secret.is_empty() {
            out = out.replace(secret, MASK);
        }
    }
    out
}

static URL_CREDENTIALS: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@").expect("valid regex")
});

/// `s` with the `user:password@` part of every URL in it removed.
pub fn scrub_url_credentials(s: &str) -> String {
    URL_CREDENTIALS.replace_all(s, "$1").into_owned()
}

/// Registers the password of `url`, if it has one, as a secret.
pub fn register_url_password(url: &str) {
    if let Some(pw) = url_password(url) {
        register(&percent_decode(pw));
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

    #[test]
    fn password_is_found_only_in_userinfo() {
        assert_eq!(url_password("postgres://app:pw@db/x"), Some("pw"));
        assert_eq!(url_password("postgres://app@db/x"), None);
        assert_eq!(url_password("postgres://db/x?user=a:b@c"), None);
        assert_eq!(url_password("redis://:p%40ss@h:6379"), Some("p%40ss"));
    }

    #[test]
    fn percent_escapes_are_decoded_and_malformed_ones_kept() {
        assert_eq!(percent_decode("s3cr%40t%2Fx"), "s3cr@t/x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%80%A2"), "•");
    }

    #[test]
    fn url_passwords_are_masked_and_credentials_scrubbed() {
        let url = "mysql://app:s%40cret!@db/x";
        assert_eq!(
            mask_url_password("login s@cret! failed (s%40cret!)", url),
            format!("login {MASK} failed ({MASK})")
        );
        assert_eq!(
            scrub_url_credentials("failed: postgres://u:p@db:5432/x and redis://:pw@cache"),
            "failed: postgres://db:5432/x and redis://cache"
        );
        assert_eq!(scrub_url_credentials("no url here@all"), "no url here@all");
    }
}
