//! The audit trail of playbook runs in the store: `playbook_runs` (one row per run) and
//! `playbook_steps` (one row per step, keyed by the run and the step's position in it).
//!
//! A run row is written when the run starts, again when it ends (or once when a guardrail
//! refuses it); each step row as the step ends, so a crash leaves what happened so far. Both are
//! upserts: writing the same run or step again replaces it.
//!
//! **Nothing secret is stored.** The runner already masks registered secrets in what it records;
//! every text and JSON string is masked again here (cheap, and the rows outlive the process that
//! knew which values were secret: `patrol playbook history` in another process could not mask
//! them afterwards). Attachment bodies are masked when they are text; base64 bodies are kept.
//!
//! Every write is one single-row statement, so the writers' advisory lock is not taken (see
//! `drills.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::outbox::BindTime;
use super::{Pool, Store, StoreError, failed, sql_limit};
use crate::playbook::{Attachment, PlaybookRun, RunStatus, StepRecord, StepStatus};
use crate::secrets;

const RUN_COLUMNS: &str = "id, playbook, status, dry_run, key, started_by, approver, params, \
     trigger, error, started_at, ended_at, host";

const STEP_COLUMNS: &str = "run_id, seq, name, kind, phase, status, description, input, output, \
     error, approver, started_at, duration_ms, attachments";

/// Runs listed when a filter names no limit.
pub const DEFAULT_RUN_LIMIT: usize = 100;

/// Which runs [`Store::playbook_runs`] lists (newest first).
#[derive(Clone, Debug)]
pub struct RunFilter {
    /// Only runs of this playbook.
    pub playbook: Option<String>,
    pub status: Option<RunStatus>,
    /// Only runs started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many runs.
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            playbook: None,
            status: None,
            since: None,
            limit: DEFAULT_RUN_LIMIT,
        }
    }
}

/// A row of `playbook_runs`.
#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    playbook: String,
    status: String,
    dry_run: bool,
    key: Option<String>,
    started_by: String,
    approver: Option<String>,
    params: Json<BTreeMap<String, String>>,
    trigger: Json<Value>,
    error: Option<String>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    #[allow(dead_code)] // stored for people reading the table; a run record has no host
    host: String,
}

impl RunRow {
    fn into_run(self) -> Result<PlaybookRun, StoreError> {
        Ok(PlaybookRun {
            status: RunStatus::parse(&self.status).ok_or_else(|| {
                StoreError(format!(
                    "playbook run {} has an unknown status '{}'",
                    self.id, self.status
                ))
            })?,
            id: self.id,
            playbook: self.playbook,
            dry_run: self.dry_run,
            params: self.params.0,
            trigger: self.trigger.0,
            started_by: self.started_by,
            key: self.key,
            approver: self.approver,
            started_at: self.started_at,
            ended_at: self.ended_at,
            steps: Vec::new(),
            error: self.error,
        })
    }
}

/// A row of `playbook_steps`.
#[derive(sqlx::FromRow)]
struct StepRow {
    run_id: String,
    seq: i64,
    name: String,
    kind: String,
    phase: String,
    status: String,
    description: String,
    input: Json<Value>,
    output: Json<Value>,
    error: Option<String>,
    approver: Option<String>,
    started_at: DateTime<Utc>,
    duration_ms: f64,
    attachments: Json<Vec<Attachment>>,
}

impl StepRow {
    fn into_record(self) -> Result<StepRecord, StoreError> {
        Ok(StepRecord {
            status: parse_step_status(&self.status).ok_or_else(|| {
                StoreError(format!(
                    "step {} of playbook run {} has an unknown status '{}'",
                    self.seq, self.run_id, self.status
                ))
            })?,
            name: self.name,
            kind: self.kind,
            phase: self.phase,
            description: self.description,
            input: self.input.0,
            output: self.output.0,
            error: self.error,
            started_at: self.started_at,
            duration_ms: self.duration_ms,
            approver: self.approver,
            attachments: self.attachments.0,
        })
    }
}

fn step_status_text(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Ok => "ok",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
        StepStatus::Planned => "planned",
    }
}

fn parse_step_status(text: &str) -> Option<StepStatus> {
    [
        StepStatus::Ok,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Planned,
    ]
    .into_iter()
    .find(|s| step_status_text(*s) == text)
}

impl Store {
    /// Writes the run's own row (not its steps: see [`Store::save_playbook_step`]); writing the
    /// same id again replaces it.
    pub async fn save_playbook_run(&self, run: &PlaybookRun) -> Result<(), StoreError> {
        let params: BTreeMap<String, String> = run
            .params
            .iter()
            .map(|(k, v)| (clean_text(k), clean_text(v)))
            .collect();
        let trigger = clean_json(&run.trigger);
        let opt = |s: &Option<String>| s.as_deref().map(clean_text);
        let (key, approver, error) = (opt(&run.key), opt(&run.approver), opt(&run.error));
        let started_by = clean_text(&run.started_by);
        let host = hostname();
        on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("INSERT INTO playbook_runs ({RUN_COLUMNS}) "));
            q.push_values([run], |mut b, r| {
                b.push_bind(r.id.as_str())
                    .push_bind(r.playbook.as_str())
                    .push_bind(r.status.as_str())
                    .push_bind(r.dry_run)
                    .push_bind(key.as_deref())
                    .push_bind(started_by.as_str())
                    .push_bind(approver.as_deref())
                    .push_bind(Json(&params))
                    .push_bind(Json(&trigger))
                    .push_bind(error.as_deref())
                    .push_bind(<Db as BindTime>::time(r.started_at))
                    .push_bind(r.ended_at.map(<Db as BindTime>::time))
                    .push_bind(host.as_str());
            });
            q.push(
                " ON CONFLICT (id) DO UPDATE SET playbook = excluded.playbook, \
                 status = excluded.status, dry_run = excluded.dry_run, key = excluded.key, \
                 started_by = excluded.started_by, approver = excluded.approver, \
                 params = excluded.params, trigger = excluded.trigger, error = excluded.error, \
                 started_at = excluded.started_at, ended_at = excluded.ended_at, \
                 host = excluded.host",
            );
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!("saving playbook run {}", run.id)))?;
        Ok(())
    }

    /// Writes step `seq` (its position in the run's steps) of run `run_id`, whose row must exist;
    /// writing the same step again replaces it.
    pub async fn save_playbook_step(
        &self,
        run_id: &str,
        seq: usize,
        step: &StepRecord,
    ) -> Result<(), StoreError> {
        let seq_value = i64::try_from(seq).unwrap_or(i64::MAX);
        let texts = [&step.name, &step.kind, &step.phase, &step.description].map(|s| clean_text(s));
        let [name, kind, phase, description] = &texts;
        let (input, output) = (clean_json(&step.input), clean_json(&step.output));
        let error = step.error.as_deref().map(clean_text);
        let approver = step.approver.as_deref().map(clean_text);
        let attachments: Vec<Attachment> = step.attachments.iter().map(clean_attachment).collect();
        on_pool!(self, |pool, Db| {
            let mut q =
                QueryBuilder::<Db>::new(format!("INSERT INTO playbook_steps ({STEP_COLUMNS}) "));
            q.push_values([step], |mut b, s| {
                b.push_bind(run_id)
                    .push_bind(seq_value)
                    .push_bind(name.as_str())
                    .push_bind(kind.as_str())
                    .push_bind(phase.as_str())
                    .push_bind(step_status_text(s.status))
                    .push_bind(description.as_str())
                    .push_bind(Json(&input))
                    .push_bind(Json(&output))
                    .push_bind(error.as_deref())
                    .push_bind(approver.as_deref())
                    .push_bind(<Db as BindTime>::time(s.started_at))
                    .push_bind(finite(s.duration_ms))
                    .push_bind(Json(&attachments));
            });
            q.push(
                " ON CONFLICT (run_id, seq) DO UPDATE SET name = excluded.name, \
                 kind = excluded.kind, phase = excluded.phase, status = excluded.status, \
                 description = excluded.description, input = excluded.input, \
                 output = excluded.output, error = excluded.error, approver = excluded.approver, \
                 started_at = excluded.started_at, duration_ms = excluded.duration_ms, \
                 attachments = excluded.attachments",
            );
            q.build().execute(pool).await.map(|r| r.rows_affected())
        })
        .map_err(failed(&format!(
            "saving step {seq} of playbook run {run_id}"
        )))?;
        Ok(())
    }

    /// The runs `filter` selects, newest first, WITHOUT their steps (`steps` is empty: a list
    /// stays small; [`Store::playbook_run`] has them).
    pub async fn playbook_runs(&self, filter: &RunFilter) -> Result<Vec<PlaybookRun>, StoreError> {
        let rows: Vec<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!("SELECT {RUN_COLUMNS} FROM playbook_runs"));
            let mut glue = " WHERE ";
            if let Some(playbook) = &filter.playbook {
                q.push(glue)
                    .push("playbook = ")
                    .push_bind(playbook.as_str());
                glue = " AND ";
            }
            if let Some(status) = filter.status {
                q.push(glue).push("status = ").push_bind(status.as_str());
                glue = " AND ";
            }
            if let Some(since) = filter.since {
                q.push(glue)
                    .push("started_at >= ")
                    .push_bind(<Db as BindTime>::time(since));
            }
            q.push(" ORDER BY started_at DESC, id DESC LIMIT ")
                .push_bind(sql_limit(filter.limit));
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed("reading playbook runs"))?;
        rows.into_iter().map(RunRow::into_run).collect()
    }

    /// The run with this id and its steps in order, if stored.
    pub async fn playbook_run(&self, id: &str) -> Result<Option<PlaybookRun>, StoreError> {
        let row: Option<RunRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {RUN_COLUMNS} FROM playbook_runs WHERE id = "
            ));
            q.push_bind(id);
            q.build_query_as().fetch_optional(pool).await
        })
        .map_err(failed(&format!("reading playbook run {id}")))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut run = row.into_run()?;
        let steps: Vec<StepRow> = on_pool!(self, |pool, Db| {
            let mut q = QueryBuilder::<Db>::new(format!(
                "SELECT {STEP_COLUMNS} FROM playbook_steps WHERE run_id = "
            ));
            q.push_bind(id).push(" ORDER BY seq");
            q.build_query_as().fetch_all(pool).await
        })
        .map_err(failed(&format!("reading the steps of playbook run {id}")))?;
        run.steps = steps
            .into_iter()
            .map(StepRow::into_record)
            .collect::<Result<_, _>>()?;
        Ok(Some(run))
    }
}

/// `text` with registered secrets masked and NUL characters dropped (PostgreSQL refuses them in
/// TEXT and JSONB).
fn clean_text(text: &str) -> String {
    let masked = secrets::redact(text);
    if masked.contains('\0') {
        masked.replace('\0', "")
    } else {
        masked.into_owned()
    }
}

/// `value` with [`clean_text`] applied to every string and key.
fn clean_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(clean_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(clean_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (clean_text(k), clean_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An attachment with its name, and its body when it is text, cleaned.
fn clean_attachment(a: &Attachment) -> Attachment {
    Attachment {
        name: clean_text(&a.name),
        content_type: clean_text(&a.content_type),
        bytes: a.bytes,
        encoding: a.encoding.clone(),
        body: if a.encoding == "base64" {
            a.body.clone()
        } else {
            clean_text(&a.body)
        },
    }
}

/// A duration to store: NaN and infinities (never expected) become 0 rather than a failed write.
fn finite(ms: f64) -> f64 {
    if ms.is_finite() { ms } else { 0.0 }
}

/// The machine's name, recorded with each run (two daemons sharing a store).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_masked_and_nul_free() {
        secrets::register("audit-secret-4711");
        assert_eq!(
            clean_text("Bearer audit-secret-4711\0!"),
            format!("Bearer {}!", secrets::MASK)
        );
        let v = clean_json(&serde_json::json!({"h": ["x audit-secret-4711"], "n": 1}));
        assert_eq!(v["h"][0], format!("x {}", secrets::MASK));
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn base64_bodies_are_kept_text_bodies_masked() {
        secrets::register("attach-secret-0815");
        let a = Attachment {
            name: "heap".into(),
            content_type: "text/plain".into(),
            bytes: 24,
            encoding: "text".into(),
            body: "token=attach-secret-0815".into(),
        };
        assert!(!clean_attachment(&a).body.contains("attach-secret-0815"));
        let b = Attachment {
            encoding: "base64".into(),
            body: "YXR0YWNo".into(),
            ..a
        };
        assert_eq!(clean_attachment(&b).body, "YXR0YWNo");
    }

    #[test]
    fn step_statuses_round_trip() {
        for s in [
            StepStatus::Ok,
            StepStatus::Failed,
            StepStatus::Skipped,
            StepStatus::Planned,
        ] {
            assert_eq!(parse_step_status(step_status_text(s)), Some(s));
        }
    }
}
