//! The alert that says a run was refused (`alertname: playbook_refused`): playbooks disabled,
//! the lock held by another run, the rate limit reached. Without it a refused remediation would
//! go unnoticed exactly when something needed fixing.

use std::collections::BTreeMap;

use super::notice::{self, Notice};
use crate::config::RuleSet;
use crate::playbook::run::PlaybookRun;
use crate::store::Store;

/// Tells the `playbooks.notify` receivers that `run` was refused (queued in the outbox, so it
/// is delivered even when a receiver is down right now).
pub async fn announce_refusal(
    store: &Store,
    rules: &RuleSet,
    run: &PlaybookRun,
    external_url: &str,
) {
    let why = run.error.clone().unwrap_or_else(|| "refused".to_string());
    tracing::warn!("playbook {} refused (run {}): {why}", run.playbook, run.id);
    let queued = notice::post(
        store,
        rules,
        external_url,
        &refusal_notice(run, &why, external_url),
    )
    .await;
    if queued == 0 && !rules.playbooks.notify.is_empty() {
        tracing::warn!("nobody was told that run {} was refused", run.id);
    }
}

fn refusal_notice(run: &PlaybookRun, why: &str, external_url: &str) -> Notice {
    let key = run.key.clone().unwrap_or_else(|| run.playbook.clone());
    let run_url = format!(
        "{}/api/v1/playbook-runs/{}",
        external_url.trim_end_matches('/'),
        run.id
    );
    let labels = BTreeMap::from([
        ("alertname".to_string(), "playbook_refused".to_string()),
        ("playbook".to_string(), run.playbook.clone()),
        ("key".to_string(), key),
        ("severity".to_string(), "warning".to_string()),
    ]);
    let annotations = BTreeMap::from([
        ("summary".to_string(), why.to_string()),
        (
            "description".to_string(),
            format!(
                "playbook {} was not run (started by {}): {why}",
                run.playbook, run.started_by
            ),
        ),
        ("run_id".to_string(), run.id.clone()),
        ("run_url".to_string(), run_url.clone()),
    ]);
    Notice {
        labels,
        annotations,
        generator_url: run_url,
        event: format!("refused:{}", run.id),
    }
}
