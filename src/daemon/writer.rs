//! The write path of the daemon: finished runs are queued here and committed in batches (one
//! transaction per ~200 ms), so 10,000 checks a minute cost a few transactions a second, not 170.
//! A batch the store refuses is retried, never dropped: an alert or result is not lost because the
//! database was briefly away. Stored events are announced to live subscribers after the commit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::events::EventBus;
use crate::baseline::EwmaState;
use crate::result::{CheckResult, RunRecord};
use crate::store::{BaselineKey, NewEvent, ProbeMemory, Store};

/// How long results may wait to be batched.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Runs per transaction at most.
const BATCH_MAX: usize = 500;
/// Queue length before runners wait for the store (backpressure instead of unbounded memory).
const QUEUE: usize = 20_000;
/// Pause before retrying a batch the store refused.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One finished run to persist.
pub struct Finished {
    pub run: RunRecord,
    pub results: Vec<CheckResult>,
    pub baselines: Vec<(BaselineKey, EwmaState)>,
    /// What the probes of checks that remember left for their next run.
    pub memories: Vec<ProbeMemory>,
    pub events: Vec<NewEvent>,
    /// `(job, planned, started)` of a cron job or suite, for catch-up after a restart.
    pub job_start: Option<(String, DateTime<Utc>, DateTime<Utc>)>,
}

enum Command {
    Write(Box<Finished>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the writer task.
    pub fn start(store: Store, bus: EventBus) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(store, bus, rx));
        Writer { tx }
    }

    pub async fn submit(&self, finished: Finished) {
        if self
            .tx
            .send(Command::Write(Box::new(finished)))
            .await
            .is_err()
        {
            tracing::error!("the store writer has stopped; a run could not be queued");
        }
    }

    /// Returns once everything submitted before the call is committed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(store: Store, bus: EventBus, mut rx: mpsc::Receiver<Command>) {
    let mut pending: Vec<Finished> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let first = match rx.recv().await {
            Some(c) => c,
            None => break,
        };
        absorb(first, &mut pending, &mut flushes);
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while pending.len() < BATCH_MAX && flushes.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(c)) => absorb(c, &mut pending, &mut flushes),
                Ok(None) | Err(_) => break,
            }
        }
        commit(&store, &bus, std::mem::take(&mut pending)).await;
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
    commit(&store, &bus, pending).await;
}

fn absorb(c: Command, pending: &mut Vec<Finished>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match c {
        Command::Write(f) => pending.push(*f),
        Command::Flush(done) => flushes.push(done),
    }
}

/// Commits `batch`, retrying until the store takes it.
async fn commit(store: &Store, bus: &EventBus, batch: Vec<Finished>) {
    if batch.is_empty() {
        return;
    }
    let runs: Vec<(RunRecord, Vec<CheckResult>)> = batch
        .iter()
        .map(|f| (f.run.clone(), f.results.clone()))
        .collect();
    let baselines: Vec<(BaselineKey, EwmaState)> = batch
        .iter()
        .flat_map(|f| f.baselines.iter().cloned())
        .collect();
    let memories: Vec<ProbeMemory> = batch
        .iter()
        .flat_map(|f| f.memories.iter().cloned())
        .collect();
    let events: Vec<NewEvent> = batch
        .iter()
        .flat_map(|f| f.events.iter().cloned())
        .collect();
    let mut attempt = 0u32;
    loop {
        match store
            .save_runs_with_memory(&runs, &baselines, &memories, &events)
            .await
        {
            Ok(stored) => {
                bus.announce(&stored);
                break;
            }
            Err(e) => {
                attempt += 1;
                tracing::error!(
                    "storing {} run(s) failed (attempt {attempt}), retrying: {e}",
                    runs.len()
                );
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    for (job, planned, started) in batch.iter().filter_map(|f| f.job_start.as_ref()) {
        if let Err(e) = store.record_job_start(job, *planned, *started).await {
            tracing::warn!("recording the start of {job} failed: {e}");
        }
    }
}
