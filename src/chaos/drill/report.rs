//! The drill report: JSON for machines (`<dir>/drills/<name>-<timestamp>.json`, the shape stored
//! for trends), Markdown for people and chat, HTML with charts (`report_html.rs`), and a plain
//! summary for the terminal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::abort::ScorePoint;
use super::metric::show_millis;
use super::spec::RecoveryFrom;
use super::steady::SteadySnapshot;
use super::verify::VerifyLine;
use crate::chaos::workload::{HttpWorkloadReport, SseWorkloadReport};

/// How the drill ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillStatus {
    /// The steady state held before and after, and every verify line passed.
    Passed,
    /// The steady state did not hold, or a verify line failed.
    Failed,
    /// Stopped early (abort_when, a signal, a fault that could not be injected); everything was
    /// rolled back.
    Aborted,
}

impl DrillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Passed => "passed",
            DrillStatus::Failed => "failed",
            DrillStatus::Aborted => "aborted",
        }
    }
}

/// What happened to one fault of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Position in the drill file's `faults:` (0-based).
    pub index: usize,
    pub kind: String,
    /// What it does and its blast radius.
    pub description: String,
    /// Planned start and length, from the start of the fault phase.
    pub at_ms: u64,
    pub for_ms: u64,
    #[serde(default)]
    pub journal_id: Option<i64>,
    #[serde(default)]
    pub injected_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reverted_at: Option<DateTime<Utc>>,
    /// `not injected`, `injected` (still active: see `patrol drill --recover`), `reverted`,
    /// `inject failed`, `revert failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One rollback step and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub command: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SteadyRecord {
    pub before: Option<SteadySnapshot>,
    /// Every probe taken while the faults ran.
    pub during: Vec<SteadySnapshot>,
    pub after: Option<SteadySnapshot>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkloadRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseWorkloadReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpWorkloadReport>,
}

/// Everything a drill run found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrillReport {
    pub name: String,
    pub file: PathBuf,
    pub run_id: String,
    pub status: DrillStatus,
    /// Why the drill failed or aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Revision of the rules the steady state came from.
    pub revision: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub faults: Vec<FaultRecord>,
    pub steady_state: SteadyRecord,
    pub recovery_from: RecoveryFrom,
    /// Time until the steady state held again after the last fault (None: it did not, or there
    /// was nothing to measure).
    #[serde(default)]
    pub recovery_ms: Option<f64>,
    pub workload: WorkloadRecord,
    pub verify: Vec<VerifyLine>,
    pub rollback: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<ScorePoint>,
}

impl DrillReport {
    /// `<name>-<UTC timestamp>`: sorts by time, never collides within a second for one drill.
    pub fn file_stem(&self) -> String {
        format!("{}-{}", self.name, self.started_at.format("%Y%m%dT%H%M%SZ"))
    }

    /// Writes `<dir>/drills/<stem>.json`, `.md` and `.html` (see `report_html.rs`); returns the
    /// three paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
        let drills = dir.join("drills");
        std::fs::create_dir_all(&drills)?;
        let json = drills.join(format!("{}.json", self.file_stem()));
        let md = drills.join(format!("{}.md", self.file_stem()));
        let html = drills.join(format!("{}.html", self.file_stem()));
        // Substituted credentials never reach a file, even inside a check's message.
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&json, crate::secrets::redact_owned(text) + "\n")?;
        std::fs::write(&md, crate::secrets::redact_owned(self.markdown()))?;
        std::fs::write(&html, crate::secrets::redact_owned(self.html()))?;
        Ok((json, md, html))
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Drill {}: {}\n",
            self.name,
            self.status.as_str().to_uppercase()
        );
        if let Some(reason) = &self.reason {
            let _ = writeln!(s, "**{}**\n", reason);
        }
        let _ = writeln!(
            s,
            "- file: `{}`\n- run: `{}` · rules revision `{}`\n- {} → {} ({})\n",
            self.file.display(),
            self.run_id,
            self.revision,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.finished_at.format("%H:%M:%S UTC"),
            show_millis(self.duration_ms as f64)
        );
        s.push_str("## Verify\n\n| | what | expected | actual |\n|---|---|---|---|\n");
        for v in &self.verify {
            let mark = if v.pass { "✅" } else { "❌" };
            let _ = writeln!(
                s,
                "| {mark} | {} | `{}` | {} |",
                v.what, v.expected, v.actual
            );
        }
        s.push_str(
            "\n## Faults\n\n| # | fault | injected | reverted | outcome |\n|---|---|---|---|---|\n",
        );
        for f in &self.faults {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {}{} |",
                f.index + 1,
                f.description.replace('|', "\\|"),
                self.offset(f.injected_at),
                self.offset(f.reverted_at),
                f.outcome,
                f.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
            );
        }
        s.push_str("\n## Steady state\n\n");
        s.push_str(&self.steady_lines("- "));
        s.push_str("\n## Workload\n\n");
        s.push_str(&self.workload_lines("- "));
        if !self.rollback.is_empty() {
            s.push_str("\n## Rollback\n\n");
            for step in &self.rollback {
                let _ = writeln!(
                    s,
                    "- {} `{}` {}",
                    if step.ok { "✅" } else { "❌" },
                    step.command,
                    step.message
                );
            }
        }
        s
    }

    /// A plain summary for the terminal.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "drill {}: {} in {}{}",
            self.name,
            self.status.as_str().to_uppercase(),
            show_millis(self.duration_ms as f64),
            self.reason
                .as_ref()
                .map_or(String::new(), |r| format!(" — {r}"))
        );
        s.push_str("faults:\n");
        for f in &self.faults {
            let _ = writeln!(
                s,
                "  #{} {} · injected {} · reverted {} · {}{}",
                f.index + 1,
                f.description,
                self.offset(f.injected_at),
                self.offset(f.reverted_at),
                f.outcome,
                f.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
            );
        }
        s.push_str("steady state:\n");
        s.push_str(&self.steady_lines("  "));
        s.push_str("workload:\n");
        s.push_str(&self.workload_lines("  "));
        if !self.verify.is_empty() {
            s.push_str("verify:\n");
            for v in &self.verify {
                let _ = writeln!(
                    s,
                    "  {} {:<14} expected {:<12} actual {}",
                    if v.pass { "PASS" } else { "FAIL" },
                    v.what,
                    v.expected,
                    v.actual
                );
            }
        }
        for step in &self.rollback {
            let _ = writeln!(
                s,
                "rollback: {} `{}` {}",
                if step.ok { "ok" } else { "FAILED" },
                step.command,
                step.message
            );
        }
        s
    }

    /// `+12.5s` after the drill started, or `-`.
    fn offset(&self, at: Option<DateTime<Utc>>) -> String {
        match at {
            Some(t) => {
                let ms = (t - self.started_at).num_milliseconds().max(0) as f64;
                format!("+{}", show_millis(ms))
            }
            None => "-".into(),
        }
    }

    fn steady_lines(&self, indent: &str) -> String {
        let mut s = String::new();
        let show = |snap: &Option<SteadySnapshot>| match snap {
            None => "not measured".to_string(),
            Some(x) if x.holds => "holds".to_string(),
            Some(x) => format!("does not hold: {}", x.failures()),
        };
        let _ = writeln!(s, "{indent}before: {}", show(&self.steady_state.before));
        let during = &self.steady_state.during;
        let failing = during.iter().filter(|x| !x.holds).count();
        let _ = writeln!(
            s,
            "{indent}during: {} probe(s), {} without the steady state",
            during.len(),
            failing
        );
        let _ = writeln!(s, "{indent}after: {}", show(&self.steady_state.after));
        let recovery = match self.recovery_ms {
            Some(ms) => show_millis(ms),
            None => "not measured".into(),
        };
        let from = match self.recovery_from {
            RecoveryFrom::FromRevert => "last revert",
            RecoveryFrom::FromInject => "last inject",
        };
        let _ = writeln!(s, "{indent}recovery (from the {from}): {recovery}");
        s
    }

    /// The workload's totals (the scalar fields of its report) on one line per workload.
    fn workload_lines(&self, indent: &str) -> String {
        let mut s = String::new();
        let line = |name: &str, value: serde_json::Value| {
            let fields: Vec<String> = value
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| scalar_text(v).map(|t| format!("{k} {t}")))
                        .collect()
                })
                .unwrap_or_default();
            format!("{indent}{name}: {}\n", fields.join(" · "))
        };
        if let Some(sse) = &self.workload.sse {
            s.push_str(&line("sse", serde_json::to_value(sse).unwrap_or_default()));
        }
        if let Some(http) = &self.workload.http {
            s.push_str(&line(
                "http",
                serde_json::to_value(http).unwrap_or_default(),
            ));
        }
        if s.is_empty() {
            let _ = writeln!(s, "{indent}none");
        }
        s
    }
}

/// Numbers and `{p50, p99, max}` objects as short text; lists and nested details are left to the
/// JSON report.
fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map(crate::result::format_number),
        serde_json::Value::Object(o) if o.values().all(serde_json::Value::is_number) => Some(
            o.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_f64()
                            .map(crate::result::format_number)
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("/"),
        ),
        _ => None,
    }
}
