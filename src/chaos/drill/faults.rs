//! The faults of a drill as tasks: each waits for its `at`, is journaled and injected (by the
//! [`Journal`], which undoes a half-done inject at once), held for its `for` (or until the drill
//! stops) and reverted. A task that panics is caught (its `JoinError`); once every task has ended,
//! whatever the journal still holds as active for this run is reverted from the journal — the
//! same way `patrol drill --recover` does after a crash of the whole process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::report::FaultRecord;
use super::spec::TimedFault;
use crate::chaos::fault::{FaultContext, FaultSpec, Journal, JournalEntry, JournalStatus};

/// What a fault task tells the runner as it goes.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultEvent {
    Injected {
        index: usize,
        at: Instant,
    },
    Reverted {
        index: usize,
        at: Instant,
    },
    /// The fault could not be journaled or injected: the drill stops.
    Failed {
        index: usize,
        error: String,
    },
}

/// Who the journal entries belong to.
#[derive(Clone, Debug)]
pub struct RunIds {
    pub run_id: String,
    pub drill: String,
}

/// The running fault phase.
pub struct FaultPhase {
    tasks: JoinSet<FaultRecord>,
    ids: HashMap<tokio::task::Id, usize>,
    records: BTreeMap<usize, FaultRecord>,
    ctx: Arc<FaultContext>,
    journal: Journal,
    run_id: String,
    /// Tells every task to revert now (abort, signal).
    stop: CancellationToken,
}

impl FaultPhase {
    /// Starts one task per fault; `start` is the zero of the timeline.
    pub fn start(
        faults: &[TimedFault],
        start: Instant,
        ctx: Arc<FaultContext>,
        journal: Journal,
        ids: &RunIds,
        events: mpsc::UnboundedSender<FaultEvent>,
    ) -> FaultPhase {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut task_ids = HashMap::new();
        let mut records = BTreeMap::new();
        for fault in faults {
            records.insert(fault.index, record_of(fault));
            let task = FaultTask {
                fault: fault.clone(),
                start,
                ctx: ctx.clone(),
                journal: journal.clone(),
                ids: ids.clone(),
                stop: stop.clone(),
                events: events.clone(),
            };
            let handle = tasks.spawn(task.run());
            task_ids.insert(handle.id(), fault.index);
        }
        FaultPhase {
            tasks,
            ids: task_ids,
            records,
            ctx,
            journal,
            run_id: ids.run_id.clone(),
            stop,
        }
    }

    /// Whether every task has ended.
    pub fn is_done(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to end (None when all have).
    pub async fn join_next(&mut self) -> Option<()> {
        match self.tasks.join_next_with_id().await? {
            Ok((_, record)) => {
                self.records.insert(record.index, record);
            }
            Err(e) => {
                let why = if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                tracing::error!("a fault task {why}: {e}");
                if let Some(record) = self.ids.get(&e.id()).and_then(|i| self.records.get_mut(i)) {
                    record.outcome = "unknown".into();
                    record.error = Some(format!("the fault task {why}"));
                }
            }
        }
        Some(())
    }

    /// Stops every task (each reverts what it injected), waits for all, reverts from the journal
    /// whatever is still active for this run, and returns the records.
    pub async fn stop_and_collect(mut self) -> Vec<FaultRecord> {
        self.stop.cancel();
        while self.join_next().await.is_some() {}
        self.sweep().await;
        self.records.into_values().collect()
    }

    /// The safety net behind the tasks: every entry of this run the journal still holds active
    /// (a task panicked, or a revert failed and may succeed now) is reverted from the journal.
    async fn sweep(&mut self) {
        let entries = match self.journal.of_run(&self.run_id).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("journal: cannot read this run's faults to check them: {e}");
                return;
            }
        };
        for entry in entries
            .iter()
            .filter(|e| e.status != JournalStatus::Reverted)
        {
            let outcome = revert_entry(entry, &self.ctx).await;
            let written = self
                .journal
                .reverted_with(entry.id, outcome.as_deref().map_err(String::as_str))
                .await;
            if let Err(e) = written {
                tracing::error!("journal: revert of entry {} not recorded: {e}", entry.id);
            }
            if let Some(record) = self.records.get_mut(&entry.index) {
                record.journal_id = Some(entry.id);
                record.reverted_at = Some(Utc::now());
                let before = record.error.take().unwrap_or_default();
                match outcome {
                    Ok(_) => {
                        record.outcome = "reverted".into();
                        record.error = Some(
                            format!("{before} (reverted from the journal)")
                                .trim()
                                .to_string(),
                        );
                    }
                    Err(e) => {
                        record.outcome = "revert failed".into();
                        record.error = Some(format!("{before} {e}").trim().to_string());
                    }
                }
            }
        }
    }
}

/// Reverts one journal entry: from its state when it was injected, else from its fields.
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

/// The record of a fault before anything happened to it.
pub(super) fn record_of(f: &TimedFault) -> FaultRecord {
    FaultRecord {
        index: f.index,
        kind: f.spec.kind().to_string(),
        description: f.spec.describe(),
        at_ms: f.at.as_millis() as u64,
        for_ms: f.duration.as_millis() as u64,
        journal_id: None,
        injected_at: None,
        reverted_at: None,
        outcome: "not injected".into(),
        error: None,
    }
}

struct FaultTask {
    fault: TimedFault,
    start: Instant,
    ctx: Arc<FaultContext>,
    journal: Journal,
    ids: RunIds,
    stop: CancellationToken,
    events: mpsc::UnboundedSender<FaultEvent>,
}

impl FaultTask {
    async fn run(self) -> FaultRecord {
        let mut record = record_of(&self.fault);
        let index = self.fault.index;
        let begin = tokio::time::Instant::from_std(self.start + self.fault.at);
        tokio::select! {
            _ = tokio::time::sleep_until(begin) => {}
            _ = self.stop.cancelled() => return record,
        }
        // Journaled before it is injected (inside `Journal::inject`): a crash during the
        // injection still leaves a trace for the recovery.
        let injected = self
            .journal
            .inject(
                &self.ctx,
                &self.ids.run_id,
                &self.ids.drill,
                index,
                &self.fault.spec,
                self.fault.duration,
            )
            .await;
        let fault = match injected {
            Ok(f) => f,
            Err(failure) => {
                record.journal_id = failure.id;
                record.outcome = match &failure.cleanup {
                    None => "not injected",
                    Some(Ok(_)) => "inject failed",
                    Some(Err(_)) => "revert failed",
                }
                .into();
                let error = failure.to_string();
                record.error = Some(error.clone());
                let _ = self.events.send(FaultEvent::Failed { index, error });
                return record;
            }
        };
        record.journal_id = Some(fault.id);
        record.injected_at = Some(fault.injected_at);
        record.outcome = "injected".into();
        let _ = self.events.send(FaultEvent::Injected {
            index,
            at: Instant::now(),
        });
        let end = tokio::time::Instant::from_std(self.start + self.fault.end());
        tokio::select! {
            _ = tokio::time::sleep_until(end) => {}
            _ = self.stop.cancelled() => {}
        }
        let outcome = self.journal.revert(&self.ctx, &fault).await;
        record.reverted_at = Some(Utc::now());
        match outcome {
            Ok(_) => record.outcome = "reverted".into(),
            Err(e) => {
                record.outcome = "revert failed".into();
                record.error = Some(e);
            }
        }
        let _ = self.events.send(FaultEvent::Reverted {
            index,
            at: Instant::now(),
        });
        record
    }
}
