//! Playbooks in the daemon: the set read from the playbook directory (the rules'
//! `playbooks.dir`, else `--playbooks`), swapped atomically with the rules on every reload, and
//! the runs the triggers (`on_failure` of a check, `on_low_score` of a service) and the API
//! start — each in its own task through the guarded, audited [`Runner`], so neither the
//! scheduler nor the alerting ever waits for a playbook.

pub mod load;
pub mod trigger;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::json;
use tokio_util::task::TaskTracker;

use self::load::{PlaybookSet, check_references, playbooks_dir, scan_dir};
use self::trigger::PlannedRun;
use crate::config::{Diagnostic, Env, RuleSet};
use crate::playbook::guard::StoreApprover;
use crate::playbook::runner::{Request, Runner};

pub use self::trigger::PLAYBOOK_RUN;

/// Why the API could not start a run.
#[derive(Debug, PartialEq)]
pub enum StartError {
    /// No playbook of that name is loaded.
    Unknown(String),
    /// Parameters unknown or missing.
    Params(String),
    /// This process cannot run playbooks (no runner).
    Unavailable,
}

/// A run the API started.
#[derive(Debug, PartialEq)]
pub struct Started {
    pub run_id: String,
}

/// What every run of the daemon gets: the store (audit, locks, rate limits, approvals) and the
/// base URL of its links.
#[derive(Clone)]
pub struct RunContext {
    pub store: crate::store::Store,
    pub external_url: String,
}

impl RunContext {
    /// The runner of one run: approvals go through the store (an expiring link posted to the
    /// `playbooks.notify` receivers of the rules the playbook was read against).
    fn runner_for(&self, rules: Arc<RuleSet>) -> Runner {
        let approver = StoreApprover {
            store: self.store.clone(),
            rules,
            external_url: self.external_url.clone(),
        };
        Runner {
            store: self.store.clone(),
            approver: Some(Arc::new(approver)),
            external_url: self.external_url.clone(),
        }
    }
}

pub struct Playbooks {
    /// `--playbooks` (None: `playbooks`); the rules' `playbooks.dir` wins over it.
    flag_dir: Option<PathBuf>,
    set: ArcSwap<PlaybookSet>,
    /// None: playbooks cannot run here (an API served without a daemon).
    runs: Option<RunContext>,
    /// Runs in progress, awaited (within the grace period) on shutdown.
    tasks: TaskTracker,
}

impl Playbooks {
    /// No playbooks and no way to run one.
    pub fn none() -> Playbooks {
        Playbooks {
            flag_dir: None,
            set: ArcSwap::from_pointee(PlaybookSet::default()),
            runs: None,
            tasks: TaskTracker::new(),
        }
    }

    /// Playbooks of `flag_dir` (unless the rules name another directory), run with `runs`.
    pub fn new(flag_dir: Option<PathBuf>, runs: RunContext) -> Playbooks {
        Playbooks {
            flag_dir,
            set: ArcSwap::from_pointee(PlaybookSet::default()),
            runs: Some(runs),
            tasks: TaskTracker::new(),
        }
    }

    /// The directory the playbooks of `rules` come from.
    pub fn dir_for(&self, rules: &RuleSet) -> PathBuf {
        playbooks_dir(rules, self.flag_dir.as_deref())
    }

    /// Reads the playbooks for `rules` (at start and on every reload) and checks the rules'
    /// references to them; nothing is installed, so a caller can still refuse the whole
    /// revision. Any problem refuses the set.
    pub fn prepare(&self, rules: &RuleSet) -> Result<PlaybookSet, Vec<Diagnostic>> {
        prepare_in(&self.dir_for(rules), rules, &crate::config::ProcessEnv)
    }

    /// Makes `set` the current playbooks (runs already started keep theirs).
    pub fn install(&self, set: PlaybookSet) {
        let count = set.by_name.len();
        if let Some(dir) = set.dir.as_ref().filter(|_| set.present) {
            tracing::info!("{count} playbook(s) loaded from {}", dir.display());
        }
        self.set.store(Arc::new(set));
    }

    pub fn current(&self) -> Arc<PlaybookSet> {
        self.set.load_full()
    }

    /// Whether a playbook of that name is loaded and this process can run it.
    pub fn knows(&self, name: &str) -> bool {
        self.runs.is_some() && self.set.load().get(name).is_some()
    }

    /// Base URL of the runs' links.
    pub fn external_url(&self) -> &str {
        self.runs.as_ref().map_or("", |r| r.external_url.as_str())
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Starts the runs triggers planned (with the playbooks' default parameters).
    pub fn start_planned(&self, planned: Vec<PlannedRun>) {
        for run in planned {
            let set = self.set.load();
            let Some(playbook) = set.get(&run.playbook).cloned() else {
                tracing::warn!(
                    "{} asked for playbook {}, which is no longer loaded",
                    run.started_by,
                    run.playbook
                );
                continue;
            };
            let params = match playbook.resolve_params(&[]) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(
                        "{} cannot start playbook {}: {e}",
                        run.started_by,
                        run.playbook
                    );
                    continue;
                }
            };
            tracing::info!(
                "{} starts playbook {} (run {})",
                run.started_by,
                run.playbook,
                run.run_id
            );
            self.spawn(Request {
                playbook,
                params,
                trigger: run.trigger,
                dry_run: false,
                started_by: run.started_by,
                run_id: Some(run.run_id),
            });
        }
    }

    /// Starts `name` for the API with `params`; the run goes on in its own task.
    pub fn start_by_api(
        &self,
        name: &str,
        params: &[(String, String)],
        dry_run: bool,
    ) -> Result<Started, StartError> {
        if self.runs.is_none() {
            return Err(StartError::Unavailable);
        }
        let playbook = self
            .set
            .load()
            .get(name)
            .cloned()
            .ok_or_else(|| StartError::Unknown(self.unknown_message(name)))?;
        let params = playbook
            .resolve_params(params)
            .map_err(StartError::Params)?;
        let run_id = trigger::new_run_id();
        self.spawn(Request {
            playbook,
            params,
            trigger: json!({"kind": "api"}),
            dry_run,
            started_by: "api".into(),
            run_id: Some(run_id.clone()),
        });
        Ok(Started { run_id })
    }

    fn unknown_message(&self, name: &str) -> String {
        let set = self.set.load();
        let known: Vec<&str> = set.by_name.keys().map(String::as_str).collect();
        format!(
            "no playbook named {name:?}; loaded: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    }

    fn spawn(&self, request: Request) {
        let Some(runs) = &self.runs else {
            return;
        };
        let runner = runs.runner_for(request.playbook.rules.clone());
        self.tasks.spawn(async move {
            let run = runner.execute(request).await;
            tracing::info!(
                "playbook {} run {} ended: {}{}",
                run.playbook,
                run.id,
                run.status.as_str(),
                run.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        });
    }
}

/// The playbooks of `dir` for `rules`, with the rules' references to them checked.
pub fn prepare_in(
    dir: &Path,
    rules: &RuleSet,
    env: &dyn Env,
) -> Result<PlaybookSet, Vec<Diagnostic>> {
    let scan = scan_dir(dir, rules, env);
    let mut problems = scan.problems;
    problems.extend(check_references(rules, &scan.set));
    if problems.is_empty() {
        Ok(scan.set)
    } else {
        problems.sort();
        problems.dedup();
        Err(problems)
    }
}

/// Parameters given as JSON (`{"k": "v", "n": 3}`) as the strings playbooks take.
pub fn params_from_json(
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, String> {
    params
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Ok((k.clone(), b.to_string())),
            other => Err(format!(
                "parameter `{k}` must be a string, number or boolean, found {}",
                match other {
                    serde_json::Value::Array(_) => "a list",
                    serde_json::Value::Object(_) => "an object",
                    _ => "null",
                }
            )),
        })
        .collect()
}
