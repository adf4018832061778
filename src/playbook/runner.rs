//! A guarded, audited playbook run — what the command line, the daemon's triggers and the API
//! all go through: the global switch, the rate limit and the lock are checked first (a refused
//! run is stored and announced), then the run is recorded step by step, and the lock released.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::run::{Approver, PlaybookRun, RunOptions, RunStatus, run_in};
use super::spec::Playbook;
use super::{audit, guard, template};
use crate::store::Store;

/// A run to start.
#[derive(Clone)]
pub struct Request {
    pub playbook: Arc<Playbook>,
    /// Resolved parameters.
    pub params: BTreeMap<String, String>,
    /// What triggered it (check, result, alert, score); null from the command line.
    pub trigger: Value,
    pub dry_run: bool,
    /// `cli:<user>`, `api`, `alert:<check>`, `score_low:<service>`.
    pub started_by: String,
    /// The id to use (known in advance when an alert links to the run); none: a new UUID.
    pub run_id: Option<String>,
}

/// Everything a run needs around it.
#[derive(Clone)]
pub struct Runner {
    pub store: Store,
    pub approver: Option<Arc<dyn Approver>>,
    /// Base URL of patrol as people reach it (links).
    pub external_url: String,
}

impl Runner {
    /// Runs `request` behind the guardrails; the run's record (also stored).
    pub async fn execute(&self, request: Request) -> PlaybookRun {
        let playbook = request.playbook.clone();
        let rules = playbook.rules.clone();
        let mut options = RunOptions {
            run_id: request
                .run_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            params: request.params.clone(),
            trigger: request.trigger.clone(),
            dry_run: request.dry_run,
            approver: self.approver.clone(),
            observer: Some(Arc::new(audit::StoreObserver(self.store.clone()))),
            store: Some(self.store.clone()),
            external_url: self.external_url.clone(),
            key: None,
            started_by: request.started_by.clone(),
        };
        let key = match lock_key(&playbook, &options) {
            Ok(k) => k,
            Err(e) => return self.refuse(&playbook, &options, e).await,
        };
        options.key = Some(key.clone());
        if !rules.playbooks.enabled {
            let why = "playbooks are disabled (`playbooks: {enabled: false}` in the rules)";
            return self.refuse(&playbook, &options, why.to_string()).await;
        }
        // A dry run changes nothing: it neither counts against the limit nor takes the lock.
        // The lock is taken first, so that a run refused because another holds it does not use
        // up the rate limit.
        let mut lock = None;
        if !options.dry_run {
            if playbook.lock.is_some() {
                let ttl = playbook.timeout * 2 + playbook.approval_timeout;
                match guard::acquire_lock(&self.store, &key, &options.run_id, ttl).await {
                    Ok(held) => lock = Some(held),
                    Err(e) => return self.refuse(&playbook, &options, e).await,
                }
            }
            if let Some(limit) = playbook.rate_limit
                && let Err(e) = guard::admit(
                    &self.store,
                    &playbook.name,
                    &key,
                    &options.run_id,
                    limit,
                    chrono::Utc::now(),
                )
                .await
            {
                if let Some(held) = lock {
                    held.release(&self.store).await;
                }
                return self.refuse(&playbook, &options, e).await;
            }
        }
        let mut run = PlaybookRun::start(&playbook, &options);
        self.save(&run).await;
        let (status, error) = run_in(&playbook, &options, &mut run).await;
        run.finish(status, error);
        self.save(&run).await;
        if let Some(held) = lock {
            held.release(&self.store).await;
        }
        run
    }

    async fn refuse(&self, playbook: &Playbook, options: &RunOptions, why: String) -> PlaybookRun {
        let mut run = PlaybookRun::start(playbook, options);
        run.finish(RunStatus::Refused, Some(why));
        self.save(&run).await;
        guard::announce_refusal(&self.store, &playbook.rules, &run, &self.external_url).await;
        run
    }

    async fn save(&self, run: &PlaybookRun) {
        if let Err(e) = audit::save_run(&self.store, run).await {
            tracing::warn!("could not store playbook run {}: {e}", run.id);
        }
    }
}

/// The run's lock and rate-limit key: `<playbook>` or `<playbook>:<rendered lock>`.
pub fn lock_key(playbook: &Playbook, options: &RunOptions) -> Result<String, String> {
    let Some(lock) = &playbook.lock else {
        return Ok(playbook.name.clone());
    };
    let ctx = json!({ "params": options.params, "trigger": options.trigger });
    let rendered = template::render(&template::environment(), lock, &ctx)?;
    Ok(format!("{}:{}", playbook.name, rendered.trim()))
}
