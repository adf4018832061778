//! Reading Server-Sent Events in tests, and checking metrics text with the real Prometheus tool.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

/// One frame of an event stream: an event (`id`, `event`, `data`) or a comment.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event {
        id: i64,
        kind: String,
        data: serde_json::Value,
    },
    Comment(String),
}

/// Reads Server-Sent Events from a streaming response, frame by frame.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            body: response
                .bytes_stream()
                .map(|r| r.map(|b| b.to_vec()))
                .boxed(),
            buf: String::new(),
        }
    }

    /// The next frame, or `None` when the stream ended or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                return Some(parse_frame(&frame));
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// Whether the body ends (the server closed the stream) within `wait`; frames on the way
    /// are discarded.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(None) => return true,
                Ok(Some(chunk)) => drop(chunk),
                Err(_) => return false,
            }
        }
    }

    /// The next event, skipping comments.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(i64, String, serde_json::Value)> {
        loop {
            match self.next(wait).await? {
                Frame::Event { id, kind, data } => return Some((id, kind, data)),
                Frame::Comment(_) => continue,
            }
        }
    }
}

fn parse_frame(frame: &str) -> Frame {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for line in frame.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            return Frame::Comment(comment.trim().to_string());
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        fields.entry(name).or_default().push_str(value);
    }
    Frame::Event {
        id: fields["id"].parse().unwrap(),
        kind: fields["event"].clone(),
        data: serde_json::from_str(&fields["data"]).unwrap(),
    }
}

/// `promtool check metrics` (Debian package `prometheus`) accepts `text`.
pub fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
