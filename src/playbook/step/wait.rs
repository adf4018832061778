//! `wait: 30s` — pauses the playbook (not run by `--dry-run`, which only says it would wait).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{StepEnv, StepKind};

/// How long to wait.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct WaitStep(#[serde(with = "crate::config::duration")] pub Duration);

impl StepKind for WaitStep {
    fn dry_run_safe(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("wait {}", humantime::format_duration(self.0))
    }

    async fn run(&self, _env: &StepEnv<'_>) -> Result<Value, String> {
        tokio::time::sleep(self.0).await;
        Ok(json!({ "waited_ms": self.0.as_millis() as u64 }))
    }
}
