//! The audit trail of playbook runs: every run and step written to the store as the run goes
//! (rendered input with secrets redacted, output, duration, approver, result). What is stored is
//! read back by `patrol playbook history|show`, `GET /api/v1/playbook-runs` and the run report
//! ([`super::report`]).

use super::run::{BoxFuture, PlaybookRun, RunObserver, StepRecord};
use crate::store::Store;

/// Stores each step as it ends, at its position in the run (forward steps, then rollbacks).
pub struct StoreObserver(pub Store);

impl RunObserver for StoreObserver {
    fn step_finished<'a>(
        &'a self,
        run: &'a PlaybookRun,
        record: &'a StepRecord,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let seq = step_seq(run);
            if let Err(e) = self.0.save_playbook_step(&run.id, seq, record).await {
                // The run goes on: an audit that cannot be written must not stop a remediation.
                tracing::warn!(
                    "could not store step `{}` of playbook run {}: {e}",
                    record.name,
                    run.id
                );
            }
        })
    }
}

/// The position of the step just finished: the runner pushes the record onto `run.steps`
/// before it tells the observer, so it is the last one.
fn step_seq(run: &PlaybookRun) -> usize {
    run.steps.len().saturating_sub(1)
}

/// Writes (inserts or updates) the run's own row: at its start, at its end, when refused.
pub async fn save_run(store: &Store, run: &PlaybookRun) -> Result<(), String> {
    store
        .save_playbook_run(run)
        .await
        .map_err(|e| e.to_string())
}
