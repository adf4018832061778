//! The fault journal: every fault is written to the store BEFORE it is injected (`intended`),
//! then with the state its revert needs (`injected`), then marked `reverted`. Whatever happens to
//! patrol in between — an error, a panic, a signal, kill -9 — [`recover`] finds the faults still
//! active and reverts them from the journal alone.
//!
//! [`Journal::inject`] and [`Journal::revert`] are the calls a drill makes: they keep that order
//! and record each outcome. A fault whose inject failed half-way is reverted at once (its
//! `revert_unconfirmed`), because a failed `exec` or a stopped-but-unconfirmed process must be
//! undone too.
//!
//! **Whose faults a recovery touches.** Each entry names the host and the patrol process
//! (pid + start time) that journaled it. A recovery leaves alone the entries of a patrol that is
//! still running (a drill in progress in another terminal) and those journaled on another host
//! sharing a PostgreSQL store — their pids and files mean nothing here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FaultContext, FaultSpec, pid};
use crate::store::{Store, StoreError};

/// Where a journaled fault is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalStatus {
    /// About to be injected (or the inject did not report back).
    Intended,
    /// Injected, with its revert state.
    Injected,
    /// Reverted: nothing left to do.
    Reverted,
}

impl JournalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalStatus::Intended => "intended",
            JournalStatus::Injected => "injected",
            JournalStatus::Reverted => "reverted",
        }
    }

    pub fn parse(s: &str) -> Option<JournalStatus> {
        match s {
            "intended" => Some(JournalStatus::Intended),
            "injected" => Some(JournalStatus::Injected),
            "reverted" => Some(JournalStatus::Reverted),
            _ => None,
        }
    }
}

/// The patrol process that journaled a fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultOwner {
    pub host: String,
    pub pid: i32,
    /// Its start time (/proc/PID/stat), telling it from a later process with the same pid.
    pub start_time: Option<u64>,
}

impl FaultOwner {
    /// This process.
    pub fn current() -> FaultOwner {
        let pid = std::process::id() as i32;
        FaultOwner {
            host: hostname(),
            pid,
            start_time: pid::stat(pid).map(|s| s.start_time),
        }
    }

    /// Another patrol process on this host that still runs.
    fn is_other_live_process(&self) -> bool {
        let me = std::process::id() as i32;
        self.pid != me
            && match self.start_time {
                Some(t) => pid::is_same_process(self.pid, t),
                None => pid::is_alive(self.pid),
            }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A fault to journal before injecting it.
#[derive(Clone, Debug)]
pub struct NewJournalEntry<'a> {
    pub drill_run: &'a str,
    pub drill: &'a str,
    /// Position of the fault on the drill's timeline.
    pub index: usize,
    pub kind: &'a str,
    pub spec: &'a serde_json::Value,
    pub owner: &'a FaultOwner,
    pub at: DateTime<Utc>,
}

/// A journaled fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: i64,
    pub drill_run: String,
    pub drill: String,
    pub index: usize,
    pub kind: String,
    /// The fault's fields ([`FaultSpec::to_json`]).
    pub spec: serde_json::Value,
    /// The revert state, once injected.
    pub state: Option<serde_json::Value>,
    pub status: JournalStatus,
    pub intended_at: DateTime<Utc>,
    pub injected_at: Option<DateTime<Utc>>,
    pub reverted_at: Option<DateTime<Utc>>,
    pub inject_error: Option<String>,
    /// Why the last revert failed (the entry is still active).
    pub revert_error: Option<String>,
    /// What the revert did.
    pub outcome: Option<String>,
    pub owner: FaultOwner,
}

/// A drill run as stored for trends (`drill_runs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillRunRecord {
    pub id: String,
    pub drill: String,
    /// passed | failed | aborted | error | running, as the drill runner names them.
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The JSON report (registered secrets are masked when stored).
    pub report: serde_json::Value,
}

/// A fault that is in place, and what reverting it needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InjectedFault {
    /// Its journal entry.
    pub id: i64,
    pub kind: String,
    pub state: serde_json::Value,
    pub injected_at: DateTime<Utc>,
}

/// A fault that could not be put in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultFailure {
    /// Its journal entry; None when not even the journal could be written (then nothing was
    /// injected).
    pub id: Option<i64>,
    pub error: String,
    /// The revert run at once to undo a half-done inject: Ok(what it did) or Err(why it failed,
    /// the entry then stays active for a recovery).
    pub cleanup: Option<Result<String, String>>,
}

impl std::fmt::Display for FaultFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        match &self.cleanup {
            Some(Ok(done)) => write!(f, " (reverted: {done})"),
            Some(Err(e)) => write!(f, " (revert FAILED, still active: {e})"),
            None => Ok(()),
        }
    }
}

/// The journal of a store.
#[derive(Clone, Debug)]
pub struct Journal {
    store: Store,
    owner: FaultOwner,
}

impl Journal {
    pub fn new(store: Store) -> Journal {
        Journal {
            store,
            owner: FaultOwner::current(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Journals `spec` as about to be injected; call BEFORE injecting it.
    pub async fn intend(
        &self,
        drill_run: &str,
        drill: &str,
        index: usize,
        spec: &FaultSpec,
    ) -> Result<i64, StoreError> {
        self.store
            .journal_intend(&NewJournalEntry {
                drill_run,
                drill,
                index,
                kind: spec.kind(),
                spec: &spec.to_json(),
                owner: &self.owner,
                at: Utc::now(),
            })
            .await
    }

    /// Records that entry `id` is injected, with its revert state.
    pub async fn injected(&self, id: i64, state: &serde_json::Value) -> Result<(), StoreError> {
        self.store.journal_injected(id, state, Utc::now()).await
    }

    /// Records a revert of entry `id`: Ok marks it reverted, Err keeps it active with the reason.
    pub async fn reverted(&self, id: i64, outcome: Result<(), &str>) -> Result<(), StoreError> {
        self.reverted_with(id, outcome.map(|()| "reverted")).await
    }

    /// Like [`Journal::reverted`], with what the revert did.
    pub async fn reverted_with(
        &self,
        id: i64,
        outcome: Result<&str, &str>,
    ) -> Result<(), StoreError> {
        self.store.journal_reverted(id, outcome, Utc::now()).await
    }

    /// Active entries (intended or injected, not reverted), oldest first.
    pub async fn active(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.store.journal_active().await
    }

    /// Every entry of one drill run, in journal order.
    pub async fn of_run(&self, drill_run: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.store.journal_of_run(drill_run).await
    }

    /// Journals, injects for `window` and journals the revert state. On failure anything half
    /// done is reverted at once and the outcome recorded.
    pub async fn inject(
        &self,
        ctx: &FaultContext,
        drill_run: &str,
        drill: &str,
        index: usize,
        spec: &FaultSpec,
        window: Duration,
    ) -> Result<InjectedFault, FaultFailure> {
        let id = self
            .intend(drill_run, drill, index, spec)
            .await
            .map_err(|e| FaultFailure {
                id: None,
                error: format!("not injected: the journal cannot be written ({e})"),
                cleanup: None,
            })?;
        let state = match spec.inject(ctx, window).await {
            Ok(state) => state,
            Err(error) => {
                let _ = self.store.journal_inject_failed(id, &error).await;
                let cleanup = spec.revert_unconfirmed(ctx).await;
                let cleanup = self.record(id, cleanup).await;
                return Err(FaultFailure {
                    id: Some(id),
                    error,
                    cleanup: Some(cleanup),
                });
            }
        };
        if let Err(e) = self.injected(id, &state).await {
            // Without its state in the journal a crash could leave it in place: undo it now.
            let cleanup = FaultSpec::revert_state(spec.kind(), ctx, &state).await;
            let cleanup = self.record(id, cleanup).await;
            return Err(FaultFailure {
                id: Some(id),
                error: format!("injected, but its revert state could not be journaled ({e})"),
                cleanup: Some(cleanup),
            });
        }
        Ok(InjectedFault {
            id,
            kind: spec.kind().to_string(),
            state,
            injected_at: Utc::now(),
        })
    }

    /// Reverts `fault` and records the outcome. A revert that fails leaves the entry active.
    pub async fn revert(
        &self,
        ctx: &FaultContext,
        fault: &InjectedFault,
    ) -> Result<String, String> {
        let outcome = FaultSpec::revert_state(&fault.kind, ctx, &fault.state).await;
        self.record(fault.id, outcome).await
    }

    /// Records a revert outcome; a journal that cannot be written is mentioned, not fatal (the
    /// entry stays active and a recovery reverts it again, which reverts are made safe for).
    async fn record(&self, id: i64, outcome: Result<String, String>) -> Result<String, String> {
        let written = self
            .reverted_with(id, outcome.as_deref().map_err(String::as_str))
            .await;
        match (outcome, written) {
            (outcome, Ok(())) => outcome,
            (Ok(done), Err(e)) => Ok(format!("{done} (journal not updated: {e})")),
            (Err(why), Err(e)) => Err(format!("{why} (journal not updated: {e})")),
        }
    }
}

/// What a recovery did with one active entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoverOutcome {
    pub id: i64,
    pub drill_run: String,
    pub drill: String,
    pub index: usize,
    pub kind: String,
    /// The entry's status before the recovery.
    pub was: JournalStatus,
    pub result: RecoverResult,
}

/// The result of recovering one entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", content = "message", rename_all = "lowercase")]
pub enum RecoverResult {
    /// Reverted (what was done); the entry is closed.
    Reverted(String),
    /// The revert failed; the entry stays active.
    Failed(String),
    /// Not touched: owned by a patrol that still runs, or journaled on another host.
    Skipped(String),
}

impl RecoverOutcome {
    pub fn is_reverted(&self) -> bool {
        matches!(self.result, RecoverResult::Reverted(_))
    }
}

impl std::fmt::Display for RecoverOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (word, msg) = match &self.result {
            RecoverResult::Reverted(m) => ("reverted", m),
            RecoverResult::Failed(m) => ("FAILED", m),
            RecoverResult::Skipped(m) => ("skipped", m),
        };
        write!(
            f,
            "{} fault #{} ({}) of drill {} run {}: {word}: {msg}",
            self.kind,
            self.index,
            self.was.as_str(),
            self.drill,
            self.drill_run
        )
    }
}

/// Reverts every active entry of the journal, newest first (the reverse of injection order). A
/// revert that fails keeps its entry active and is reported; an entry owned by a patrol that
/// still runs, or journaled on another host, is skipped. Err only when the journal cannot be
/// read.
pub async fn recover(store: &Store, ctx: &FaultContext) -> Result<Vec<RecoverOutcome>, StoreError> {
    let journal = Journal::new(store.clone());
    let mut entries = journal.active().await?;
    entries.reverse();
    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let result = match skip_reason(&entry, &journal.owner) {
            Some(reason) => RecoverResult::Skipped(reason),
            None => match journal
                .record(entry.id, revert_entry(&entry, ctx).await)
                .await
            {
                Ok(done) => RecoverResult::Reverted(done),
                Err(why) => RecoverResult::Failed(why),
            },
        };
        outcomes.push(RecoverOutcome {
            id: entry.id,
            drill_run: entry.drill_run,
            drill: entry.drill,
            index: entry.index,
            kind: entry.kind,
            was: entry.status,
            result,
        });
    }
    Ok(outcomes)
}

fn skip_reason(entry: &JournalEntry, me: &FaultOwner) -> Option<String> {
    if entry.owner.host != me.host {
        return Some(format!(
            "journaled on host {}: recover it there",
            entry.owner.host
        ));
    }
    entry.owner.is_other_live_process().then(|| {
        format!(
            "patrol process {} that injected it is still running",
            entry.owner.pid
        )
    })
}

/// Reverts one entry: from its state when injected, else from its fields.
async fn revert_entry(entry: &JournalEntry, ctx: &FaultContext) -> Result<String, String> {
    match &entry.state {
        Some(state) => FaultSpec::revert_state(&entry.kind, ctx, state).await,
        None => {
            FaultSpec::from_json(&entry.kind, &entry.spec)?
                .revert_unconfirmed(ctx)
                .await
        }
    }
}
