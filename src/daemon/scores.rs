//! Health scores in the daemon: evaluated every `--score-every` and after each suite run, kept
//! for the API, exported as metrics, stored as a time series; a service low for `times`
//! evaluations in a row becomes a stored `score_low` event.

use std::sync::Arc;

use chrono::Utc;

use super::core::Daemon;
use super::playbooks::trigger::{self, PlannedRun};
use crate::score;
use crate::store::{NewEvent, ScoreRecord};

pub async fn evaluate_now(daemon: &Arc<Daemon>) {
    let rules = daemon.state.rules.load_full();
    let now = Utc::now();
    let scores = {
        let states = daemon.check_states.lock().await;
        score::evaluate(&rules, &states, now)
    };
    let mut events = Vec::new();
    // All at once, so services gone after a reload leave /metrics.
    daemon
        .state
        .metrics
        .set_scores(scores.iter().map(|s| (s.service.as_str(), s.score)));
    {
        let mut published = daemon.published_scores.lock().await;
        published.retain(|service, _| scores.iter().any(|s| &s.service == service));
        for s in &scores {
            let before = published.get(&s.service).copied();
            if before.is_none_or(|b| (b - s.score).abs() >= 0.05) {
                published.insert(s.service.clone(), s.score);
                events.push(NewEvent {
                    kind: "score".into(),
                    at: now,
                    data: serde_json::to_value(s).unwrap_or_default(),
                });
            }
        }
    }
    let low = daemon.low_scores.lock().await.observe(&rules, &scores);
    events.extend(low.iter().map(|e| NewEvent {
        kind: "score_low".into(),
        at: now,
        data: serde_json::to_value(e).unwrap_or_default(),
    }));
    // `score_low` events start the services' `on_low_score` playbooks and become alerts
    // (linking those runs), routed like any other.
    let planned = plan_low_score_runs(daemon, &rules, &low);
    let links = planned
        .iter()
        .map(|(service, run)| (service.clone(), run.url.clone()))
        .collect();
    daemon
        .alerting
        .observe_scores(&daemon.state.store, &rules, &scores, &low, &links, now)
        .await;
    daemon
        .state
        .playbooks
        .start_planned(planned.into_iter().map(|(_, run)| run).collect());
    let records: Vec<ScoreRecord> = scores.iter().map(ScoreRecord::from).collect();
    if let Err(e) = daemon.state.store.save_scores(&records).await {
        tracing::warn!("could not store scores: {e}");
    }
    if let Err(e) = daemon
        .state
        .events
        .publish(&daemon.state.store, &events)
        .await
    {
        tracing::warn!("could not store score events: {e}");
    }
    *daemon.state.scores.write().await = scores;
}

/// The `on_low_score` runs the `score_low` events `low` ask for, by service (only playbooks
/// that are loaded: the alert links a run that will exist).
fn plan_low_score_runs(
    daemon: &Daemon,
    rules: &crate::config::RuleSet,
    low: &[score::LowScoreEvent],
) -> Vec<(String, PlannedRun)> {
    let playbooks = &daemon.state.playbooks;
    low.iter()
        .filter_map(|event| {
            let name = rules
                .services
                .get(&event.service)?
                .on_low_score
                .as_deref()?;
            if !playbooks.knows(name) {
                tracing::warn!(
                    "service {} is low, but its on_low_score playbook {name} is not loaded",
                    event.service
                );
                return None;
            }
            let labels = crate::alert::lifecycle::score_identity(&event.service);
            if trigger::in_maintenance(rules, &labels, name, chrono::Utc::now()) {
                return None;
            }
            let run = trigger::on_low_score(name, event, playbooks.external_url());
            Some((event.service.clone(), run))
        })
        .collect()
}
