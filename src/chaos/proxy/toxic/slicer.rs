//! `slicer`: forward in chunks of at most `size` bytes with `delay` between two chunks, to
//! exercise parsers that must cope with events split anywhere.

use std::time::Duration;

use crate::chaos::proxy::spec::SlicerSpec;

/// Two slicers together: the smaller size and the longer delay.
pub(crate) fn combine(cur: Option<(usize, Duration)>, s: &SlicerSpec) -> (usize, Duration) {
    match cur {
        Some((size, delay)) => (size.min(s.size), delay.max(s.delay)),
        None => (s.size, s.delay),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::time::{Instant, timeout};

    use super::super::test_support::*;
    use super::*;
    use crate::chaos::proxy::{Direction, SlicerSpec};

    #[test]
    fn slicers_combine_to_the_strictest() {
        let a = SlicerSpec {
            size: 10,
            delay: Duration::from_millis(5),
        };
        let b = SlicerSpec {
            size: 20,
            delay: Duration::from_millis(9),
        };
        assert_eq!(
            combine(Some(combine(None, &a)), &b),
            (10, Duration::from_millis(9))
        );
    }

    #[tokio::test]
    async fn delivers_in_chunks_of_at_most_size() {
        let (size, delay, total) = (100usize, Duration::from_millis(30), 1_000usize);
        let proxy = proxy_to(&[fixed_sender(total).await]).await;
        add(&proxy, "slice", |t| {
            t.slicer = Some(SlicerSpec { size, delay });
            t.direction = Direction::Downstream;
        });
        let mut client = connect(&proxy).await;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let mut last = started;
        let mut reads = 0;
        while got.len() < total {
            let n = timeout(STEP, client.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "stream ended after {} bytes", got.len());
            let now = Instant::now();
            // A slice leaves every `delay`; a reader that came back late may find several.
            let slices_since_last = 1 + (now - last).as_millis() / delay.as_millis();
            assert!(
                n as u128 <= size as u128 * slices_since_last,
                "read {n} bytes {:?} after the previous read (slices of {size})",
                now - last
            );
            last = now;
            reads += 1;
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, pattern(total));
        assert!(reads >= 2, "{reads} reads");
        let took = started.elapsed();
        assert!(
            took >= delay * 9,
            "10 slices 30ms apart arrived in {took:?}"
        );
    }
}
