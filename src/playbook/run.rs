//! Running a playbook: each step's `when` is evaluated, its fields rendered over
//! `{params, steps, trigger}`, then it runs (or, under `--dry-run`, runs only when it has no side
//! effect and is otherwise planned). A failing step stops the run, continues, or runs the
//! `rollback:` steps, as its `on_error` says. The whole run is bounded by the playbook's timeout.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::spec::{OnError, Playbook, Step};
use super::step::{StepAction, StepEnv};
use super::template;

/// How a run is started.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Resolved parameters (see [`Playbook::resolve_params`]).
    pub params: BTreeMap<String, String>,
    /// What triggered the run (check, result, alert, score); null from the command line.
    pub trigger: Value,
    pub dry_run: bool,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step ran (or was skipped, or failed with `on_error: continue`).
    Succeeded,
    /// A step failed with `on_error: stop`, or the run timed out.
    Failed,
    /// A step failed and the rollback steps ran.
    RolledBack,
}

/// How one step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Failed,
    /// Its `when` was false.
    Skipped,
    /// `--dry-run`: it has side effects, so it was only rendered.
    Planned,
}

/// One step of a run.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub name: String,
    pub kind: &'static str,
    /// `steps` or `rollback`.
    pub phase: &'static str,
    pub status: StepStatus,
    /// What the step does (rendered).
    pub description: String,
    /// The rendered fields.
    pub input: Value,
    pub output: Value,
    pub error: Option<String>,
    pub duration_ms: f64,
}

/// The record of a run.
#[derive(Clone, Debug, Serialize)]
pub struct PlaybookRun {
    pub playbook: String,
    pub dry_run: bool,
    pub status: RunStatus,
    pub steps: Vec<StepRecord>,
    /// Why the run ended early (a failed step, the timeout).
    pub error: Option<String>,
}

/// Runs `playbook`.
pub async fn run_playbook(playbook: &Playbook, options: &RunOptions) -> PlaybookRun {
    let mut records = Vec::new();
    let ended =
        tokio::time::timeout(playbook.timeout, run_steps(playbook, options, &mut records)).await;
    let (status, error) = ended.unwrap_or_else(|_| {
        (
            RunStatus::Failed,
            Some(format!(
                "the playbook timed out after {}",
                crate::config::duration::format(playbook.timeout)
            )),
        )
    });
    PlaybookRun {
        playbook: playbook.name.clone(),
        dry_run: options.dry_run,
        status,
        steps: records,
        error,
    }
}

async fn run_steps(
    playbook: &Playbook,
    options: &RunOptions,
    records: &mut Vec<StepRecord>,
) -> (RunStatus, Option<String>) {
    let base_dir = playbook.file.parent().unwrap_or(Path::new("."));
    let env = StepEnv {
        rules: &playbook.rules,
        base_dir,
        exec_allow: &playbook.exec_allow,
        dry_run: options.dry_run,
    };
    let templates = template::environment();
    let mut ctx = json!({ "params": options.params, "steps": {}, "trigger": options.trigger });
    for step in &playbook.steps {
        let record = run_step(step, "steps", &env, &templates, &ctx).await;
        let failed = record.status == StepStatus::Failed;
        remember(&mut ctx, &record);
        let error = record.error.clone();
        records.push(record);
        if !failed {
            continue;
        }
        let why = format!("step `{}` failed: {}", step.name, error.unwrap_or_default());
        match step.on_error {
            OnError::Continue => continue,
            OnError::Stop => return (RunStatus::Failed, Some(why)),
            OnError::Rollback => {
                // Every rollback step is tried even when one fails: undo as much as possible.
                for rb in &playbook.rollback {
                    let record = run_step(rb, "rollback", &env, &templates, &ctx).await;
                    remember(&mut ctx, &record);
                    records.push(record);
                }
                return (RunStatus::RolledBack, Some(why));
            }
        }
    }
    (RunStatus::Succeeded, None)
}

/// Makes a step's output visible to later templates as `steps.<name>`.
fn remember(ctx: &mut Value, record: &StepRecord) {
    let value = match record.status {
        StepStatus::Ok => record.output.clone(),
        StepStatus::Failed => json!({ "error": record.error }),
        StepStatus::Skipped | StepStatus::Planned => return,
    };
    if let Some(steps) = ctx.get_mut("steps").and_then(Value::as_object_mut) {
        steps.insert(record.name.clone(), value);
    }
}

async fn run_step(
    step: &Step,
    phase: &'static str,
    env: &StepEnv<'_>,
    templates: &minijinja::Environment<'_>,
    ctx: &Value,
) -> StepRecord {
    let started = Instant::now();
    let mut record = StepRecord {
        name: step.name.clone(),
        kind: step.kind,
        phase,
        status: StepStatus::Ok,
        description: step.action.describe(),
        input: Value::Null,
        output: Value::Null,
        error: None,
        duration_ms: 0.0,
    };
    let outcome = execute(step, env, templates, ctx, &mut record).await;
    match outcome {
        Ok(Some(output)) => record.output = output,
        Ok(None) => {}
        Err(e) => {
            record.status = StepStatus::Failed;
            record.error = Some(crate::secrets::redact(&e).into_owned());
        }
    }
    record.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    record
}

/// Renders and runs one step; `Ok(None)` when it was skipped or only planned.
async fn execute(
    step: &Step,
    env: &StepEnv<'_>,
    templates: &minijinja::Environment<'_>,
    ctx: &Value,
    record: &mut StepRecord,
) -> Result<Option<Value>, String> {
    if let Some(when) = &step.when
        && !template::evaluate(templates, when, ctx)?
    {
        record.status = StepStatus::Skipped;
        return Ok(None);
    }
    let rendered = template::render_value(templates, &step.fields, ctx)?;
    record.input = redact_value(&rendered);
    let action = StepAction::from_json(step.kind, &rendered)?;
    let mut issues = crate::config::Issues::default();
    action.validate(env.rules, env.exec_allow, &mut issues);
    if let Some((path, message)) = issues.items.first() {
        let field = crate::config::path_text(path);
        return Err(format!("after rendering, `{field}`: {message}"));
    }
    record.description = action.describe();
    if env.dry_run && !action.dry_run_safe() {
        record.status = StepStatus::Planned;
        return Ok(None);
    }
    action.run(env).await.map(Some)
}

/// `value` with known secrets masked in every string (it goes to the output and the report).
fn redact_value(value: &Value) -> Value {
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
