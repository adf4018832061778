//! `cut_after`: close a stream after N bytes or T seconds, even while it is busy — the fault a
//! heartbeat-kept SSE stream otherwise never meets (an idle timeout never fires on it). Both
//! limits count from the later of "the toxic was added" and "the connection opened": open
//! streams are cut T after the injection, new ones T after they open. Bytes are counted per
//! affected direction and the stream gets exactly N of them before the close. The close is
//! clean (FIN) on both sides, as when a load balancer or node drops the stream.

use super::ActiveToxic;

/// Per pipe: the forwarded-byte count at the moment each byte-limited cut toxic began to apply.
#[derive(Debug, Default)]
pub(crate) struct CutMarks {
    marks: Vec<(u64, u64)>,
}

impl CutMarks {
    /// The start mark of toxic `serial`, recording `forwarded` the first time it is seen.
    pub fn mark(&mut self, serial: u64, forwarded: u64) -> u64 {
        if let Some((_, m)) = self.marks.iter().find(|(s, _)| *s == serial) {
            return *m;
        }
        self.marks.push((serial, forwarded));
        forwarded
    }

    /// Forgets the toxics no longer in `set`.
    pub fn retain_serials(&mut self, set: &[ActiveToxic]) {
        self.marks
            .retain(|(s, _)| set.iter().any(|t| t.serial == *s));
    }

    pub fn clear(&mut self) {
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::super::test_support::*;
    use super::*;
    use crate::chaos::proxy::{CutAfterSpec, Direction};

    #[test]
    fn marks_are_taken_once_and_forgotten_with_the_toxic() {
        let mut marks = CutMarks::default();
        assert_eq!(marks.mark(1, 100), 100);
        assert_eq!(marks.mark(1, 500), 100);
        marks.retain_serials(&[]);
        assert_eq!(marks.mark(1, 500), 500);
    }

    #[tokio::test]
    async fn cuts_a_busy_stream_after_exactly_n_bytes() {
        let proxy = proxy_to(&[stream_server(16 * 1024).await]).await;
        add(&proxy, "cut", |t| {
            t.cut_after = Some(CutAfterSpec {
                bytes: Some(100_000),
                after: None,
            });
            t.direction = Direction::Downstream;
        });
        let mut client = connect(&proxy).await;
        assert_eq!(read_to_end(&mut client, STEP).await, (100_000, Ending::Eof));
    }

    #[tokio::test]
    async fn cuts_an_open_busy_stream_counting_from_the_injection() {
        let proxy = proxy_to(&[stream_server(16 * 1024).await]).await;
        let mut client = connect(&proxy).await;
        read_exact_len(&mut client, 200_000).await;
        add(&proxy, "cut", |t| {
            t.cut_after = Some(CutAfterSpec {
                bytes: Some(50_000),
                after: None,
            });
        });
        let (after_add, ending) = read_to_end(&mut client, STEP).await;
        assert_eq!(ending, Ending::Eof);
        assert!(after_add >= 50_000, "cut after {after_add} bytes");
        // What was in flight at the injection (socket buffers) plus 50 kB, not the whole
        // 512 MiB the server would send.
        assert!(
            after_add < 32 * 1024 * 1024,
            "cut only after {after_add} bytes"
        );
    }

    #[tokio::test]
    async fn cuts_a_heartbeat_kept_stream_after_t() {
        let proxy = proxy_to(&[heartbeat_server(Duration::from_millis(20)).await]).await;
        let mut client = connect(&proxy).await;
        read_exact_len(&mut client, 7).await;
        let added = Instant::now();
        add(&proxy, "cut", |t| {
            t.cut_after = Some(CutAfterSpec {
                bytes: None,
                after: Some(Duration::from_millis(400)),
            });
        });
        let (bytes, ending) = read_to_end(&mut client, STEP).await;
        let lived = added.elapsed();
        assert_eq!(ending, Ending::Eof);
        assert!(bytes > 0, "heartbeats kept flowing until the cut");
        assert!(lived >= Duration::from_millis(400), "cut after {lived:?}");
        assert!(lived < Duration::from_secs(3), "cut after {lived:?}");

        // A new connection lives `after` from its own opening.
        let opened = Instant::now();
        let mut fresh = connect(&proxy).await;
        let (_, ending) = read_to_end(&mut fresh, STEP).await;
        assert_eq!(ending, Ending::Eof);
        assert!(opened.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn removing_the_cut_keeps_the_stream() {
        let proxy = proxy_to(&[heartbeat_server(Duration::from_millis(20)).await]).await;
        let mut client = connect(&proxy).await;
        add(&proxy, "cut", |t| {
            t.cut_after = Some(CutAfterSpec {
                bytes: None,
                after: Some(Duration::from_millis(500)),
            });
        });
        assert!(proxy.remove_toxic("cut"));
        // Still streaming well past the removed deadline.
        let deadline = Instant::now() + Duration::from_millis(800);
        while Instant::now() < deadline {
            read_exact_len(&mut client, 7).await;
        }
    }
}
