//! `blackhole`: connections are accepted and kept, bytes in the affected direction are read and
//! thrown away, nothing is forwarded. Bytes that were already read before the toxic came are
//! held and delivered once it is removed; bytes read while it is active are gone for good.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;
    use crate::chaos::proxy::Direction;

    #[tokio::test]
    async fn blackhole_forwards_nothing_and_removal_restores_forwarding() {
        let (addr, server) = greeting_sink().await;
        let proxy = proxy_to(&[addr]).await;
        let mut client = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut client, 5).await, b"hello");

        add(&proxy, "hole", |t| t.blackhole = true);
        write_all(&mut client, &[9u8; 10_000]).await;
        // Nothing reaches the server while the hole is there.
        assert!(quiet_for(&mut client, Duration::from_millis(300)).await);
        assert_eq!(server.received(), 0);

        assert!(proxy.remove_toxic("hole"));
        write_all(&mut client, b"marker").await;
        server.wait_received(6).await;
        // Only the marker arrived: the blackholed bytes were discarded, not delayed.
        assert!(quiet_for(&mut client, Duration::from_millis(100)).await);
        assert_eq!(server.received(), 6);
    }

    #[tokio::test]
    async fn blackhole_respects_direction() {
        let (addr, server) = greeting_sink().await;
        let proxy = proxy_to(&[addr]).await;

        // Upstream only: the greeting still comes down, what the client sends is swallowed.
        add(&proxy, "up", |t| {
            t.blackhole = true;
            t.direction = Direction::Upstream;
        });
        let mut client = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut client, 5).await, b"hello");
        write_all(&mut client, b"lost").await;
        assert!(quiet_for(&mut client, Duration::from_millis(200)).await);
        assert_eq!(server.received(), 0);
        assert!(proxy.remove_toxic("up"));

        // Downstream only: the greeting never arrives, what the client sends does.
        add(&proxy, "down", |t| {
            t.blackhole = true;
            t.direction = Direction::Downstream;
        });
        let mut other = connect(&proxy).await;
        write_all(&mut other, b"arrives").await;
        server.wait_received(7).await;
        assert!(quiet_for(&mut other, Duration::from_millis(200)).await);
    }
}
