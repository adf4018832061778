//! Guardrails around a playbook run: the global switch, one run per lock key at a time (held in
//! the store, so two daemons cannot both run it), rate limits per playbook and key, approvals
//! (terminal prompt, `--yes`, or the store-backed approval API with expiring links), and the
//! alert that says a run was refused.
//!
//! OWNER: guard helper — these are the contracts the runner calls; fill them in.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::run::PlaybookRun;
use super::spec::RateLimit;
use crate::config::RuleSet;
use crate::store::Store;

/// A lock held in the store until released (or until it expires, should its holder die).
pub struct LockHeld {
    pub key: String,
    pub run_id: String,
}

impl LockHeld {
    pub async fn release(self, store: &Store) {
        let _ = store;
    }
}

/// Takes the lock `key` for `run_id` for at most `ttl`; Err names the run holding it.
pub async fn acquire_lock(
    store: &Store,
    key: &str,
    run_id: &str,
    ttl: Duration,
) -> Result<LockHeld, String> {
    let _ = (store, ttl);
    Ok(LockHeld {
        key: key.to_string(),
        run_id: run_id.to_string(),
    })
}

/// Admits one more run of (`playbook`, `key`) under `limit` at `now`, counting it; Err says
/// how many ran in the window and when the next is allowed.
pub async fn admit(
    store: &Store,
    playbook: &str,
    key: &str,
    limit: RateLimit,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let _ = (store, playbook, key, limit, now);
    Ok(())
}

/// Tells the `playbooks.notify` receivers that `run` was refused (queued in the outbox, so it
/// is delivered even when a receiver is down right now).
pub async fn announce_refusal(
    store: &Store,
    rules: &RuleSet,
    run: &PlaybookRun,
    external_url: &str,
) {
    let _ = (store, rules, run, external_url);
}
