//! The daemon's fitted baselines: a background task refits every `seasonal`/`ets` check's
//! models from the store when its `refit` period has passed (or what it measures changed), off
//! the async threads, and swaps them in. A probe's sample is judged against the models held at
//! that moment and never waits for a fit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::core::Daemon;
use crate::baseline::online::ModelState;
use crate::config::{Check, RuleSet};
use crate::engine::known::refit_from_store;

/// How often the task looks for checks due a refit.
const TICK: Duration = Duration::from_secs(30);

/// Models per check (then per series), and when and for which measurement each was fitted.
#[derive(Default)]
pub struct Models {
    by_check: Mutex<HashMap<String, Fitted>>,
}

struct Fitted {
    at: DateTime<Utc>,
    fingerprint: String,
    series: HashMap<String, ModelState>,
}

impl Models {
    /// The models of `check`'s series (empty when none was fitted yet).
    pub async fn of(&self, check: &str) -> HashMap<String, ModelState> {
        self.by_check
            .lock()
            .await
            .get(check)
            .map(|f| f.series.clone())
            .unwrap_or_default()
    }

    /// Whether `check` needs a refit at `now`: never fitted, fitted for another measurement,
    /// or its refit period has passed.
    async fn due(&self, check: &Check, now: DateTime<Utc>) -> bool {
        let Some(cfg) = check
            .common
            .baseline
            .as_ref()
            .filter(|c| c.method.is_fitted())
        else {
            return false;
        };
        let every = TimeDelta::from_std(cfg.refit).unwrap_or(TimeDelta::hours(1));
        match self.by_check.lock().await.get(check.name()) {
            None => true,
            Some(f) => f.fingerprint != check.measure_fingerprint || now - f.at >= every,
        }
    }

    /// Drops the models of checks the rules no longer fit.
    async fn forget_gone(&self, rules: &RuleSet) {
        self.by_check.lock().await.retain(|name, _| {
            rules
                .check(name)
                .and_then(|c| c.common.baseline.as_ref())
                .is_some_and(|b| b.method.is_fitted())
        });
    }

    async fn install(&self, check: &Check, at: DateTime<Utc>, series: HashMap<String, ModelState>) {
        self.by_check.lock().await.insert(
            check.name().to_string(),
            Fitted {
                at,
                fingerprint: check.measure_fingerprint.clone(),
                series,
            },
        );
    }
}

/// Refits due checks now and then every [`TICK`] until shutdown.
pub async fn refit_loop(daemon: Arc<Daemon>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        refit_due(&daemon).await;
    }
}

/// One pass: every check whose models are due is refitted, one after the other (a fit uses a
/// core; the probes keep the rest).
pub async fn refit_due(daemon: &Arc<Daemon>) {
    let rules = daemon.state.rules.load_full();
    daemon.models.forget_gone(&rules).await;
    let maintenance = Arc::new(rules.maintenance.clone());
    for check in &rules.checks {
        let now = Utc::now();
        if !daemon.models.due(check, now).await {
            continue;
        }
        let started = std::time::Instant::now();
        match refit_from_store(&daemon.state.store, check, &maintenance, now).await {
            Ok(series) => {
                tracing::debug!(
                    "refitted {} ({} series) in {:?}",
                    check.name(),
                    series.len(),
                    started.elapsed()
                );
                daemon.models.install(check, now, series).await;
            }
            Err(e) => tracing::warn!("cannot refit the baseline of {}: {e}", check.name()),
        }
    }
}
