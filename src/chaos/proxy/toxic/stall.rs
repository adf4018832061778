//! `stall`: the connection stays open but nothing moves in the affected direction: the proxy
//! stops reading (TCP back-pressure holds the sender) and stops writing what it already read.
//! When the toxic is removed forwarding resumes with nothing lost or reordered. This is the
//! silent stall an SSE client only notices by the missing heartbeats.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;
    use crate::chaos::proxy::Direction;

    #[tokio::test]
    async fn stall_stops_a_busy_stream_and_resumes_with_every_byte() {
        let total = 16 * 1024 * 1024;
        let proxy = proxy_to(&[fixed_sender(total).await]).await;
        let mut client = connect(&proxy).await;
        let first = read_exact_len(&mut client, 100_000).await;

        add(&proxy, "stall", |t| {
            t.stall = true;
            t.direction = Direction::Downstream;
        });
        // Whatever was already in flight drains, then the stream goes silent.
        let in_flight = drain_until_idle(&mut client, Duration::from_millis(300)).await as usize;
        assert!(
            in_flight < total - 100_000,
            "the stall let everything through"
        );
        assert!(quiet_for(&mut client, Duration::from_millis(300)).await);

        assert!(proxy.remove_toxic("stall"));
        let (rest, ending) = read_to_end(&mut client, STEP).await;
        assert_eq!(ending, Ending::Eof);
        assert_eq!(
            first.len() + in_flight + rest as usize,
            total,
            "bytes lost or added"
        );
    }

    #[tokio::test]
    async fn stall_on_an_idle_connection_holds_data_sent_later() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"a").await;
        add(&proxy, "stall", |t| t.stall = true);
        write_all(&mut client, b"held back").await;
        assert!(quiet_for(&mut client, Duration::from_millis(300)).await);
        assert!(proxy.remove_toxic("stall"));
        assert_eq!(read_exact_len(&mut client, 9).await, b"held back");
    }

    #[tokio::test]
    async fn stall_respects_direction() {
        let (addr, server) = greeting_sink().await;
        let proxy = proxy_to(&[addr]).await;
        add(&proxy, "stall", |t| {
            t.stall = true;
            t.direction = Direction::Upstream;
        });
        let mut client = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut client, 5).await, b"hello");
        write_all(&mut client, b"waiting").await;
        assert!(quiet_for(&mut client, Duration::from_millis(300)).await);
        assert_eq!(server.received(), 0);
        assert!(proxy.remove_toxic("stall"));
        server.wait_received(7).await;
        assert_eq!(server.received(), 7);
    }
}
