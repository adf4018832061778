//! The report of a playbook run, as JSON (for machines, written by `--report-dir`) and as
//! Markdown (short enough for a chat message or an alert annotation). Both follow one chain:
//! what triggered the run (check → result → alert → score) → the steps (status, duration,
//! approver, error, a short output excerpt, attachments) → the rollback steps → the result, with
//! links to the stored run at `{external_url}/api/v1/playbook-runs/{id}`.
//!
//! The run record is already redacted (by the runner, and again by the store); the report adds no
//! value that did not come from it.

use serde_json::{Value, json};

use super::run::{PlaybookRun, RunStatus, StepRecord, StepStatus, redact_value};

/// The trigger's parts, in the order the chain reads.
const TRIGGER_PARTS: &[&str] = &["check", "result", "alert", "score"];
/// Characters of a step's output shown in the Markdown report.
const OUTPUT_EXCERPT: usize = 120;
/// Characters of an error shown in the Markdown report.
const ERROR_EXCERPT: usize = 300;
/// Characters of one trigger part shown in the Markdown report.
const TRIGGER_EXCERPT: usize = 160;

/// Where the stored run is served (JSON).
pub fn run_url(external_url: &str, id: &str) -> String {
    format!(
        "{}/api/v1/playbook-runs/{id}",
        external_url.trim_end_matches('/')
    )
}

/// The report as JSON with `links` to the stored run (see [`json`]).
pub fn json_linked(run: &PlaybookRun, external_url: &str) -> Value {
    let url = run_url(external_url, &run.id);
    let mut report = json(run);
    report["links"] = json!({ "json": url, "markdown": format!("{url}?format=markdown") });
    report
}

/// The report as JSON: the run's fields, the trigger, the forward and rollback steps (attachment
/// names and sizes, not their bodies) and the result.
pub fn json(run: &PlaybookRun) -> Value {
    let steps_of = |phase: &str| -> Vec<Value> {
        numbered(run)
            .filter(|(_, s)| in_phase(s, phase))
            .map(|(seq, s)| step_json(seq, s))
            .collect()
    };
    let report = json!({
        "id": run.id,
        "playbook": run.playbook,
        "dry_run": run.dry_run,
        "started_by": run.started_by,
        "key": run.key,
        "approver": run.approver,
        "params": run.params,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_ms": run_duration_ms(run),
        "trigger": run.trigger,
        "steps": steps_of("steps"),
        "rollback": steps_of("rollback"),
        "result": { "status": run.status, "error": run.error },
    });
    // The record is redacted already; a report is cheap to mask again, and leaves the process.
    redact_value(&report)
}

fn step_json(seq: usize, s: &StepRecord) -> Value {
    let attachments: Vec<Value> = s
        .attachments
        .iter()
        .map(|a| json!({ "name": a.name, "content_type": a.content_type, "bytes": a.bytes }))
        .collect();
    json!({
        "seq": seq,
        "name": s.name,
        "kind": s.kind,
        "status": s.status,
        "description": s.description,
        "started_at": s.started_at,
        "duration_ms": s.duration_ms,
        "approver": s.approver,
        "error": s.error,
        "input": s.input,
        "output": s.output,
        "attachments": attachments,
    })
}

/// The report as Markdown.
pub fn markdown(run: &PlaybookRun, external_url: &str) -> String {
    let url = run_url(external_url, &run.id);
    let mut out = Vec::new();
    out.push(headline(run));
    out.push(byline(run, &url));
    let trigger = trigger_lines(&run.trigger);
    if !trigger.is_empty() {
        out.push(String::new());
        out.push("**Trigger**".into());
        out.extend(trigger);
    }
    for (phase, title) in [("steps", "Steps"), ("rollback", "Rollback")] {
        let lines: Vec<String> = numbered(run)
            .filter(|(_, s)| in_phase(s, phase))
            .flat_map(|(seq, s)| step_lines(seq, s))
            .collect();
        if !lines.is_empty() {
            out.push(String::new());
            out.push(format!("**{title}**"));
            out.extend(lines);
        }
    }
    out.push(String::new());
    out.push(result_line(run));
    out.push(format!("[JSON]({url}) · [Markdown]({url}?format=markdown)"));
    let mut text = out.join("\n");
    text.push('\n');
    crate::secrets::redact_owned(text)
}

fn headline(run: &PlaybookRun) -> String {
    let dry = if run.dry_run { " (dry run)" } else { "" };
    format!(
        "### Playbook `{}`{dry}: {}",
        code(&run.playbook),
        status_word(run.status)
    )
}

fn byline(run: &PlaybookRun, url: &str) -> String {
    let mut parts = vec![
        format!("run [`{}`]({url})", run.id),
        format!("started by {}", run.started_by),
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    ];
    if let Some(ms) = run_duration_ms(run) {
        parts.push(format_duration(ms));
    }
    if let Some(who) = &run.approver {
        parts.push(format!("approved by {who}"));
    }
    if !run.params.is_empty() {
        let params: Vec<String> = run.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!(
            "params `{}`",
            code(&excerpt(&params.join(" "), 120))
        ));
    }
    parts.join(" · ")
}

/// One line per part of the trigger present (check, result, alert, score).
fn trigger_lines(trigger: &Value) -> Vec<String> {
    let Some(map) = trigger.as_object() else {
        return match trigger {
            Value::Null => Vec::new(),
            other => vec![format!(
                "- `{}`",
                code(&excerpt(&compact(other), TRIGGER_EXCERPT))
            )],
        };
    };
    TRIGGER_PARTS
        .iter()
        .filter_map(|part| map.get(*part).filter(|v| !v.is_null()).map(|v| (part, v)))
        .map(|(part, v)| {
            format!(
                "- {part}: `{}`",
                code(&excerpt(&compact(v), TRIGGER_EXCERPT))
            )
        })
        .collect()
}

/// The lines of one step: a headline, then what went wrong, the output, the attachments.
fn step_lines(seq: usize, s: &StepRecord) -> Vec<String> {
    let mut head = format!(
        "{}. `{}` ({}) {}",
        seq + 1,
        code(&s.name),
        s.kind,
        step_word(s.status)
    );
    if s.status != StepStatus::Skipped {
        head.push_str(&format!(", {}", format_duration(s.duration_ms)));
    }
    if !s.description.is_empty() {
        head.push_str(&format!(": {}", excerpt(&s.description, 100)));
    }
    let mut lines = vec![head];
    if let Some(who) = &s.approver {
        lines.push(format!("   approved by {who}"));
    }
    if let Some(e) = &s.error {
        lines.push(format!("   error: `{}`", code(&excerpt(e, ERROR_EXCERPT))));
    }
    if !s.output.is_null() {
        lines.push(format!(
            "   output: `{}`",
            code(&excerpt(&compact(&s.output), OUTPUT_EXCERPT))
        ));
    }
    if !s.attachments.is_empty() {
        let names: Vec<String> = s
            .attachments
            .iter()
            .map(|a| format!("{} ({})", a.name, format_bytes(a.bytes)))
            .collect();
        lines.push(format!("   attachments: {}", names.join(", ")));
    }
    lines
}

fn result_line(run: &PlaybookRun) -> String {
    let mut line = format!("**Result:** {}", status_word(run.status));
    if let Some(e) = &run.error {
        line.push_str(&format!(" — {}", excerpt(e, ERROR_EXCERPT)));
    }
    line
}

/// Steps with their position in the run.
fn numbered(run: &PlaybookRun) -> impl Iterator<Item = (usize, &StepRecord)> {
    run.steps.iter().enumerate()
}

fn in_phase(step: &StepRecord, phase: &str) -> bool {
    if phase == "rollback" {
        step.phase == "rollback"
    } else {
        step.phase != "rollback"
    }
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "FAILED",
        RunStatus::RolledBack => "FAILED, rolled back",
        RunStatus::Refused => "REFUSED",
    }
}

fn step_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Ok => "ok",
        StepStatus::Failed => "FAILED",
        StepStatus::Skipped => "skipped",
        StepStatus::Planned => "planned (dry run)",
    }
}

fn run_duration_ms(run: &PlaybookRun) -> Option<f64> {
    let ended = run.ended_at?;
    let micros = (ended - run.started_at).num_microseconds()?;
    Some(micros.max(0) as f64 / 1000.0)
}

/// `850 ms`, `3.2 s`, `2m 05s`.
pub fn format_duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// `512 B`, `12.3 KiB`, `4.0 MiB`.
pub fn format_bytes(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / (KIB * KIB))
    }
}

/// A value on one line: strings as they are, anything else as compact JSON.
fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most `max` characters of `text` on one line, `…` when cut.
fn excerpt(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max).collect();
    cut.push('…');
    cut
}

/// Text safe inside a Markdown code span (a backtick would end it).
fn code(text: &str) -> String {
    text.replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Attachment;
    use chrono::{Duration, Utc};
    use std::collections::BTreeMap;

    fn step(name: &str, phase: &str, status: StepStatus) -> StepRecord {
        StepRecord {
            name: name.into(),
            kind: "http".into(),
            phase: phase.into(),
            status,
            description: format!("GET http://svc/{name}"),
            input: json!({"url": format!("http://svc/{name}")}),
            output: json!({"status": 200, "body": "x".repeat(500)}),
            error: None,
            started_at: Utc::now(),
            duration_ms: 12.0,
            approver: None,
            attachments: Vec::new(),
        }
    }

    fn sample() -> PlaybookRun {
        let started = Utc::now();
        let mut failing = step("restart", "steps", StepStatus::Failed);
        failing.error = Some("POST http://svc/restart: 500 `boom`".into());
        failing.approver = Some("cli:alice (--yes)".into());
        let mut heap = step("heap", "steps", StepStatus::Ok);
        heap.attachments.push(Attachment {
            name: "heap.pprof".into(),
            content_type: "application/octet-stream".into(),
            bytes: 12_600,
            encoding: "base64".into(),
            body: "AAAA".into(),
        });
        PlaybookRun {
            id: "run-1".into(),
            playbook: "fix-api".into(),
            dry_run: false,
            status: RunStatus::RolledBack,
            params: BTreeMap::from([("service".into(), "orders".into())]),
            trigger: json!({"check": {"name": "api-up"}, "alert": {"fingerprint": "ab12"}, "other": 1}),
            started_by: "alert:api-up".into(),
            key: Some("fix-api".into()),
            approver: None,
            started_at: started,
            ended_at: Some(started + Duration::milliseconds(3200)),
            steps: vec![heap, failing, step("undo", "rollback", StepStatus::Ok)],
            error: Some("step `restart` failed".into()),
        }
    }

    #[test]
    fn markdown_follows_the_chain_and_links_the_run() {
        let md = markdown(&sample(), "http://patrol:9464/");
        let at = |needle: &str| {
            md.find(needle)
                .unwrap_or_else(|| panic!("{needle} in\n{md}"))
        };
        assert!(at("- check:") < at("- alert:"));
        assert!(at("- alert:") < at("**Steps**"));
        assert!(at("**Steps**") < at("**Rollback**"));
        assert!(at("**Rollback**") < at("**Result:** FAILED, rolled back"));
        assert!(md.contains("http://patrol:9464/api/v1/playbook-runs/run-1"));
        assert!(md.contains("heap.pprof (12.3 KiB)"));
        assert!(md.contains("approved by cli:alice (--yes)"));
        assert!(md.contains("3.2 s"));
        assert!(!md.contains("other"), "only the chain's parts: {md}");
        assert!(!md.contains(&"x".repeat(200)), "outputs are cut: {md}");
        assert!(
            md.contains("500 'boom'"),
            "backticks cannot break code spans"
        );
    }

    #[test]
    fn json_lists_attachments_without_bodies_and_splits_phases() {
        let j = json_linked(&sample(), "http://patrol:9464");
        assert_eq!(j["steps"].as_array().unwrap().len(), 2);
        assert_eq!(j["rollback"][0]["name"], "undo");
        assert_eq!(j["rollback"][0]["seq"], 2);
        assert_eq!(j["steps"][0]["attachments"][0]["bytes"], 12_600);
        assert!(j["steps"][0]["attachments"][0].get("body").is_none());
        assert_eq!(j["result"]["status"], "rolled_back");
        assert_eq!(
            j["links"]["json"],
            "http://patrol:9464/api/v1/playbook-runs/run-1"
        );
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(format_duration(850.4), "850 ms");
        assert_eq!(format_duration(3250.0), "3.2 s");
        assert_eq!(format_duration(125_000.0), "2m 05s");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(4 * 1024 * 1024), "4.0 MiB");
    }
}
