//! Concurrency limits shared by every run in a process: the daemon's scheduled checks, suite runs
//! and API-triggered runs all draw from the same global and per-target permits, so a database is
//! never hit by more than `per_target` queries at once whoever asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Check;

pub struct Limits {
    global: Arc<Semaphore>,
    per_target: usize,
    targets: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Both permits of one running check; dropping it frees them.
pub struct Permits {
    _global: OwnedSemaphorePermit,
    _target: OwnedSemaphorePermit,
}

impl Limits {
    pub fn new(global: usize, per_target: usize) -> Arc<Limits> {
        Arc::new(Limits {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_target: per_target.max(1),
            targets: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a global permit and one of the check's target, in that order.
    pub async fn acquire(&self, check: &Check) -> Permits {
        let target = self.target_semaphore(&limit_key(check));
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let target = target
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        Permits {
            _global: global,
            _target: target,
        }
    }

    fn target_semaphore(&self, key: &str) -> Arc<Semaphore> {
        let mut map = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_target)))
            .clone()
    }
}

/// Checks against the same target share its limit; checks without one are limited only globally.
fn limit_key(check: &Check) -> String {
    match &check.target {
        Some(t) => format!("{}:{}", t.kind(), t.name),
        None => format!("check:{}", check.name()),
    }
}
