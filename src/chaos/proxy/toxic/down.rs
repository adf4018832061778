//! `down`: the proxy refuses new connections while open ones carry on untouched. The listener
//! stays bound (so the port cannot be taken by someone else during the drill) and each new
//! connection is aborted with a RST the moment it is accepted, before any upstream is dialled;
//! a client sees its connection reset, as with a crashed node. `direction` does not apply.
//! A `reset` toxic refuses new connections the same way.

use super::ActiveToxic;

/// The toxic that refuses a new connection with random seed `conn_seed`, if any.
pub(crate) fn refusing(set: &[ActiveToxic], conn_seed: u64) -> Option<&ActiveToxic> {
    set.iter()
        .find(|t| (t.spec.down || t.spec.reset) && t.hits(conn_seed))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;

    #[tokio::test]
    async fn down_refuses_new_connections_but_keeps_open_ones() {
        let (addr, server) = greeting_sink().await;
        let proxy = proxy_to(&[addr]).await;
        let mut open = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut open, 5).await, b"hello");
        assert_eq!(server.accepted(), 1);

        add(&proxy, "down", |t| t.down = true);
        for _ in 0..5 {
            let mut refused = connect(&proxy).await;
            let (bytes, ending) = read_to_end(&mut refused, STEP).await;
            assert_eq!((bytes, ending), (0, Ending::Reset));
        }
        // The open connection still forwards both ways.
        write_all(&mut open, b"12345678").await;
        server.wait_received(8).await;
        assert!(quiet_for(&mut open, Duration::from_millis(50)).await);
        assert_eq!(
            server.accepted(),
            1,
            "a refused connection reached the upstream"
        );
        assert_eq!(proxy.open_connections(), 1);

        assert!(proxy.remove_toxic("down"));
        let mut back = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut back, 5).await, b"hello");
    }
}
