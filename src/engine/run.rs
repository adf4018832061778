//! One run of a set of checks: every check concurrently within a global limit and a per-target
//! limit (a database is never hit by more than `per_target` queries at once), each bounded by its
//! timeout; then results, baseline updates and probe memories are committed in one transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::task::JoinSet;

use super::judge::{Judged, RunFacts, judge};
use super::known::{Known, load_for_run};
use super::limits::Limits;
use crate::baseline::EwmaState;
use crate::config::{Check, RuleSet};
use crate::probe::memory::Memory;
use crate::probe::{ProbeContext, ProbeError};
use crate::result::{CheckResult, RunRecord, StatusCounts};
use crate::store::{BaselineKey, ProbeMemory, Store, StoreError};

/// Called with the results of each check as it finishes.
pub type CheckDoneHook = Arc<dyn Fn(&[CheckResult]) + Send + Sync>;

pub struct RunOptions {
    /// Global and per-target concurrency limits (shared with other runs of the process).
    pub limits: Arc<Limits>,
    /// What started the run (`cli`, `demo`, a suite name).
    pub trigger: String,
    /// Called as each check finishes (progress display).
    pub on_check_done: Option<CheckDoneHook>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            limits: Limits::new(32, 4),
            trigger: "cli".into(),
            on_check_done: None,
        }
    }
}

#[derive(Debug)]
pub struct RunOutcome {
    pub run: RunRecord,
    /// Results in the order of the checks given.
    pub results: Vec<CheckResult>,
}

impl RunOutcome {
    /// Whether an enforced check is `crit` or `error`.
    pub fn failed(&self) -> bool {
        self.results.iter().any(CheckResult::fails_run)
    }
}

/// The checks named by `names` (all when empty) carrying every `k=v` of `tags`.
/// Unknown names are returned as the error.
pub fn select_checks(
    rules: &RuleSet,
    names: &[String],
    tags: &[(String, String)],
) -> Result<Vec<Arc<Check>>, Vec<String>> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| rules.check(n).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(rules
        .checks
        .iter()
        .filter(|c| names.is_empty() || names.iter().any(|n| n == c.name()))
        .filter(|c| c.has_labels(tags))
        .cloned()
        .collect())
}

/// Runs `checks` once and stores the run.
pub async fn run_checks(
    rules: &RuleSet,
    checks: &[Arc<Check>],
    store: &Store,
    opts: &RunOptions,
) -> Result<RunOutcome, StoreError> {
    let run_id = uuid::Uuid::now_v7().to_string();
    let revision = rules.revision.to_string();
    let started_at = Utc::now();
    let names: Vec<String> = checks.iter().map(|c| c.name().to_string()).collect();
    let stored = store.baselines(&names).await?;
    let memories = load_memories(store, checks).await?;
    let maintenance = Arc::new(rules.maintenance.clone());
    let mut tasks = JoinSet::new();
    for (index, check) in checks.iter().enumerate() {
        let baselines = baselines_of(&stored, check.name());
        // Models are fitted here, before measuring: a one-shot run has no background refits.
        let known = load_for_run(store, check, baselines, &maintenance, started_at).await?;
        let memory = remembered(&memories, check).cloned();
        let (check, limits, run_id, revision, progress) = (
            check.clone(),
            opts.limits.clone(),
            run_id.clone(),
            revision.clone(),
            opts.on_check_done.clone(),
        );
        tasks.spawn(async move {
            let _permits = limits.acquire(&check).await;
            let judged =
                execute_check_remembering(&check, &known, memory, &run_id, &revision).await;
            if let Some(p) = progress {
                p(&judged.results);
            }
            (index, judged)
        });
    }
    let mut by_index: Vec<Option<Judged>> = (0..checks.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, judged)) => by_index[i] = Some(judged),
            Err(e) => tracing::error!("check task failed: {e}"),
        }
    }
    let mut results = Vec::new();
    let mut updates = Vec::new();
    let mut remembered = Vec::new();
    for (check, judged) in checks.iter().zip(by_index) {
        let judged = judged.unwrap_or_else(|| panicked(check, &run_id, &revision));
        results.extend(judged.results);
        remembered.extend(
            judged
                .memory
                .map(|state| memory_of(check, state, Utc::now())),
        );
        updates.extend(judged.baselines.into_iter().map(|(series, state)| {
            (
                BaselineKey {
                    check: check.name().to_string(),
                    series,
                },
                state,
            )
        }));
    }
    let run = RunRecord {
        id: run_id,
        started_at,
        finished_at: Utc::now(),
        revision,
        trigger: opts.trigger.clone(),
        counts: StatusCounts::tally(&results),
    };
    store
        .save_run_with_memory(&run, &results, &updates, &remembered)
        .await?;
    Ok(RunOutcome { run, results })
}

/// The stored memories of the checks that keep one; no query when none does.
pub async fn load_memories(
    store: &Store,
    checks: &[Arc<Check>],
) -> Result<HashMap<String, ProbeMemory>, StoreError> {
    let names: Vec<String> = checks
        .iter()
        .filter(|c| c.probe.remembers())
        .map(|c| c.name().to_string())
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    store.probe_memories(&names).await
}

/// What `check`'s probe remembered, if the check still measures as it did then.
pub fn remembered<'a>(
    memories: &'a HashMap<String, ProbeMemory>,
    check: &Check,
) -> Option<&'a serde_json::Value> {
    memories
        .get(check.name())?
        .state_for(&check.measure_fingerprint)
}

/// `state`, remembered by `check` as it measures now.
pub fn memory_of(
    check: &Check,
    state: serde_json::Value,
    at: chrono::DateTime<Utc>,
) -> ProbeMemory {
    ProbeMemory {
        check: check.name().to_string(),
        fingerprint: check.measure_fingerprint.clone(),
        state,
        updated_at: at,
    }
}

fn baselines_of(
    stored: &HashMap<BaselineKey, EwmaState>,
    check: &str,
) -> HashMap<String, EwmaState> {
    stored
        .iter()
        .filter(|(k, _)| k.check == check)
        .map(|(k, v)| (k.series.clone(), v.clone()))
        .collect()
}

/// Measures one check (bounded by its timeout) and judges the outcome against what is `known`
/// of its series, keeping no probe memory: a check that remembers (see
/// [`crate::probe::Probe::remembers`]) starts afresh. The caller holds the concurrency permits.
pub async fn execute_check(check: &Check, known: &Known, run_id: &str, revision: &str) -> Judged {
    execute_check_remembering(check, known, None, run_id, revision).await
}

/// [`execute_check`] with the probe memory the check's previous run left (`None`: nothing to go
/// on). What the probe leaves for the next run is in [`Judged::memory`]; a check that does not
/// remember is given no memory, whatever is passed.
pub async fn execute_check_remembering(
    check: &Check,
    known: &Known,
    memory: Option<serde_json::Value>,
    run_id: &str,
    revision: &str,
) -> Judged {
    let started_at = Utc::now();
    let t0 = Instant::now();
    let timeout = check.common.timeout;
    let memory = Memory::new(memory.filter(|_| check.probe.remembers()));
    let ctx = ProbeContext {
        check,
        timeout,
        memory: &memory,
    };
    let outcome = match tokio::time::timeout(timeout, check.probe.measure(&ctx)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::new(format!(
            "timed out after {}",
            crate::config::duration::format(timeout)
        ))),
    };
    let facts = RunFacts {
        run_id,
        revision,
        started_at,
        duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
    };
    let mut judged = judge(check, outcome, known, &facts);
    judged.memory = memory.into_remembered();
    judged
}

/// A probe that panicked still yields a result: patrol never drops a check silently.
fn panicked(check: &Check, run_id: &str, revision: &str) -> Judged {
    let facts = RunFacts {
        run_id,
        revision,
        started_at: Utc::now(),
        duration_ms: 0.0,
    };
    judge(
        check,
        Err(ProbeError::new(
            "the probe panicked (a bug in patrol; see the log)",
        )),
        &Known::default(),
        &facts,
    )
}
