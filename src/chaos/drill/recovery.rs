//! Measuring `recovery`: from the last fault's revert (or its inject) until the steady state
//! holds again, probing every `probe_interval / 5` (between 100 ms and 5 s)
//! until it holds or the drain ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::steady::Prober;

/// Shortest and longest wait between two recovery probes.
const FASTEST: Duration = Duration::from_millis(100);
const SLOWEST: Duration = Duration::from_secs(5);

/// A running recovery measurement.
pub struct RecoveryWatch {
    task: JoinHandle<Option<Duration>>,
}

impl RecoveryWatch {
    /// Probes from now until the steady state holds or `deadline`; the time counts from `from`.
    pub fn start(
        prober: Arc<Prober>,
        from: Instant,
        deadline: Instant,
        every: Duration,
    ) -> RecoveryWatch {
        let every = every.clamp(FASTEST, SLOWEST);
        let task = tokio::spawn(async move {
            if !prober.has_steady_state() {
                return None;
            }
            loop {
                // The probe tells how things stood when it was sent.
                let sent = Instant::now();
                if prober.probe_steady().await.holds {
                    return Some(sent.saturating_duration_since(from));
                }
                if Instant::now() + every > deadline {
                    return None;
                }
                tokio::time::sleep(every).await;
            }
        });
        RecoveryWatch { task }
    }

    /// Stops measuring (the drill was aborted).
    pub fn cancel(self) {
        self.task.abort();
    }

    /// Milliseconds until the steady state held again; None when it did not before the deadline.
    pub async fn result(self) -> Option<f64> {
        match self.task.await {
            Ok(d) => d.map(|d| d.as_secs_f64() * 1000.0),
            Err(e) => {
                tracing::error!("recovery measurement failed: {e}");
                None
            }
        }
    }
}
