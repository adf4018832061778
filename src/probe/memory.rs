//! Probe memory: a small JSON value a probe keeps from one run of its check to the next (the
//! restart counts behind `restarts_increase`, for example).
//!
//! The engine reads it from the store before the run and saves what the probe leaves with the
//! run's results, in the same transaction, so it survives restarts and works across `patrol run`
//! invocations. It is stored with the check's measure fingerprint: a check whose measuring
//! settings changed starts with no memory. Only probes whose [`super::Probe::remembers`] says so
//! are given one; the others cost no read and no write.

use std::sync::Mutex;

/// One check's memory during one run: what the previous run left, and what this run leaves.
#[derive(Debug, Default)]
pub struct Memory {
    previous: Option<serde_json::Value>,
    /// Behind a lock because probes measure through a shared [`super::ProbeContext`].
    next: Mutex<Option<serde_json::Value>>,
}

impl Memory {
    /// A run's memory, starting from what the previous run left (`None`: nothing to go on).
    pub fn new(previous: Option<serde_json::Value>) -> Memory {
        Memory {
            previous,
            next: Mutex::new(None),
        }
    }

    /// What the previous run left: `None` on the first run, after the check's measuring
    /// settings changed, or when the caller keeps no memory.
    pub fn previous(&self) -> Option<&serde_json::Value> {
        self.previous.as_ref()
    }

    /// Leaves `value` for the next run. A run that never calls this (a probe error, a timeout)
    /// leaves the previous value in place.
    pub fn remember(&self, value: serde_json::Value) {
        *self.next.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// What this run left, if anything.
    pub fn into_remembered(self) -> Option<serde_json::Value> {
        self.next.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_reads_the_previous_value_and_leaves_its_own() {
        let m = Memory::new(Some(json!({"n": 1})));
        assert_eq!(m.previous(), Some(&json!({"n": 1})));
        m.remember(json!({"n": 2}));
        assert_eq!(
            m.previous(),
            Some(&json!({"n": 1})),
            "unchanged during the run"
        );
        assert_eq!(m.into_remembered(), Some(json!({"n": 2})));
    }

    #[test]
    fn a_run_that_remembers_nothing_leaves_nothing() {
        let m = Memory::new(Some(json!(1)));
        assert_eq!(m.into_remembered(), None);
        assert_eq!(Memory::default().previous(), None);
    }
}
