//! `lock:` — one run per key at a time, held in the store so that two daemons (or a daemon and
//! a command line run) sharing it cannot both run. A lock carries an expiry (the longest the run
//! can take): should its holder die without releasing it, the next run takes it over then.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{LockHolder, Store};

/// A lock held in the store until released (or until it expires, should its holder die).
pub struct LockHeld {
    pub key: String,
    pub run_id: String,
}

impl LockHeld {
    /// Gives the lock back; a lock taken over since (it expired) is left to its new holder.
    pub async fn release(self, store: &Store) {
        match store.release_playbook_lock(&self.key, &self.run_id).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "lock {} of run {} was no longer held by it when released (it expired)",
                self.key,
                self.run_id
            ),
            Err(e) => tracing::warn!(
                "could not release lock {} (it expires by itself): {e}",
                self.key
            ),
        }
    }
}

/// Takes the lock `key` for `run_id` for at most `ttl`; Err names the run holding it. A store
/// that cannot be reached refuses too: running without the lock is what it is there to prevent.
pub async fn acquire_lock(
    store: &Store,
    key: &str,
    run_id: &str,
    ttl: Duration,
) -> Result<LockHeld, String> {
    let now = Utc::now();
    let expires_at = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
    match store
        .acquire_playbook_lock(key, run_id, &holder(), now, expires_at)
        .await
    {
        Ok(Ok(())) => Ok(LockHeld {
            key: key.to_string(),
            run_id: run_id.to_string(),
        }),
        Ok(Err(current)) => Err(held_by(key, &current)),
        Err(e) => Err(format!("could not take lock {key}: {e}")),
    }
}

/// This process, as a lock names its holder: `host:pid`.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}", std::process::id())
}

/// "lock orders:db1 is held by run 0193… (patrol on web1:4242) since 14:02:07 UTC, until 14:32:07 UTC".
fn held_by(key: &str, current: &LockHolder) -> String {
    format!(
        "lock {key} is held by run {} (patrol on {}) since {}, until {}",
        current.run_id,
        current.holder,
        clock(current.acquired_at),
        clock(current.expires_at)
    )
}

/// A time of day in UTC, with the date when it is not today.
pub(super) fn clock(at: DateTime<Utc>) -> String {
    if at.date_naive() == Utc::now().date_naive() {
        at.format("%H:%M:%S UTC").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_second_taker_is_told_who_holds_the_lock() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let ttl = Duration::from_secs(60);
        let held = acquire_lock(&store, "fix:db1", "run-1", ttl).await.unwrap();
        let refused = acquire_lock(&store, "fix:db1", "run-2", ttl)
            .await
            .err()
            .unwrap();
        assert!(
            refused.starts_with(&format!(
                "lock fix:db1 is held by run run-1 (patrol on {}) since ",
                holder()
            )),
            "{refused}"
        );
        // Another key is another lock.
        acquire_lock(&store, "fix:db2", "run-3", ttl).await.unwrap();
        held.release(&store).await;
        acquire_lock(&store, "fix:db1", "run-2", ttl).await.unwrap();
    }
}
