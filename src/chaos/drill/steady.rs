//! Probing the steady state: the drill's checks run through the engine (each bounded by its
//! timeout, judged against its stored baseline, which a drill never updates — a fault must not
//! teach the baseline that a broken system is normal).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::spec::{Drill, Tolerance};
use crate::baseline::EwmaState;
use crate::config::Check;
use crate::engine::{Known, execute_check_remembering};
use crate::result::{CheckResult, Status};

/// One check's verdict in one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub check: String,
    /// Worst status over the check's series.
    pub status: Status,
    /// What the steady state tolerates of this check (None: probed for abort_when or verify only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// Whether the check holds its tolerance (None when it is not part of the steady state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The steady state at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteadySnapshot {
    /// Milliseconds since the drill started.
    pub at_ms: u64,
    /// Every steady-state check holds.
    pub holds: bool,
    pub checks: Vec<CheckOutcome>,
}

impl SteadySnapshot {
    /// "check a is crit (connection refused); check b is warn" for the checks that do not hold.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|c| c.holds == Some(false))
            .map(|c| {
                if c.message.is_empty() {
                    format!("check {} is {}", c.check, c.status)
                } else {
                    format!("check {} is {} ({})", c.check, c.status, c.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn status_of(&self, check: &str) -> Option<Status> {
        self.checks
            .iter()
            .find(|c| c.check == check)
            .map(|c| c.status)
    }
}

/// Runs the drill's checks.
pub struct Prober {
    steady: Vec<(Arc<Check>, Tolerance)>,
    /// Checks probed besides the steady state (abort_when, verify, health scores).
    others: Vec<Arc<Check>>,
    baselines: HashMap<String, HashMap<String, EwmaState>>,
    revision: String,
    run_id: String,
    started: Instant,
    /// What remembering probes (e.g. `restarts_increase`) kept from the previous probe, by check:
    /// a drill compares each probe with the one before it.
    memories: std::sync::Mutex<HashMap<String, serde_json::Value>>,
}

impl Prober {
    /// `baselines`: the stored state per (check, series), as `Store::baselines` returns it.
    pub fn new(
        drill: &Drill,
        baselines: HashMap<crate::store::BaselineKey, EwmaState>,
        run_id: &str,
        started: Instant,
    ) -> Prober {
        let steady: Vec<(Arc<Check>, Tolerance)> = drill
            .steady_state
            .iter()
            .map(|s| (s.check.clone(), s.tolerance))
            .collect();
        let others = drill
            .probed_checks()
            .into_iter()
            .filter(|c| !steady.iter().any(|(s, _)| s.name() == c.name()))
            .collect();
        let mut by_check: HashMap<String, HashMap<String, EwmaState>> = HashMap::new();
        for (key, state) in baselines {
            by_check
                .entry(key.check)
                .or_default()
                .insert(key.series, state);
        }
        Prober {
            steady,
            others,
            baselines: by_check,
            revision: drill.rules.revision.to_string(),
            run_id: run_id.to_string(),
            started,
            memories: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn has_steady_state(&self) -> bool {
        !self.steady.is_empty()
    }

    /// Names of every probed check.
    pub fn check_names(drill: &Drill) -> Vec<String> {
        drill
            .probed_checks()
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    /// Only the steady-state checks (fast probing while waiting for recovery).
    pub async fn probe_steady(&self) -> SteadySnapshot {
        let checks: Vec<&Arc<Check>> = self.steady.iter().map(|(c, _)| c).collect();
        self.probe(&checks).await.0
    }

    /// Every probed check, with their raw results (for health scores).
    pub async fn probe_all(&self) -> (SteadySnapshot, Vec<CheckResult>) {
        let checks: Vec<&Arc<Check>> = self
            .steady
            .iter()
            .map(|(c, _)| c)
            .chain(self.others.iter())
            .collect();
        self.probe(&checks).await
    }

    /// Starts from what remembering probes kept in the store (from `patrol run` or the daemon),
    /// so the first probe of the drill already has something to compare with.
    pub async fn load_memories(&self, store: &crate::store::Store) -> Result<(), String> {
        let checks: Vec<Arc<Check>> = self
            .steady
            .iter()
            .map(|(c, _)| c.clone())
            .chain(self.others.iter().cloned())
            .collect();
        let stored = crate::engine::load_memories(store, &checks)
            .await
            .map_err(|e| format!("store: {e}"))?;
        for check in &checks {
            if let Some(m) = crate::engine::remembered(&stored, check) {
                self.remember(check.name(), m.clone());
            }
        }
        Ok(())
    }

    fn memory_of(&self, check: &str) -> Option<serde_json::Value> {
        let memories = self.memories.lock().unwrap_or_else(|e| e.into_inner());
        memories.get(check).cloned()
    }

    fn remember(&self, check: &str, memory: serde_json::Value) {
        let mut memories = self.memories.lock().unwrap_or_else(|e| e.into_inner());
        memories.insert(check.to_string(), memory);
    }

    async fn probe(&self, checks: &[&Arc<Check>]) -> (SteadySnapshot, Vec<CheckResult>) {
        let at_ms = self.started.elapsed().as_millis() as u64;
        // A drill judges against the EWMA states it started with; fitted methods and peer
        // comparisons fall back to them (the drill's seconds are not a season).
        let known: Vec<Known> = checks
            .iter()
            .map(|c| {
                Known::with_baselines(self.baselines.get(c.name()).cloned().unwrap_or_default())
            })
            .collect();
        let runs = checks.iter().zip(&known).map(|(c, known)| {
            let memory = self.memory_of(c.name());
            execute_check_remembering(c, known, memory, &self.run_id, &self.revision)
        });
        let judged = futures::future::join_all(runs).await;
        for (check, j) in checks.iter().zip(&judged) {
            if let Some(m) = &j.memory {
                self.remember(check.name(), m.clone());
            }
        }
        let mut outcomes = Vec::new();
        let mut results = Vec::new();
        for (check, j) in checks.iter().zip(judged) {
            outcomes.push(self.outcome(check, &j.results));
            results.extend(j.results);
        }
        let holds = outcomes.iter().all(|o| o.holds != Some(false));
        (
            SteadySnapshot {
                at_ms,
                holds,
                checks: outcomes,
            },
            results,
        )
    }

    fn outcome(&self, check: &Check, results: &[CheckResult]) -> CheckOutcome {
        let status = results
            .iter()
            .map(|r| r.status)
            .max()
            .unwrap_or(Status::Error);
        let tolerance = self
            .steady
            .iter()
            .find(|(c, _)| c.name() == check.name())
            .map(|(_, t)| *t);
        let message = results
            .iter()
            .filter(|r| r.status > Status::Ok && !r.message.is_empty())
            .map(|r| match r.series.as_str() {
                "" => r.message.clone(),
                s => format!("{s}: {}", r.message),
            })
            .collect::<Vec<_>>()
            .join("; ");
        CheckOutcome {
            check: check.name().to_string(),
            status,
            tolerance,
            holds: tolerance.map(|t| t.accepts(status)),
            message: crate::alert::truncate::chars(&message, 300),
        }
    }
}
