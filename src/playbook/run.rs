//! Running a playbook: each step's `when` is evaluated, its fields rendered over
//! `{params, steps, trigger}`, an approval obtained when it asks for one, then it runs (or, under
//! `--dry-run`, runs only when it has no side effect and is otherwise planned). A failing step
//! stops the run, continues, or rolls back as its `on_error` says: rolling back runs the
//! `rollback:` of every step that succeeded, newest first, then the playbook's own `rollback:`.
//! The forward steps are bounded by the playbook's timeout; running out of time rolls back too.
//!
//! Guardrails around a run (the switch, locks, rate limits) and its audit live in
//! [`super::runner`]; this module only needs an [`Approver`] and an optional [`RunObserver`].

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::spec::{OnError, Playbook, Step};
use super::step::{StepAction, StepEnv};
use super::template;
use crate::store::Store;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an approval is asked for.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalRequest<'a> {
    pub run_id: &'a str,
    pub playbook: &'a str,
    /// The step waiting; `None` when the whole run waits (`approve: true` on the playbook).
    pub step: Option<&'a str>,
    /// What will happen, rendered.
    pub description: &'a str,
    /// The step's rendered fields (secrets redacted).
    pub input: &'a Value,
    /// How long to wait for a decision.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
}

/// Decides approvals: the command line's `--yes` or prompt, or the store-backed approval API.
pub trait Approver: Send + Sync {
    /// `Ok(who approved)`, or `Err(why not)`: denied, timed out, nobody to ask.
    fn approve<'a>(&'a self, request: ApprovalRequest<'a>)
    -> BoxFuture<'a, Result<String, String>>;
}

/// Approves everything in the name of `0` (`--yes`).
pub struct PreApproved(pub String);

impl Approver for PreApproved {
    fn approve<'a>(&'a self, _: ApprovalRequest<'a>) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// Hears about every step as it ends (the audit trail is written while the run goes on, so a
/// crash leaves what happened so far).
pub trait RunObserver: Send + Sync {
    fn step_finished<'a>(
        &'a self,
        run: &'a PlaybookRun,
        record: &'a StepRecord,
    ) -> BoxFuture<'a, ()>;
}

/// How a run is started.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The run's id (a UUID), known before it starts so alerts can link to it.
    pub run_id: String,
    /// Resolved parameters (see [`Playbook::resolve_params`]).
    pub params: BTreeMap<String, String>,
    /// What triggered the run (check, result, alert, score); null from the command line.
    pub trigger: Value,
    pub dry_run: bool,
    /// Who approves steps marked `approve: true`; none: such steps fail.
    pub approver: Option<Arc<dyn Approver>>,
    pub observer: Option<Arc<dyn RunObserver>>,
    /// Where `notify` steps queue what they could not deliver at once.
    pub store: Option<Store>,
    /// Base URL of patrol as people reach it (links in messages).
    pub external_url: String,
    /// The rendered lock key, when the run holds a lock.
    pub key: Option<String>,
    /// Who or what started the run (`cli:alice`, `alert:<fingerprint>`, `api`, `score_low:svc`).
    pub started_by: String,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (only seen in the store).
    Running,
    /// Every step ran (or was skipped, or failed with `on_error: continue`).
    Succeeded,
    /// A step failed with `on_error: stop`.
    Failed,
    /// A step failed (or time ran out) and the rollbacks ran.
    RolledBack,
    /// Not run: playbooks disabled, the lock held by another run, or the rate limit reached.
    Refused,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::RolledBack => "rolled_back",
            RunStatus::Refused => "refused",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::RolledBack,
            RunStatus::Refused,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// How one step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Failed,
    /// Its `when` was false.
    Skipped,
    /// `--dry-run`: it has side effects, so it was only rendered.
    Planned,
}

/// A body kept with a step's record (a heap profile, a goroutine dump, a slow-query list).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    /// Size of the body as fetched, in bytes.
    pub bytes: usize,
    /// `text` (UTF-8 as is) or `base64`.
    pub encoding: String,
    pub body: String,
}

/// One step of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub kind: String,
    /// `steps` or `rollback`.
    pub phase: String,
    pub status: StepStatus,
    /// What the step does (rendered).
    pub description: String,
    /// The rendered fields (secrets redacted).
    pub input: Value,
    pub output: Value,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// Who approved it, when it asked.
    pub approver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// The record of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlaybookRun {
    pub id: String,
    pub playbook: String,
    pub dry_run: bool,
    pub status: RunStatus,
    /// Parameters (secrets redacted).
    pub params: BTreeMap<String, String>,
    /// What triggered the run (secrets redacted).
    pub trigger: Value,
    pub started_by: String,
    /// The lock / rate-limit key.
    pub key: Option<String>,
    /// Who approved the run (`approve: true` on the playbook).
    pub approver: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepRecord>,
    /// Why the run ended early or was refused.
    pub error: Option<String>,
}

impl PlaybookRun {
    /// A run record before any step ran.
    pub fn start(playbook: &Playbook, options: &RunOptions) -> PlaybookRun {
        PlaybookRun {
            id: options.run_id.clone(),
            playbook: playbook.name.clone(),
            dry_run: options.dry_run,
            status: RunStatus::Running,
            params: options
                .params
                .iter()
                .map(|(k, v)| (k.clone(), crate::secrets::redact(v).into_owned()))
                .collect(),
            trigger: redact_value(&options.trigger),
            started_by: options.started_by.clone(),
            key: options.key.clone(),
            approver: None,
            started_at: Utc::now(),
            ended_at: None,
            steps: Vec::new(),
            error: None,
        }
    }

    /// Ends the record.
    pub fn finish(&mut self, status: RunStatus, error: Option<String>) {
        self.status = status;
        self.error = error.map(crate::secrets::redact_owned);
        self.ended_at = Some(Utc::now());
    }
}

/// Runs `playbook` (no guardrails: see [`super::runner`] for those).
pub async fn run_playbook(playbook: &Playbook, options: &RunOptions) -> PlaybookRun {
    let mut run = PlaybookRun::start(playbook, options);
    let (status, error) = run_in(playbook, options, &mut run).await;
    run.finish(status, error);
    run
}

/// Runs `playbook` into `run` (already started); the status and error it ended with.
pub async fn run_in(
    playbook: &Playbook,
    options: &RunOptions,
    run: &mut PlaybookRun,
) -> (RunStatus, Option<String>) {
    let attachments = Mutex::new(Vec::new());
    let base_dir = playbook.file.parent().unwrap_or(Path::new("."));
    let env = StepEnv {
        rules: &playbook.rules,
        base_dir,
        exec_allow: &playbook.exec_allow,
        dry_run: options.dry_run,
        store: options.store.as_ref(),
        external_url: &options.external_url,
        run_id: &options.run_id,
        attachments: &attachments,
    };
    let mut runner = StepRunner {
        playbook,
        options,
        env,
        templates: template::environment(),
        ctx: json!({ "params": options.params, "steps": {}, "trigger": options.trigger }),
        run,
    };
    if let Err(e) = runner.approve_run().await {
        return (RunStatus::Failed, Some(e));
    }
    let forward = tokio::time::timeout(playbook.timeout, runner.forward()).await;
    let failure = match forward {
        Ok(Forward::Done) => return (RunStatus::Succeeded, None),
        Ok(Forward::Stopped(why)) => return (RunStatus::Failed, Some(why)),
        Ok(Forward::RollBack(why)) => why,
        Err(_) => format!(
            "the playbook timed out after {}",
            crate::config::duration::format(playbook.timeout)
        ),
    };
    // The rollbacks get their own time: undoing must not be cut short by the steps' overrun.
    if tokio::time::timeout(playbook.timeout, runner.roll_back())
        .await
        .is_err()
    {
        return (
            RunStatus::RolledBack,
            Some(format!("{failure}; the rollback timed out too")),
        );
    }
    (RunStatus::RolledBack, Some(failure))
}

/// How the forward steps ended.
enum Forward {
    Done,
    Stopped(String),
    RollBack(String),
}

struct StepRunner<'a> {
    playbook: &'a Playbook,
    options: &'a RunOptions,
    env: StepEnv<'a>,
    templates: minijinja::Environment<'static>,
    ctx: Value,
    run: &'a mut PlaybookRun,
}

impl StepRunner<'_> {
    /// `approve: true` on the playbook: one approval before the first step.
    async fn approve_run(&mut self) -> Result<(), String> {
        if !self.playbook.approve || self.options.dry_run {
            return Ok(());
        }
        let description = format!(
            "run playbook {} ({} step(s))",
            self.playbook.name,
            self.playbook.steps.len()
        );
        let input = json!({ "params": self.run.params });
        let who = self.ask(None, &description, &input).await?;
        self.run.approver = Some(who);
        Ok(())
    }

    async fn ask(
        &self,
        step: Option<&str>,
        description: &str,
        input: &Value,
    ) -> Result<String, String> {
        let Some(approver) = &self.options.approver else {
            return Err(format!(
                "{} needs an approval and nobody can give it here (use --yes, a terminal, or the daemon's approval API)",
                step.map_or("the run".to_string(), |s| format!("step `{s}`"))
            ));
        };
        approver
            .approve(ApprovalRequest {
                run_id: &self.options.run_id,
                playbook: &self.playbook.name,
                step,
                description,
                input,
                timeout: self.playbook.approval_timeout,
            })
            .await
    }

    async fn forward(&mut self) -> Forward {
        for step in &self.playbook.steps {
            let record = self.run_step(step, "steps").await;
            if record.status != StepStatus::Failed {
                continue;
            }
            let why = format!(
                "step `{}` failed: {}",
                step.name,
                record.error.clone().unwrap_or_default()
            );
            match step.on_error {
                OnError::Continue => continue,
                OnError::Stop => return Forward::Stopped(why),
                OnError::Rollback => return Forward::RollBack(why),
            }
        }
        Forward::Done
    }

    /// The rollbacks of the forward steps that succeeded (or were planned), newest first, then
    /// the playbook's `rollback:`. Every rollback step is tried even when one fails: undo as
    /// much as possible.
    async fn roll_back(&mut self) {
        let playbook = self.playbook;
        let done: Vec<&Step> = self
            .run
            .steps
            .iter()
            .filter(|r| {
                r.phase == "steps" && matches!(r.status, StepStatus::Ok | StepStatus::Planned)
            })
            .filter_map(|r| playbook.steps.iter().find(|s| s.name == r.name))
            .collect();
        for step in done.into_iter().rev() {
            for undo in &step.rollback {
                self.run_step(undo, "rollback").await;
            }
        }
        for undo in &playbook.rollback {
            self.run_step(undo, "rollback").await;
        }
    }

    /// Runs one step, records it (and tells the observer), makes its output visible to later
    /// templates; the record as stored.
    async fn run_step(&mut self, step: &Step, phase: &str) -> StepRecord {
        let started = Instant::now();
        let mut record = StepRecord {
            name: step.name.clone(),
            kind: step.kind.to_string(),
            phase: phase.to_string(),
            status: StepStatus::Ok,
            description: crate::secrets::redact_owned(step.action.describe()),
            input: Value::Null,
            output: Value::Null,
            error: None,
            started_at: Utc::now(),
            duration_ms: 0.0,
            approver: None,
            attachments: Vec::new(),
        };
        match self.execute(step, &mut record).await {
            Ok(Some(output)) => record.output = redact_value(&output),
            Ok(None) => {}
            Err(e) => {
                record.status = StepStatus::Failed;
                record.error = Some(crate::secrets::redact(&e).into_owned());
            }
        }
        record.attachments = std::mem::take(
            &mut *self
                .env
                .attachments
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.remember(&record);
        self.run.steps.push(record.clone());
        if let Some(observer) = &self.options.observer {
            observer.step_finished(self.run, &record).await;
        }
        record
    }

    /// Makes a step's output visible to later templates as `steps.<name>`.
    fn remember(&mut self, record: &StepRecord) {
        let value = match record.status {
            StepStatus::Ok => record.output.clone(),
            StepStatus::Failed => json!({ "error": record.error }),
            StepStatus::Skipped | StepStatus::Planned => return,
        };
        if let Some(steps) = self.ctx.get_mut("steps").and_then(Value::as_object_mut) {
            steps.insert(record.name.clone(), value);
        }
    }

    /// Renders, approves and runs one step; `Ok(None)` when it was skipped or only planned.
    async fn execute(&self, step: &Step, record: &mut StepRecord) -> Result<Option<Value>, String> {
        if let Some(when) = &step.when
            && !template::evaluate(&self.templates, when, &self.ctx)?
        {
            record.status = StepStatus::Skipped;
            return Ok(None);
        }
        let rendered = template::render_value(&self.templates, &step.fields, &self.ctx)?;
        record.input = redact_value(&rendered);
        let action = StepAction::from_json(step.kind, &rendered)?;
        let mut issues = crate::config::Issues::default();
        action.validate(self.env.rules, self.env.exec_allow, &mut issues);
        if let Some((path, message)) = issues.items.first() {
            let field = crate::config::path_text(path);
            return Err(format!("after rendering, `{field}`: {message}"));
        }
        record.description = crate::secrets::redact_owned(action.describe());
        if self.env.dry_run && !action.dry_run_safe() {
            record.status = StepStatus::Planned;
            return Ok(None);
        }
        if step.approve && !self.env.dry_run {
            record.approver = Some(
                self.ask(Some(&step.name), &record.description, &record.input)
                    .await?,
            );
        }
        action.run(&self.env).await.map(Some)
    }
}

/// `value` with known secrets masked in every string (it goes to the output and the report).
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(crate::secrets::redact(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}
