//! What a trigger hands a playbook run: the run's id (allocated before the alert is queued, so
//! the notification links the run report), who started it, and the `trigger` value its
//! templates see — the check, its result, the alert and the score for `on_failure`; the service,
//! its score and the `score_low` event for `on_low_score`.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::alert::lifecycle::AlertState;
use crate::config::Check;
use crate::result::CheckResult;
use crate::score::LowScoreEvent;

/// Annotation of an alert that started a playbook run: the run's URL.
pub const PLAYBOOK_RUN: &str = "playbook_run";

/// A playbook run a trigger asked for, not started yet.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    pub playbook: String,
    pub run_id: String,
    /// `{external_url}/api/v1/playbook-runs/{run_id}`.
    pub url: String,
    pub started_by: String,
    pub trigger: Value,
}

/// A fresh run id (time-ordered, like every other id of the daemon).
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Where a run's report is: `{external_url}/api/v1/playbook-runs/{id}`.
pub fn run_url(external_url: &str, run_id: &str) -> String {
    format!(
        "{}/api/v1/playbook-runs/{run_id}",
        external_url.trim_end_matches('/')
    )
}

/// The run `on_failure: playbook` of `check` asks for when its alert `alert` starts firing on
/// `result`; `scores` are the services' latest health scores.
pub fn on_failure(
    playbook: &str,
    check: &Check,
    result: &CheckResult,
    alert: &AlertState,
    scores: &HashMap<String, f64>,
    external_url: &str,
) -> PlannedRun {
    let run_id = new_run_id();
    let url = run_url(external_url, &run_id);
    let service = check.common.service.clone();
    let score = service.as_ref().and_then(|s| scores.get(s)).copied();
    let mut annotations = alert.annotations.clone();
    annotations.insert(PLAYBOOK_RUN.into(), url.clone());
    let trigger = json!({
        "kind": "on_failure",
        "check": {
            "name": check.name(),
            "labels": check.common.labels,
            "service": service,
        },
        "result": result,
        "alert": {
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
            "annotations": annotations,
            "starts_at": alert.starts_at,
        },
        "score": score,
    });
    PlannedRun {
        playbook: playbook.to_string(),
        run_id,
        url,
        started_by: format!("alert:{}", check.name()),
        trigger,
    }
}

/// The run `on_low_score: playbook` of a service asks for on its `score_low` `event`.
pub fn on_low_score(playbook: &str, event: &LowScoreEvent, external_url: &str) -> PlannedRun {
    let run_id = new_run_id();
    PlannedRun {
        playbook: playbook.to_string(),
        url: run_url(external_url, &run_id),
        run_id,
        started_by: format!("score_low:{}", event.service),
        trigger: json!({
            "kind": "score_low",
            "service": event.service,
            "score": event.score,
            "event": event,
        }),
    }
}

/// Keeps an alert's link to the run its episode started: the lifecycle rebuilds annotations
/// from each new observation, so reminders and the resolved notice would otherwise lose it.
pub fn keep_run_link(previous: Option<&AlertState>, state: &mut AlertState) {
    let Some(prev) = previous else { return };
    if prev.starts_at.is_none() || prev.starts_at != state.starts_at {
        return;
    }
    if let Some(url) = prev.annotations.get(PLAYBOOK_RUN) {
        state
            .annotations
            .entry(PLAYBOOK_RUN.into())
            .or_insert_with(|| url.clone());
    }
}

/// Whether `state` just started firing (it was not firing in `previous`).
pub fn started_firing(previous: Option<&AlertState>, state: &AlertState) -> bool {
    state.is_firing() && !previous.is_some_and(AlertState::is_firing)
}

/// Whether a maintenance window covers the alert `labels` now: planned work is no time for
/// automatic remediation (restarting what is being upgraded), so its triggers are held back.
/// A silence does not hold them back — it only mutes notifications.
pub fn in_maintenance(
    rules: &crate::config::RuleSet,
    labels: &crate::alert::matcher::Labels,
    playbook: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let Some(window) = crate::alert::maintenance::in_maintenance(&rules.maintenance, labels, now)
    else {
        return false;
    };
    tracing::info!("not starting playbook {playbook}: maintenance window {window} is open");
    true
}

/// A name lookup the alerting asks before planning a run (it links only runs that will exist).
pub type KnownPlaybook<'a> = &'a (dyn Fn(&str) -> bool + Sync);

/// No playbooks known (callers without triggers).
pub fn none_known(_: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::alert::lifecycle::Phase;

    fn alert(phase: Phase, starts: Option<i64>, link: Option<&str>) -> AlertState {
        let t = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
        let mut state = AlertState::new("f1".into(), BTreeMap::new(), t(0));
        state.phase = phase;
        state.starts_at = starts.map(t);
        if let Some(url) = link {
            state.annotations.insert(PLAYBOOK_RUN.into(), url.into());
        }
        state
    }

    #[test]
    fn a_maintenance_window_holds_triggers_back_for_the_alerts_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.yaml"),
            "checks:\n  - { name: up, kind: tcp, address: \"127.0.0.1:1\" }\nmaintenance:\n  - name: nightly-batch\n    schedule: \"0 2 * * *\"\n    duration: 1h\n    matchers: [\"service=orders\"]\n",
        )
        .unwrap();
        let rules = crate::config::load(&[dir.path().to_path_buf()]).expect("valid rules");
        let orders = BTreeMap::from([("service".to_string(), "orders".to_string())]);
        let billing = BTreeMap::from([("service".to_string(), "billing".to_string())]);
        let during = Utc.with_ymd_and_hms(2026, 5, 4, 2, 30, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 5, 4, 3, 30, 0).unwrap();
        assert!(in_maintenance(&rules, &orders, "fix", during));
        assert!(!in_maintenance(&rules, &orders, "fix", after));
        assert!(!in_maintenance(&rules, &billing, "fix", during));
    }

    #[test]
    fn run_urls_live_under_the_external_url() {
        assert_eq!(
            run_url("http://patrol:9464/", "r1"),
            "http://patrol:9464/api/v1/playbook-runs/r1"
        );
    }

    #[test]
    fn the_link_stays_for_the_episode_that_started_the_run() {
        let prev = alert(Phase::Firing, Some(10), Some("u"));
        let mut still = alert(Phase::Firing, Some(10), None);
        keep_run_link(Some(&prev), &mut still);
        assert_eq!(still.annotations.get(PLAYBOOK_RUN).unwrap(), "u");
        let mut resolved = alert(Phase::Inactive, Some(10), None);
        keep_run_link(Some(&prev), &mut resolved);
        assert_eq!(resolved.annotations.get(PLAYBOOK_RUN).unwrap(), "u");
        let mut next_episode = alert(Phase::Firing, Some(99), None);
        keep_run_link(Some(&prev), &mut next_episode);
        assert!(!next_episode.annotations.contains_key(PLAYBOOK_RUN));
    }

    #[test]
    fn only_the_step_into_firing_starts_a_run() {
        let firing = alert(Phase::Firing, Some(10), None);
        let pending = alert(Phase::Pending, None, None);
        assert!(started_firing(None, &firing));
        assert!(started_firing(Some(&pending), &firing));
        assert!(!started_firing(Some(&firing), &firing));
        assert!(!started_firing(Some(&firing), &pending));
    }

    #[test]
    fn a_score_low_trigger_carries_the_service_score_and_event() {
        let event = LowScoreEvent {
            service: "shop".into(),
            score: 42.0,
            below: 70.0,
            times: 1,
            at: Utc::now(),
            details: serde_json::json!({}),
        };
        let run = on_low_score("heal", &event, "http://x");
        assert_eq!(run.started_by, "score_low:shop");
        assert_eq!(run.trigger["kind"], "score_low");
        assert_eq!(run.trigger["service"], "shop");
        assert_eq!(run.trigger["score"], 42.0);
        assert_eq!(run.trigger["event"]["below"], 70.0);
        assert_eq!(
            run.url,
            format!("http://x/api/v1/playbook-runs/{}", run.run_id)
        );
    }
}
