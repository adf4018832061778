//! `reset`: abort open connections and every new one with a TCP RST. `SO_LINGER 0` is set on
//! the socket and it is dropped without a FIN first (the write half is forgotten), so the peer
//! reads ECONNRESET rather than a clean end of stream. `direction` picks who gets the RST:
//! downstream = the client, upstream = the server, both (default) = both; the other side of a
//! one-sided reset sees a normal close. The probability roll is per connection.

use tokio::net::TcpStream;

use crate::chaos::proxy::spec::Direction;

/// Which sockets of a connection are aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResetSides {
    pub client: bool,
    pub upstream: bool,
}

impl ResetSides {
    pub fn of(direction: Direction) -> ResetSides {
        ResetSides {
            client: direction.covers_downstream(),
            upstream: direction.covers_upstream(),
        }
    }

    pub fn union(self, other: Option<ResetSides>) -> ResetSides {
        match other {
            Some(o) => ResetSides {
                client: self.client || o.client,
                upstream: self.upstream || o.upstream,
            },
            None => self,
        }
    }
}

/// Makes the socket send RST (not FIN) when it is closed.
pub(crate) fn abort_on_close(sock: &TcpStream) {
    if let Err(e) = sock.set_zero_linger() {
        tracing::debug!("fault proxy: SO_LINGER 0 failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;
    use super::*;

    #[test]
    fn sides_follow_direction() {
        let down = ResetSides::of(Direction::Downstream);
        assert_eq!(
            down,
            ResetSides {
                client: true,
                upstream: false
            }
        );
        let both = down.union(Some(ResetSides::of(Direction::Upstream)));
        assert_eq!(both, ResetSides::of(Direction::Both));
    }

    #[tokio::test]
    async fn reset_aborts_open_and_new_connections() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        let mut open = connect(&proxy).await;
        round_trip(&mut open, b"hi").await;

        add(&proxy, "rst", |t| t.reset = true);
        assert_eq!(read_to_end(&mut open, STEP).await, (0, Ending::Reset));

        let mut fresh = connect(&proxy).await;
        assert_eq!(read_to_end(&mut fresh, STEP).await, (0, Ending::Reset));

        assert!(proxy.remove_toxic("rst"));
        let mut after = connect(&proxy).await;
        round_trip(&mut after, b"back").await;
    }

    #[tokio::test]
    async fn reset_upstream_only_closes_the_client_cleanly() {
        let (addr, server) = greeting_sink().await;
        let proxy = proxy_to(&[addr]).await;
        let mut open = connect(&proxy).await;
        assert_eq!(read_exact_len(&mut open, 5).await, b"hello");
        add(&proxy, "rst", |t| {
            t.reset = true;
            t.direction = Direction::Upstream;
        });
        assert_eq!(read_to_end(&mut open, STEP).await, (0, Ending::Eof));
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn probability_zero_never_resets() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        let mut open = connect(&proxy).await;
        add(&proxy, "rst", |t| {
            t.reset = true;
            t.probability = Some(0.0);
        });
        for _ in 0..20 {
            let mut fresh = connect(&proxy).await;
            round_trip(&mut fresh, b"ok").await;
        }
        round_trip(&mut open, b"still").await;
        assert!(quiet_for(&mut open, Duration::from_millis(50)).await);
    }
}
