//! Why a drill stops early: a signal, an abort rule, a fault that could not be injected. The first
//! reason given wins; every phase of the runner waits on it alongside its own work.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Interrupt {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Stops the drill for `reason` (ignored when it is already stopping).
    pub fn trigger(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.reason.lock()
            && r.is_none()
        {
            *r = Some(reason.into());
        }
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Resolves with the reason once the drill is told to stop.
    pub async fn wait(&self) -> String {
        self.token.cancelled().await;
        self.reason().unwrap_or_else(|| "interrupted".into())
    }

    /// Triggers on SIGINT and SIGTERM. Installed before anything is injected: from then on a
    /// signal never kills patrol outright, it reverts everything and reports the drill aborted.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                if me.is_triggered() {
                    eprintln!("patrol: {name} received; still reverting the faults");
                }
                me.trigger(format!("interrupted by {name}"));
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_wins() {
        let i = Interrupt::new();
        assert!(!i.is_triggered());
        i.trigger("abort_when: wall time");
        i.trigger("interrupted by SIGINT");
        assert_eq!(i.wait().await, "abort_when: wall time");
    }
}
