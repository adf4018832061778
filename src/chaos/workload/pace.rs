//! Rates (`50/s`, `600/m`, `2/min`, `10000/h`, or a bare number per second) and a constant-rate
//! pacer that plans every tick from the start (no drift; after a stall it catches up).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The highest rate a workload accepts, per second.
pub const MAX_RATE: f64 = 100_000.0;

/// Parses a rate into events per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (count, per) = match t.split_once('/') {
        Some((n, unit)) => (n.trim(), unit.trim()),
        None => (t, "s"),
    };
    let seconds = match per {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => {
            return Err(format!(
                "invalid rate {t:?}: unknown unit {other:?} (write e.g. 50/s, 600/m, 2/h)"
            ));
        }
    };
    let n: f64 = count
        .parse()
        .map_err(|_| format!("invalid rate {t:?}: {count:?} is not a number (write e.g. 50/s)"))?;
    let rate = n / seconds;
    if !rate.is_finite() || rate <= 0.0 || rate > MAX_RATE {
        return Err(format!(
            "invalid rate {t:?}: must be more than 0 and at most {MAX_RATE}/s"
        ));
    }
    Ok(rate)
}

/// Ticks at a constant rate: tick `k` is due at `start + k / rate`.
pub struct Pacer {
    start: Instant,
    period: Duration,
    next: u64,
}

impl Pacer {
    pub fn new(rate_per_second: f64) -> Pacer {
        Pacer {
            start: Instant::now(),
            period: Duration::from_secs_f64(1.0 / rate_per_second),
            next: 0,
        }
    }

    /// Waits for the next tick.
    pub async fn tick(&mut self) {
        let offset = self.period.as_nanos() * u128::from(self.next);
        let due = self.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX));
        self.next += 1;
        tokio::time::sleep_until(due).await;
    }

    /// Waits for the next tick, then for a free slot among the requests in flight; None once
    /// `stop` is cancelled (or the slots are closed).
    pub async fn next_slot(
        &mut self,
        in_flight: &Arc<Semaphore>,
        stop: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            _ = self.tick() => {}
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            p = in_flight.clone().acquire_owned() => p.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_unit() {
        assert_eq!(parse_rate("50/s").unwrap(), 50.0);
        assert_eq!(parse_rate(" 600/m ").unwrap(), 10.0);
        assert_eq!(parse_rate("7200/h").unwrap(), 2.0);
        assert_eq!(parse_rate("2.5").unwrap(), 2.5);
        for bad in ["0/s", "-1/s", "fast", "5/d", "1e9/s", "NaN/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("5/d").unwrap_err().contains("unknown unit"));
    }

    #[tokio::test]
    async fn the_pacer_keeps_its_rate() {
        let started = Instant::now();
        let mut p = Pacer::new(200.0);
        for _ in 0..=40 {
            p.tick().await;
        }
        // Tick 40 is due at 200 ms; ticks are planned from the start, so lateness does not add up.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
    }
}
