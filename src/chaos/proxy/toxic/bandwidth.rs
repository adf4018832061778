//! `bandwidth`: bytes/s pacing. Each write is at most ~50 ms worth of bytes and the next one
//! waits until the bytes already written have "used up" their time at the configured rate, so
//! throughput converges on the limit without bursts bigger than one piece.

use std::time::Duration;

use super::super::pipe::BUF_SIZE;

/// Largest piece written at once under `bytes_per_sec`: about 50 ms worth.
pub(crate) fn piece_limit(bytes_per_sec: u64) -> usize {
    (bytes_per_sec / 20).clamp(1, BUF_SIZE as u64) as usize
}

/// How long `bytes` take at `bytes_per_sec`.
pub(crate) fn cost(bytes: usize, bytes_per_sec: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 / bytes_per_sec.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::super::test_support::*;
    use super::*;
    use crate::chaos::proxy::Direction;

    #[test]
    fn pieces_and_costs() {
        assert_eq!(piece_limit(1), 1);
        assert_eq!(piece_limit(20_000), 1_000);
        assert_eq!(piece_limit(10_000_000_000), BUF_SIZE);
        assert_eq!(cost(500, 1_000), Duration::from_millis(500));
    }

    #[tokio::test]
    async fn throughput_stays_near_the_limit() {
        let total = 96 * 1024;
        let rate = 64 * 1024u64;
        let proxy = proxy_to(&[fixed_sender(total).await]).await;
        add(&proxy, "bw", |t| {
            t.bandwidth = Some(rate);
            t.direction = Direction::Downstream;
        });
        let mut client = connect(&proxy).await;
        let started = Instant::now();
        let got = read_exact_len(&mut client, total).await;
        let took = started.elapsed().as_secs_f64();
        assert_eq!(got, pattern(total), "bytes altered by pacing");
        let measured = total as f64 / took;
        // Expected 1.5 s; allow for the first piece going out at once and for a loaded machine.
        assert!(
            measured <= rate as f64 * 1.25 && measured >= rate as f64 * 0.4,
            "measured {measured:.0} B/s for a limit of {rate} B/s ({took:.2}s)"
        );
    }

    #[tokio::test]
    async fn bandwidth_applies_to_an_open_connection_and_lifts_on_removal() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"warm").await;
        add(&proxy, "bw", |t| t.bandwidth = Some(2_000));
        // 2 kB at 2 kB/s each way: well over half a second for the round trip.
        let slow = round_trip(&mut client, &[1u8; 2_000]).await;
        assert!(slow >= Duration::from_millis(800), "{slow:?}");
        assert!(proxy.remove_toxic("bw"));
        let fast = round_trip(&mut client, &[1u8; 2_000]).await;
        assert!(fast < Duration::from_millis(300), "{fast:?}");
    }
}
