//! What happens when a suite run of the daemon has ended (and is stored): its report files are
//! written to the report directory (when the daemon has one), and its Markdown summary is queued
//! in the outbox for each receiver the suite's `notify:` names, delivered with the outbox's
//! retries like any alert.
//!
//! The summary travels as one firing alert (`alertname=suite_report`, `suite`, `run_id`) whose
//! `summary` annotation is the headline and `body` the whole Markdown: chat receivers send the
//! body as their message (Slack in its mrkdwn, email as its text part), a webhook receives it in
//! `commonAnnotations.body`, and a `template:` can use `{{ alerts[0].annotations.body }}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::markdown;
use super::model::SuiteReport;
use super::write::write_all;
use crate::alert::template::keys;
use crate::alert::{Notification, OwnMessage};
use crate::config::RuleSet;
use crate::store::{NewNotification, Store};

/// What [`after_suite_run`] did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub files: Vec<PathBuf>,
    /// Receivers the summary was queued for.
    pub queued: Vec<String>,
}

/// Writes the report of the stored run `run_id` of `suite` into `report_dir` (if any) and queues
/// its summary for the suite's `notify:` receivers. Failures are logged, never raised: a report
/// must not disturb the daemon.
pub async fn after_suite_run(
    store: &Store,
    rules: &RuleSet,
    suite: &str,
    run_id: &str,
    report_dir: Option<&Path>,
    external_url: &str,
) -> Delivered {
    let receivers: Vec<String> = rules
        .suites
        .get(suite)
        .map(|s| s.notify.clone())
        .unwrap_or_default();
    let mut done = Delivered::default();
    if report_dir.is_none() && receivers.is_empty() {
        return done;
    }
    let report = match SuiteReport::from_store(store, run_id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("no report for run {run_id} of suite {suite}: {e}");
            return done;
        }
    };
    if let Some(dir) = report_dir {
        match write_all(dir, &report) {
            Ok(files) => {
                tracing::info!(
                    "suite {suite}: report written to {}",
                    files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                done.files = files;
            }
            Err(e) => tracing::warn!(
                "suite {suite}: cannot write the report into {}: {e}",
                dir.display()
            ),
        }
    }
    let summary = crate::secrets::redact_owned(markdown::render(&report));
    let queued: Vec<NewNotification> = receivers
        .iter()
        .map(|receiver| {
            let payload = notification(&report, &summary, receiver, external_url);
            NewNotification {
                receiver: receiver.clone(),
                group_key: payload.group_key.clone(),
                idempotency_key: payload.idempotency_key.clone(),
                payload,
                not_before: None,
            }
        })
        .collect();
    if !queued.is_empty() {
        match store.save_alert_changes(&[], &queued, Utc::now()).await {
            Ok(_) => done.queued = receivers,
            Err(e) => tracing::warn!("suite {suite}: cannot queue the report summary: {e}"),
        }
    }
    done
}

/// The headline of a summary: `patrol · nightly: FAILED (2 crit, 1 error of 40)`.
pub fn headline(report: &SuiteReport) -> String {
    let c = &report.run.counts;
    let bad: Vec<String> = [("warn", c.warn), ("crit", c.crit), ("error", c.error)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let verdict = if report.failed() { "FAILED" } else { "passed" };
    let detail = if bad.is_empty() {
        format!("all {} ok", c.total())
    } else {
        format!("{} of {}", bad.join(", "), c.total())
    };
    format!("patrol · {}: {verdict} ({detail})", report.suite)
}

/// The summary as a notification for `receiver`: one firing alert carrying the Markdown. The
/// idempotency key is the run's, so queuing it again (a retry) never sends it twice.
pub fn notification(
    report: &SuiteReport,
    summary: &str,
    receiver: &str,
    external_url: &str,
) -> Notification {
    let run_id = &report.run.id;
    let severity = if report.failed() { "warning" } else { "info" };
    let labels: BTreeMap<String, String> = [
        ("alertname", "suite_report"),
        ("suite", report.suite.as_str()),
        ("run_id", run_id.as_str()),
        ("severity", severity),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let annotations: BTreeMap<String, String> = [
        ("summary".to_string(), headline(report)),
        (keys::BODY.to_string(), summary.to_string()),
        ("revision".to_string(), report.run.revision.clone()),
    ]
    .into();
    let base = external_url.trim_end_matches('/');
    OwnMessage {
        receiver: receiver.to_string(),
        group_key: format!("suite_report:{}", report.suite),
        group_labels: BTreeMap::new(),
        labels,
        annotations,
        generator_url: format!("{base}/api/v1/runs/{run_id}"),
        fingerprint: format!("suite_report:{run_id}"),
        external_url: external_url.to_string(),
        idempotency_key: format!("suite_report:{run_id}:{receiver}"),
        at: report.run.finished_at,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::sample_report;

    #[test]
    fn the_summary_is_one_firing_alert_keyed_by_run_and_receiver() {
        let report = sample_report();
        let n = notification(&report, "## md", "ops", "http://p:9464/");
        assert_eq!(n.idempotency_key, "suite_report:run-2:ops");
        assert_eq!(n.common_labels["alertname"], "suite_report");
        assert_eq!(n.common_labels["suite"], "nightly");
        assert_eq!(n.common_annotations["body"], "## md");
        assert_eq!(
            n.common_annotations["summary"],
            "patrol · nightly: FAILED (1 warn, 2 crit, 1 error of 7)"
        );
        assert_eq!(n.alerts[0].generator_url, "http://p:9464/api/v1/runs/run-2");
    }
}
