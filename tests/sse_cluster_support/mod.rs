//! A plain reader of Server-Sent Events for the SSE cluster tests: ids are opaque strings, and
//! comments, `retry:` hints and silence are all visible (heartbeat gaps matter).

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

/// How long a test waits for something that should happen promptly.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// One frame of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Event { id: String, data: String },
    Comment(String),
    Retry(u64),
}

pub struct SseStream {
    body: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: Vec<u8>,
    items: VecDeque<Item>,
}

impl SseStream {
    /// Subscribes to `url`, optionally resuming after `last_event_id`.
    pub async fn open(http: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> SseStream {
        let mut request = http.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = tokio::time::timeout(PROMPTLY, request.send())
            .await
            .unwrap_or_else(|_| panic!("GET {url}: no answer within {PROMPTLY:?}"))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(response.status(), 200, "GET {url}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream",
            "GET {url}"
        );
        SseStream {
            body: response.bytes_stream().boxed(),
            buf: Vec::new(),
            items: VecDeque::new(),
        }
    }

    /// The next frame; `None` when nothing came within `wait` or the stream ended.
    pub async fn next(&mut self, wait: Duration) -> Option<Item> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(item);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??
                .ok()?;
            self.take(&chunk);
        }
    }

    /// The next event, skipping comments and hints.
    pub async fn next_event(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Item::Event { id, data } => return Some((id, data)),
                Item::Comment(_) | Item::Retry(_) => continue,
            }
        }
    }

    /// The next `n` events, each within `PROMPTLY`; panics naming what is missing.
    pub async fn events(&mut self, n: usize) -> Vec<(String, String)> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.next_event(PROMPTLY).await {
                Some(event) => got.push(event),
                None => panic!("expected {n} events, got {}: {got:?}", got.len()),
            }
        }
        got
    }

    /// Reads events until the one with `id` (inclusive).
    pub async fn events_until(&mut self, id: &str) -> Vec<(String, String)> {
        let mut got = Vec::new();
        loop {
            let Some(event) = self.next_event(PROMPTLY).await else {
                panic!("event {id:?} did not come; got {got:?}");
            };
            let done = event.0 == id;
            got.push(event);
            if done {
                return got;
            }
        }
    }

    /// Frames already received are dropped; then whether no byte at all arrives for `span`.
    pub async fn silent_for(&mut self, span: Duration) -> bool {
        self.items.clear();
        match tokio::time::timeout(span, self.body.next()).await {
            Err(_) => true,
            Ok(Some(Ok(chunk))) => {
                self.take(&chunk);
                false
            }
            Ok(_) => false,
        }
    }

    /// Whether the stream ends within `wait` (frames on the way are dropped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }

    fn take(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
            let frame = String::from_utf8(frame).expect("the stream is UTF-8");
            self.items.extend(parse_frame(&frame));
        }
    }
}

/// The server writes `\n` line ends and one kind of frame at a time.
fn parse_frame(frame: &str) -> Option<Item> {
    let mut id = None;
    let mut data: Option<String> = None;
    for line in frame.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            return Some(Item::Comment(comment.trim().to_string()));
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "retry" => return Some(Item::Retry(value.parse().expect("retry is a number"))),
            "id" => id = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            other => panic!("unexpected field {other:?} in {frame:?}"),
        }
    }
    Some(Item::Event {
        id: id.expect("every event has an id"),
        data: data?,
    })
}

/// POSTs `body` to `url`; asserts 201 and returns the new event's id.
pub async fn publish(http: &reqwest::Client, url: &str, body: &str) -> String {
    let response = http
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(response.status(), 201, "POST {url}");
    response.text().await.unwrap()
}

/// Publishes `bodies` in order and returns their ids.
pub async fn publish_all(http: &reqwest::Client, url: &str, bodies: &[String]) -> Vec<String> {
    let mut ids = Vec::with_capacity(bodies.len());
    for body in bodies {
        ids.push(publish(http, url, body).await);
    }
    ids
}

pub fn bodies(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|seq| format!("{{\"seq\": {seq}}}")).collect()
}

pub fn http() -> reqwest::Client {
    patrol::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// The state letter of a process in /proc (`T` stopped, `Z` zombie); `None` once it is gone.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the state follows its closing parenthesis.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits (bounded) until `pid`'s state satisfies `wanted`.
pub async fn await_state(pid: i32, wanted: impl Fn(Option<char>) -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    while !wanted(process_state(pid)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} did not become {what}: state {:?}",
            process_state(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a node process this test started.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}
