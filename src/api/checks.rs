//! `GET /api/v1/checks` and `/api/v1/checks/{name}`: the checks of the rules in force, how they
//! are scheduled, their latest state and the results of their latest run (one per series).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Api, ApiError};
use crate::config::{Check, Mode, Severity, duration};
use crate::result::CheckResult;
use crate::score::CheckState;
use crate::store::Store;

/// Checks whose latest results are read at once (each is two indexed lookups).
const CONCURRENT_LOOKUPS: usize = 8;

#[derive(Debug, Serialize)]
pub(super) struct CheckView {
    name: String,
    kind: &'static str,
    target: String,
    service: Option<String>,
    labels: BTreeMap<String, String>,
    schedule: Option<String>,
    timezone: Option<String>,
    every: Option<String>,
    jitter: Option<String>,
    mode: Mode,
    severity: Severity,
    weight: f64,
    description: Option<String>,
    /// `file:line:col` of the check in the rules.
    origin: String,
    /// Worst status of the latest run, since when failing, mean value (absent before any run).
    state: Option<CheckState>,
    /// The results of the check's latest run, one per series (empty before any run).
    latest: Vec<CheckResult>,
}

#[derive(Debug, Serialize)]
pub(super) struct CheckList {
    checks: Vec<CheckView>,
}

pub(super) async fn list(State(api): State<Api>) -> Result<Json<CheckList>, ApiError> {
    let rules = api.state.rules.load_full();
    let mut states = api.state.store.check_states().await?;
    let store = &api.state.store;
    let lookups: Vec<_> = rules
        .checks
        .iter()
        .map(|check| view(store, check, states.remove(check.name())))
        .collect();
    let checks = futures::stream::iter(lookups)
        .buffered(CONCURRENT_LOOKUPS)
        .try_collect()
        .await?;
    Ok(Json(CheckList { checks }))
}

pub(super) async fn one(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<CheckView>, ApiError> {
    let rules = api.state.rules.load_full();
    let check = rules
        .check(&name)
        .ok_or_else(|| ApiError::not_found(format!("no check named {name:?}")))?;
    let state = api.state.store.check_states().await?.remove(&name);
    Ok(Json(view(&api.state.store, check, state).await?))
}

async fn view(
    store: &Store,
    check: &Check,
    state: Option<CheckState>,
) -> Result<CheckView, ApiError> {
    let c = &check.common;
    Ok(CheckView {
        name: c.name.clone(),
        kind: check.kind(),
        target: check.target_label(),
        service: c.service.clone(),
        labels: c.labels.clone(),
        schedule: c.schedule.clone(),
        timezone: c.timezone.clone(),
        every: c.every.map(duration::format),
        jitter: c.jitter.map(duration::format),
        mode: c.mode,
        severity: c.severity,
        weight: c.weight,
        description: c.description.clone(),
        origin: check.origin.to_string(),
        state,
        latest: latest_results(store, check.name()).await?,
    })
}

/// The results of the check's newest run: the newest result names the run, the run holds one
/// result per series (a suite run also holds other checks, which are left out).
pub(super) async fn latest_results(
    store: &Store,
    check: &str,
) -> Result<Vec<CheckResult>, ApiError> {
    let Some(newest) = store.query_results(Some(check), None, 1).await?.pop() else {
        return Ok(Vec::new());
    };
    let mut results = store.results_of_run(&newest.run_id).await?;
    results.retain(|r| r.check == check);
    Ok(results)
}
