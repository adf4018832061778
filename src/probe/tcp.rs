//! `kind: tcp` — connect time in ms; optionally sends bytes and expects a banner.

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Measurement, Probe, ProbeContext, ProbeError, Sample};
use crate::config::{CheckCommon, Issues, TargetSpec, duration};
use crate::result::Value;

/// Bytes of a received banner kept for matching and for the message when it does not match.
const READ_LIMIT: usize = 64 * 1024;

/// Bytes of what was received quoted in a failure message.
const QUOTE_LIMIT: usize = 200;

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    /// Bytes to send after connecting (escapes \r \n \t \\ \xHH).
    #[serde(default)]
    pub send: Option<String>,
    /// Bytes the peer must send (a banner such as "SSH-2.0"); missing = `crit`.
    #[serde(default)]
    pub expect: Option<String>,
}

impl Probe for TcpProbe {
    const TARGET_KINDS: &'static [&'static str] = &["tcp"];

    fn validate(&self, _check: &CheckCommon, issues: &mut Issues) {
        for (field, text) in [("send", &self.send), ("expect", &self.expect)] {
            match text.as_deref().map(unescape) {
                Some(Err(e)) => issues.at(&[field], e),
                Some(Ok(bytes)) if field == "expect" && bytes.is_empty() => {
                    issues.at(&[field], "expect is empty")
                }
                _ => {}
            }
        }
    }

    async fn measure(&self, ctx: &ProbeContext<'_>) -> Result<Measurement, ProbeError> {
        let started = Instant::now();
        let address = match ctx.target().map(|t| &t.spec) {
            Some(TargetSpec::Tcp(t)) => t.address.clone(),
            _ => {
                return Err(ProbeError::new(
                    "a tcp check needs a tcp target or an inline address",
                ));
            }
        };
        let send = self
            .send
            .as_deref()
            .map(unescape)
            .transpose()
            .map_err(ProbeError::new)?;
        let expect = self
            .expect
            .as_deref()
            .map(unescape)
            .transpose()
            .map_err(ProbeError::new)?;
        let mut stream = connect(&address, ctx.timeout).await?;
        let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut m = Measurement {
            samples: vec![Sample::single(Value::Num(connect_ms))],
            unit: "ms".into(),
            failures: Vec::new(),
            ..Default::default()
        };
        if let Some(bytes) = send {
            let written = tokio::time::timeout(
                ctx.timeout.saturating_sub(started.elapsed()),
                stream.write_all(&bytes),
            )
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(ProbeError::new(format!("send to {address} failed: {e}")));
                }
                Err(_) => return Err(ProbeError::new(format!("send to {address} timed out"))),
            }
        }
        if let Some(want) = expect {
            // Leave the runner's own timeout some room, so a missing banner is reported as such
            // instead of as a timed-out check.
            let wait = banner_wait(ctx.timeout).saturating_sub(started.elapsed());
            let banner = read_until(&mut stream, &want, wait).await;
            if !contains(&banner.received, &want) {
                m.failures.push(banner.describe_miss(&want, wait));
            }
        }
        Ok(m)
    }
}

async fn connect(address: &str, timeout: Duration) -> Result<TcpStream, ProbeError> {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ProbeError::new(format!("connect to {address} failed: {e}"))),
        Err(_) => Err(ProbeError::new(format!(
            "connect to {address} timed out after {}",
            duration::format(timeout)
        ))),
    }
}

/// How long to wait for a banner within a check timeout.
fn banner_wait(timeout: Duration) -> Duration {
    timeout.mul_f64(0.9)
}

/// `d` without its sub-millisecond part, for messages ("900ms", not "899ms 999us 12ns").
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// What the peer sent before the expected bytes appeared, the stream ended, or time ran out.
struct Received {
    received: Vec<u8>,
    /// Why reading stopped when it was not the expected bytes.
    end: Option<String>,
}

impl Received {
    fn describe_miss(&self, want: &[u8], waited: Duration) -> String {
        let end = self.end.clone().unwrap_or_else(|| {
            format!(
                "not received within {}",
                duration::format(whole_millis(waited))
            )
        });
        let got = if self.received.is_empty() {
            "nothing".to_string()
        } else {
            format!("\"{}\"", escape_bytes(&self.received, QUOTE_LIMIT))
        };
        format!(
            "expect: \"{}\" {end}; got {got}",
            escape_bytes(want, QUOTE_LIMIT)
        )
    }
}

async fn read_until(stream: &mut TcpStream, want: &[u8], wait: Duration) -> Received {
    let deadline = tokio::time::Instant::now() + wait;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !contains(&received, want) && received.len() < READ_LIMIT {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Received {
                    received,
                    end: Some("not received: connection closed".into()),
                };
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n.min(READ_LIMIT - received.len())]),
            Ok(Err(e)) => {
                return Received {
                    received,
                    end: Some(format!("not received: {e}")),
                };
            }
            Err(_) => {
                return Received {
                    received,
                    end: None,
                };
            }
        }
    }
    let end =
        (!contains(&received, want)).then(|| format!("not found in the first {READ_LIMIT} bytes"));
    Received { received, end }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Bytes written in rule files: `\r \n \t \\ \xHH`; any other backslash sequence is an error so a
/// typo does not silently send the wrong bytes.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = (hex.len() == 2)
                    .then(|| u8::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| {
                        format!("\\x must be followed by two hex digits, got \\x{hex}")
                    })?;
                out.push(byte);
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape \\{other}; use \\r \\n \\t \\\\ or \\xHH"
                ));
            }
            None => return Err("trailing backslash; write \\\\ for a backslash".into()),
        }
    }
    Ok(out)
}

/// Bytes as readable text with the escapes `unescape` accepts, cut after `limit` bytes (`…`).
pub fn escape_bytes(bytes: &[u8], limit: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(limit) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\x22"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > limit {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(unescape(r"a\tb\\c").unwrap(), b"a\tb\\c");
        assert_eq!(unescape(r"\x00\xff\x41").unwrap(), vec![0, 0xff, b'A']);
        assert_eq!(unescape("plain é").unwrap(), "plain é".as_bytes());
    }

    #[test]
    fn malformed_escapes_are_errors() {
        assert!(unescape(r"\q").unwrap_err().contains("unknown escape \\q"));
        assert!(unescape(r"\x4").unwrap_err().contains("two hex digits"));
        assert!(unescape(r"\xzz").unwrap_err().contains("two hex digits"));
        assert!(
            unescape("end\\")
                .unwrap_err()
                .contains("trailing backslash")
        );
    }

    #[test]
    fn escaping_round_trips_and_truncates() {
        let bytes = b"SSH-2.0\r\n\x00\\ok";
        assert_eq!(escape_bytes(bytes, 100), r"SSH-2.0\r\n\x00\\ok");
        assert_eq!(unescape(&escape_bytes(bytes, 100)).unwrap(), bytes);
        assert_eq!(escape_bytes(b"abcdef", 3), "abc…");
        assert_eq!(escape_bytes(b"say \"hi\"", 100), r"say \x22hi\x22");
    }

    #[test]
    fn contains_finds_needles_across_positions() {
        assert!(contains(b"xxSSH-2.0", b"SSH-"));
        assert!(!contains(b"SS", b"SSH"));
        assert!(contains(b"", b""));
    }

    #[test]
    fn miss_message_names_what_was_received() {
        let r = Received {
            received: b"220 smtp\r\n".to_vec(),
            end: None,
        };
        assert_eq!(
            r.describe_miss(b"SSH-", Duration::from_micros(900_400)),
            r#"expect: "SSH-" not received within 900ms; got "220 smtp\r\n""#
        );
        let r = Received {
            received: Vec::new(),
            end: Some("not received: connection closed".into()),
        };
        assert_eq!(
            r.describe_miss(b"+PONG", Duration::from_secs(1)),
            r#"expect: "+PONG" not received: connection closed; got nothing"#
        );
    }
}
