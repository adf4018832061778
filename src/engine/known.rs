//! What judging a check knows besides the probe's measurement, per series: the EWMA state, the
//! fitted model of a `seasonal`/`ets` baseline, the recent values of a `peer` comparison; and
//! the maintenance windows an event window may refer to. The daemon keeps models fitted in the
//! background; a one-shot `patrol run` fits them from the store before it measures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::alert::maintenance::MaintenanceWindow;
use crate::baseline::online::{ModelState, keeps_for_history};
use crate::baseline::window::open_at;
use crate::baseline::{BaselineConfig, BaselineMethod, EwmaState, forecast};
use crate::config::Check;
use crate::store::{HistoryPoint, Store, StoreError};

#[derive(Clone, Debug, Default)]
pub struct Known {
    pub baselines: HashMap<String, EwmaState>,
    /// Series → the latest model of a fitted method.
    pub models: HashMap<String, ModelState>,
    /// Series → its values within the peer window before this run, oldest first.
    pub peers: HashMap<String, Vec<f64>>,
    pub maintenance: Arc<Vec<MaintenanceWindow>>,
}

impl Known {
    /// Only EWMA states (drills' steady-state probes; fitted methods fall back to EWMA).
    pub fn with_baselines(baselines: HashMap<String, EwmaState>) -> Known {
        Known {
            baselines,
            ..Known::default()
        }
    }
}

/// The sample spacing a fitted model's periods are counted in: `baseline.interval`, else the
/// check's `every` (validation asks cron-scheduled checks with a fitted method for `interval`).
pub fn step_of(check: &Check) -> Option<Duration> {
    let cfg = check.common.baseline.as_ref()?;
    cfg.interval.or(check.common.every).filter(|d| !d.is_zero())
}

/// The stored values of a fitted-method check over its `history`, per series, minus what its
/// baseline does not learn (see [`keeps_for_history`]).
pub fn learnable_history(
    cfg: &BaselineConfig,
    points: Vec<HistoryPoint>,
    maintenance: &[MaintenanceWindow],
) -> HashMap<String, Vec<(DateTime<Utc>, f64)>> {
    let mut out: HashMap<String, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for p in points {
        let window = open_at(&cfg.windows, p.started_at, maintenance);
        if !keeps_for_history(cfg, p.was_outside(), p.method.as_deref(), window) {
            continue;
        }
        out.entry(p.series)
            .or_default()
            .push((p.started_at, p.value));
    }
    out
}

/// Fits `check`'s model for every series of `history` (CPU-bound: call it off the async
/// threads). A check whose baseline is not fitted gets none.
pub fn fit_models(
    check: &Check,
    history: HashMap<String, Vec<(DateTime<Utc>, f64)>>,
    now: DateTime<Utc>,
) -> HashMap<String, ModelState> {
    let (Some(cfg), Some(step)) = (check.common.baseline.as_ref(), step_of(check)) else {
        return HashMap::new();
    };
    if !cfg.method.is_fitted() {
        return HashMap::new();
    }
    history
        .into_iter()
        .map(|(series, points)| {
            let last = points.iter().map(|(t, _)| *t).max().unwrap_or(now);
            let horizon = forecast::horizon_at(cfg, step, last, now);
            let fit = forecast::fit(cfg, &points, step, horizon);
            (series, ModelState::from_fit(fit))
        })
        .collect()
}

/// Reads `check`'s history from the store and fits its models, off the async threads.
pub async fn refit_from_store(
    store: &Store,
    check: &Arc<Check>,
    maintenance: &Arc<Vec<MaintenanceWindow>>,
    now: DateTime<Utc>,
) -> Result<HashMap<String, ModelState>, StoreError> {
    let Some(cfg) = check
        .common
        .baseline
        .as_ref()
        .filter(|c| c.method.is_fitted())
    else {
        return Ok(HashMap::new());
    };
    let since = now - TimeDelta::from_std(cfg.history()).unwrap_or(TimeDelta::days(365));
    let points = store.value_history(check.name(), since).await?;
    let (check, maintenance) = (check.clone(), maintenance.clone());
    let fitted = tokio::task::spawn_blocking(move || {
        let cfg = check.common.baseline.as_ref().expect("checked above");
        fit_models(&check, learnable_history(cfg, points, &maintenance), now)
    })
    .await
    .unwrap_or_default();
    Ok(fitted)
}

/// The values of each series of a `peer` check within its window before `now`, oldest first.
pub async fn peer_history(
    store: &Store,
    check: &Check,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Vec<f64>>, StoreError> {
    let Some(cfg) = check
        .common
        .baseline
        .as_ref()
        .filter(|c| c.method == BaselineMethod::Peer)
    else {
        return Ok(HashMap::new());
    };
    let since = now - TimeDelta::from_std(cfg.peer.window).unwrap_or(TimeDelta::hours(1));
    let mut out: HashMap<String, Vec<f64>> = HashMap::new();
    for p in store.value_history(check.name(), since).await? {
        out.entry(p.series).or_default().push(p.value);
    }
    Ok(out)
}

/// Everything judging `check` now needs from the store, for a one-shot run: its peers' recent
/// values and, for a fitted method, models fitted from its history.
pub async fn load_for_run(
    store: &Store,
    check: &Arc<Check>,
    baselines: HashMap<String, EwmaState>,
    maintenance: &Arc<Vec<MaintenanceWindow>>,
    now: DateTime<Utc>,
) -> Result<Known, StoreError> {
    Ok(Known {
        baselines,
        models: refit_from_store(store, check, maintenance, now).await?,
        peers: peer_history(store, check, now).await?,
        maintenance: maintenance.clone(),
    })
}
