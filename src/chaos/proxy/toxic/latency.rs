//! `latency` (+ `jitter`): every chunk is held until its read time plus the delay. Reading goes
//! on meanwhile, so a busy stream keeps its throughput and each byte is late by the delay (not by
//! a multiple of it). Jitter draws a delay uniformly in `latency ± jitter` per chunk; chunks never
//! overtake each other.

use std::time::Duration;

/// Delay of one direction, summed over its latency toxics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Latency {
    pub base: Duration,
    pub jitter: Duration,
}

impl Latency {
    pub fn new(base: Duration, jitter: Duration) -> Latency {
        Latency { base, jitter }
    }

    /// This latency stacked on another (toxics add up).
    pub fn plus(self, other: Option<Latency>) -> Latency {
        match other {
            Some(o) => Latency {
                base: self.base + o.base,
                jitter: self.jitter + o.jitter,
            },
            None => self,
        }
    }

    /// The delay of one chunk: `base ± jitter`, never negative.
    pub fn sample(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        let offset = self.jitter.as_secs_f64() * (fastrand::f64() * 2.0 - 1.0);
        Duration::from_secs_f64((self.base.as_secs_f64() + offset).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::*;
    use super::*;

    #[test]
    fn samples_stay_within_jitter() {
        let l = Latency::new(Duration::from_millis(100), Duration::from_millis(30));
        for _ in 0..1000 {
            let d = l.sample();
            assert!(
                d >= Duration::from_millis(70) && d <= Duration::from_millis(130),
                "{d:?}"
            );
        }
        let clamp = Latency::new(Duration::from_millis(5), Duration::from_millis(50));
        assert!((0..1000).all(|_| clamp.sample() <= Duration::from_millis(55)));
    }

    #[tokio::test]
    async fn latency_delays_an_open_connection_and_lifts_on_removal() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        let mut client = connect(&proxy).await;
        let fast = round_trip(&mut client, b"ping").await;
        assert!(fast < Duration::from_millis(300), "before toxic: {fast:?}");

        add(&proxy, "slow", |t| {
            t.latency = Some(Duration::from_millis(200))
        });
        let slow = round_trip(&mut client, b"ping").await;
        // 200ms on the way up and 200ms on the way down.
        assert!(slow >= Duration::from_millis(400), "with latency: {slow:?}");
        assert!(slow < Duration::from_secs(3), "with latency: {slow:?}");

        assert!(proxy.remove_toxic("slow"));
        let again = round_trip(&mut client, b"ping").await;
        assert!(
            again < Duration::from_millis(300),
            "after removal: {again:?}"
        );
    }

    #[tokio::test]
    async fn jitter_varies_delay_within_bounds_one_direction_only() {
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        add(&proxy, "jit", |t| {
            t.latency = Some(Duration::from_millis(100));
            t.jitter = Some(Duration::from_millis(60));
            t.direction = crate::chaos::proxy::Direction::Downstream;
        });
        let mut client = connect(&proxy).await;
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(round_trip(&mut client, b"x").await);
        }
        // Only the downstream half is delayed: 40..160ms (+ scheduling slack).
        assert!(
            seen.iter().all(|d| *d >= Duration::from_millis(40)),
            "{seen:?}"
        );
        assert!(
            seen.iter().all(|d| *d < Duration::from_millis(1_000)),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn busy_stream_keeps_its_throughput_under_latency() {
        // 20 chunks written back to back: with a per-chunk queue the last one arrives about one
        // latency after it was sent, not twenty.
        let echo = echo_server().await;
        let proxy = proxy_to(&[echo]).await;
        add(&proxy, "slow", |t| {
            t.latency = Some(Duration::from_millis(150));
            t.direction = crate::chaos::proxy::Direction::Upstream;
        });
        let mut client = connect(&proxy).await;
        let started = tokio::time::Instant::now();
        let payload = vec![7u8; 1_000];
        for _ in 0..20 {
            write_all(&mut client, &payload).await;
        }
        let got = read_exact_len(&mut client, 20_000).await;
        assert_eq!(got.len(), 20_000);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_millis(1_500), "{took:?}");
    }
}
