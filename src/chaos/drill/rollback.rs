//! The extra `rollback:` steps of a drill: commands run after every fault is reverted, each
//! bounded by its timeout (its process group killed on timeout), all run even when one fails.

use std::path::Path;

use super::report::StepRecord;
use super::spec::RollbackStep;
use crate::chaos::fault::command::{Resolved, run_captured};

impl RollbackStep {
    pub async fn run(&self, base_dir: &Path) -> StepRecord {
        let shown = self.command.display();
        let resolved = match Resolved::new(&self.command, self.shell, base_dir, &self.env) {
            Ok(r) => r,
            Err(e) => return record(shown, false, e),
        };
        match run_captured(&resolved, self.timeout).await {
            Ok(out) if out.succeeded() => record(shown, true, out.stdout.trim().to_string()),
            Ok(out) => {
                let why = out.failure(resolved.program(), self.timeout);
                record(shown, false, why)
            }
            Err(e) => record(shown, false, e),
        }
    }
}

fn record(command: String, ok: bool, message: String) -> StepRecord {
    StepRecord {
        command,
        ok,
        message: crate::alert::truncate::chars(&message, 500),
    }
}
