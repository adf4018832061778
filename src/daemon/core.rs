//! The daemon's engine room: runs a check, a suite or an API request as one run (measure within
//! the shared limits, judge against the in-memory baselines, queue for the writer, update metrics
//! and check states), and implements the scheduler's [`JobRunner`] and the API's [`Control`].

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use super::state::{Control, DaemonState, ReloadOutcome, RunRequest};
use super::writer::{Finished, Writer};
use crate::baseline::EwmaState;
use crate::config::{Check, RuleSet};
use crate::engine::known::peer_history;
use crate::engine::{Known, Limits, execute_check_remembering, memory_of, remembered};
use crate::result::{CheckResult, RunRecord, StatusCounts};
use crate::schedule::{JobKey, JobRunner, SchedulerHandle};
use crate::score::CheckState;
use crate::store::{BaselineKey, NewEvent, ProbeMemory};

pub struct Daemon {
    pub state: Arc<DaemonState>,
    /// Where the rules are (re)loaded from: a directory or a Consul KV prefix.
    pub rules_source: crate::config::source::RulesSource,
    pub timezone: Tz,
    pub limits: Arc<Limits>,
    pub writer: Writer,
    /// Learned baselines of every series, loaded at start and kept current: a check never waits
    /// for the store to read its baseline.
    pub baselines: Mutex<HashMap<BaselineKey, EwmaState>>,
    /// Fitted models of `seasonal`/`ets` checks, refitted in the background.
    pub models: super::models::Models,
    /// Probe memories of the checks that keep one (by check), loaded at start and kept current
    /// like the baselines.
    pub memories: Mutex<HashMap<String, ProbeMemory>>,
    /// Latest state of every check (status, failing since, value) for the health scores.
    pub check_states: Mutex<HashMap<String, CheckState>>,
    pub scheduler: std::sync::OnceLock<SchedulerHandle>,
    /// One reload at a time.
    pub reload_lock: Mutex<()>,
    /// Consecutive low scores per service.
    pub low_scores: Mutex<crate::score::LowScoreWatch>,
    /// The score last published as a `score` event, per service: a slow drift is published
    /// once it adds up, not lost in steps each too small to report.
    pub published_scores: Mutex<HashMap<String, f64>>,
    /// Runs started through the API, awaited on shutdown like scheduled ones.
    pub api_runs: tokio_util::task::TaskTracker,
    /// Alert states, routing and the outbox.
    pub alerting: super::alerts::Alerting,
    /// Cancelled when the daemon shuts down (the outbox sender stops with it).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Where suite runs leave their reports (`--report-dir`; none: no files).
    pub report_dir: Option<std::path::PathBuf>,
}

/// What started a run.
#[derive(Clone, Debug)]
pub enum Trigger {
    Schedule,
    Suite(String),
    Api,
}

impl Trigger {
    fn label(&self) -> String {
        match self {
            Trigger::Schedule => "schedule".into(),
            Trigger::Suite(s) => format!("suite:{s}"),
            Trigger::Api => "api".into(),
        }
    }
}

impl Daemon {
    /// Runs `checks` as one run `run_id` and queues it for the store; returns the results.
    pub async fn run_set(
        self: &Arc<Self>,
        run_id: String,
        checks: Vec<Arc<Check>>,
        trigger: Trigger,
        job_start: Option<(String, DateTime<Utc>, DateTime<Utc>)>,
    ) -> Vec<CheckResult> {
        let rules = self.state.rules.load_full();
        let started_at = Utc::now();
        let maintenance = Arc::new(rules.maintenance.clone());
        let mut tasks = JoinSet::new();
        for (index, check) in checks.into_iter().enumerate() {
            let (me, run_id, revision) = (self.clone(), run_id.clone(), rules.revision.to_string());
            let maintenance = maintenance.clone();
            tasks.spawn(async move {
                let _permits = me.limits.acquire(&check).await;
                let known = me.known_of(&check, maintenance).await;
                let memory = me.previous_memory(&check).await;
                let judged =
                    execute_check_remembering(&check, &known, memory, &run_id, &revision).await;
                (index, check, judged)
            });
        }
        let mut finished = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(done) => finished.push(done),
                Err(e) => tracing::error!("a check task failed: {e}"),
            }
        }
        finished.sort_by_key(|(i, _, _)| *i);
        let mut results = Vec::new();
        let mut updates = Vec::new();
        let mut by_check = Vec::new();
        let mut memories = Vec::new();
        for (_, check, judged) in finished {
            memories.extend(
                judged
                    .memory
                    .map(|state| memory_of(&check, state, Utc::now())),
            );
            for (series, state) in judged.baselines {
                updates.push((
                    BaselineKey {
                        check: check.name().to_string(),
                        series,
                    },
                    state,
                ));
            }
            // Per check, so series a check stopped reporting leave /metrics.
            self.state
                .metrics
                .observe_check(check.name(), &judged.results);
            results.extend(judged.results.iter().cloned());
            by_check.push((check, judged.results));
        }
        let scores: HashMap<String, f64> = self
            .state
            .scores
            .read()
            .await
            .iter()
            .map(|s| (s.service.clone(), s.score))
            .collect();
        // `on_failure` playbooks of alerts that start firing: linked from the alert, then run
        // in their own tasks.
        let playbooks = &self.state.playbooks;
        let planned = self
            .alerting
            .observe_run_triggering(
                &self.state.store,
                &rules,
                &by_check,
                &scores,
                Utc::now(),
                &|name| playbooks.knows(name),
            )
            .await;
        playbooks.start_planned(planned);
        self.learn(&updates).await;
        self.remember(&memories).await;
        self.fold_states(&results).await;
        let run = RunRecord {
            id: run_id,
            started_at,
            finished_at: Utc::now(),
            revision: rules.revision.to_string(),
            trigger: trigger.label(),
            counts: StatusCounts::tally(&results),
        };
        let events = results.iter().map(result_event).collect();
        self.writer
            .submit(Finished {
                run,
                results: results.clone(),
                baselines: updates,
                memories,
                events,
                job_start,
            })
            .await;
        results
    }

    /// What judging `check` draws on: its EWMA states and fitted models from memory, and for a
    /// `peer` check its series' recent values from the store (a failed read only loses the
    /// comparison for this run: EWMA judges).
    async fn known_of(
        &self,
        check: &Arc<Check>,
        maintenance: Arc<Vec<crate::alert::maintenance::MaintenanceWindow>>,
    ) -> Known {
        let peers = peer_history(&self.state.store, check, Utc::now())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read the peer history of {}: {e}", check.name());
                HashMap::new()
            });
        Known {
            baselines: self.series_baselines(check.name()).await,
            models: self.models.of(check.name()).await,
            peers,
            maintenance,
        }
    }

    async fn series_baselines(&self, check: &str) -> HashMap<String, EwmaState> {
        let map = self.baselines.lock().await;
        map.iter()
            .filter(|(k, _)| k.check == check)
            .map(|(k, v)| (k.series.clone(), v.clone()))
            .collect()
    }

    async fn learn(&self, updates: &[(BaselineKey, EwmaState)]) {
        let mut map = self.baselines.lock().await;
        for (k, v) in updates {
            map.insert(k.clone(), v.clone());
        }
    }

    /// The memory `check`'s probe left last time, if it keeps one and still measures alike.
    async fn previous_memory(&self, check: &Check) -> Option<serde_json::Value> {
        if !check.probe.remembers() {
            return None;
        }
        remembered(&*self.memories.lock().await, check).cloned()
    }

    async fn remember(&self, memories: &[ProbeMemory]) {
        let mut map = self.memories.lock().await;
        for m in memories {
            map.insert(m.check.clone(), m.clone());
        }
    }

    async fn fold_states(&self, results: &[CheckResult]) {
        let mut states = self.check_states.lock().await;
        let folded = crate::score::check_states_from(results, &states);
        states.extend(folded);
    }

    /// The checks a suite selects in the current rules.
    fn suite_checks(&self, rules: &RuleSet, suite: &str) -> Option<Vec<Arc<Check>>> {
        let s = rules.suites.get(suite)?;
        Some(
            rules
                .checks
                .iter()
                .filter(|c| s.select.matches(c))
                .cloned()
                .collect(),
        )
    }

    async fn run_job(self: Arc<Self>, key: JobKey, planned: DateTime<Utc>) {
        let started = Utc::now();
        let lateness = (started - planned).num_microseconds().unwrap_or(0) as f64 / 1e6;
        self.state.metrics.observe_lateness(lateness.max(0.0));
        let rules = self.state.rules.load_full();
        match key {
            JobKey::Check(name) => {
                let Some(check) = rules.check(&name).cloned() else {
                    return;
                };
                let job_start = check
                    .common
                    .schedule
                    .as_ref()
                    .map(|_| (key_text(&JobKey::Check(name.clone())), planned, started));
                self.run_set(new_run_id(), vec![check], Trigger::Schedule, job_start)
                    .await;
            }
            JobKey::Suite(name) => {
                let Some(checks) = self.suite_checks(&rules, &name) else {
                    return;
                };
                let job_start = Some((key_text(&JobKey::Suite(name.clone())), planned, started));
                let run_id = new_run_id();
                self.run_set(
                    run_id.clone(),
                    checks,
                    Trigger::Suite(name.clone()),
                    job_start,
                )
                .await;
                // A suite is a natural moment for a score: the nightly report shows it.
                super::scores::evaluate_now(&self).await;
                super::reports::suite_run_ended(&self, &name, &run_id).await;
            }
        }
    }
}

pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub fn key_text(key: &JobKey) -> String {
    key.to_string()
}

fn result_event(r: &CheckResult) -> NewEvent {
    NewEvent {
        kind: "result".into(),
        at: r.started_at,
        data: serde_json::to_value(r).unwrap_or_default(),
    }
}

/// The scheduler's handle on the daemon (weak: the daemon owns the scheduler).
pub struct DaemonRunner(pub Weak<Daemon>);

impl JobRunner for DaemonRunner {
    fn run(&self, key: JobKey, planned: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let daemon = self.0.upgrade();
        Box::pin(async move {
            if let Some(d) = daemon {
                d.run_job(key, planned).await;
            }
        })
    }
}

/// The API's handle on the daemon (weak: the state it lives in belongs to the daemon).
pub struct DaemonControl(pub Weak<Daemon>);

impl Control for DaemonControl {
    fn start_run(&self, request: RunRequest) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let daemon = self.0.upgrade().ok_or("the daemon is shutting down")?;
            let rules = daemon.state.rules.load_full();
            let (checks, trigger) = match (&request.suite, request.checks.is_empty()) {
                (Some(_), false) => return Err("give either `checks` or `suite`, not both".into()),
                (Some(suite), true) => (
                    daemon
                        .suite_checks(&rules, suite)
                        .ok_or(format!("unknown suite {suite:?}"))?,
                    Trigger::Suite(suite.clone()),
                ),
                (None, false) => {
                    let unknown: Vec<&String> = request
                        .checks
                        .iter()
                        .filter(|n| rules.check(n).is_none())
                        .collect();
                    if !unknown.is_empty() {
                        return Err(format!(
                            "unknown check(s): {}",
                            unknown
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    (
                        rules
                            .checks
                            .iter()
                            .filter(|c| request.checks.iter().any(|n| n == c.name()))
                            .cloned()
                            .collect(),
                        Trigger::Api,
                    )
                }
                (None, true) => return Err("give `checks` (a list of names) or `suite`".into()),
            };
            // The id is returned at once; the run goes on and its results can be fetched by id.
            let run_id = new_run_id();
            let id = run_id.clone();
            let tracker = daemon.api_runs.clone();
            tracker.spawn(async move {
                let suite = match &trigger {
                    Trigger::Suite(name) => Some(name.clone()),
                    _ => None,
                };
                daemon.run_set(id.clone(), checks, trigger, None).await;
                if let Some(suite) = suite {
                    super::scores::evaluate_now(&daemon).await;
                    super::reports::suite_run_ended(&daemon, &suite, &id).await;
                }
            });
            Ok(run_id)
        })
    }

    fn reload(&self) -> BoxFuture<'_, ReloadOutcome> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(d) => super::reload::reload(&d).await,
                None => ReloadOutcome {
                    applied: false,
                    revision: String::new(),
                    problems: Vec::new(),
                },
            }
        })
    }
}
