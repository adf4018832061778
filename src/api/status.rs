//! `GET /api/v1/status`: the revision in force, reloads and the last reload error (with
//! `file:line:col` of every problem), readiness and what the rules hold.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::Api;
use crate::daemon::state::StatusInfo;

#[derive(Debug, Serialize)]
pub(super) struct StatusView {
    #[serde(flatten)]
    info: StatusInfo,
    version: &'static str,
    ready: bool,
    store: &'static str,
    counts: Counts,
}

#[derive(Debug, Serialize)]
struct Counts {
    checks: usize,
    /// Checks with a `schedule` or `every` (the others run only in suites or on request).
    scheduled_checks: usize,
    shadow_checks: usize,
    suites: usize,
    services: usize,
    targets: usize,
    files: usize,
}

pub(super) async fn show(State(api): State<Api>) -> Json<StatusView> {
    let rules = api.state.rules.load_full();
    let counts = Counts {
        checks: rules.checks.len(),
        scheduled_checks: rules
            .checks
            .iter()
            .filter(|c| c.common.schedule.is_some() || c.common.every.is_some())
            .count(),
        shadow_checks: rules.checks.iter().filter(|c| c.is_shadow()).count(),
        suites: rules.suites.len(),
        services: rules.services.len(),
        targets: rules.targets.len(),
        files: rules.files.len(),
    };
    Json(StatusView {
        info: api.state.status.read().await.clone(),
        version: env!("CARGO_PKG_VERSION"),
        ready: api.state.is_ready(),
        store: api.state.store.backend(),
        counts,
    })
}
