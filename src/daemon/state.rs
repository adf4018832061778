//! What the daemon's parts share: the current rules (swapped atomically on reload), the store, the
//! metrics, the event bus, the latest scores and status, and the controls the API may use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::RwLock;

use super::events::EventBus;
use crate::api::metrics::Metrics;
use crate::config::{Diagnostic, RuleSet};
use crate::score::ServiceScore;
use crate::store::Store;

/// The last reload that failed, shown at `/api/v1/status` until a later reload succeeds.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadFailure {
    pub at: DateTime<Utc>,
    pub problems: Vec<Diagnostic>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusInfo {
    pub started_at: DateTime<Utc>,
    pub revision: String,
    pub loaded_at: DateTime<Utc>,
    pub last_reload_error: Option<ReloadFailure>,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// A run asked for through the API.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default)]
    pub checks: Vec<String>,
    #[serde(default)]
    pub suite: Option<String>,
}

/// What a reload did.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadOutcome {
    pub applied: bool,
    pub revision: String,
    pub problems: Vec<Diagnostic>,
}

/// Actions only the daemon can carry out; the API calls them.
pub trait Control: Send + Sync {
    /// Starts a run now; returns its run id at once (the run goes on in the background), or why not.
    fn start_run(&self, request: RunRequest) -> BoxFuture<'_, Result<String, String>>;
    /// Loads the rules again and applies them when valid.
    fn reload(&self) -> BoxFuture<'_, ReloadOutcome>;
}

pub struct DaemonState {
    pub rules: ArcSwap<RuleSet>,
    pub store: Store,
    pub metrics: Metrics,
    pub events: EventBus,
    pub status: RwLock<StatusInfo>,
    pub scores: RwLock<Vec<ServiceScore>>,
    pub control: Arc<dyn Control>,
    /// Bearer token required by mutating endpoints, when set.
    pub api_token: Option<String>,
    /// The loaded playbooks and their runner (none without a daemon).
    pub playbooks: Arc<super::playbooks::Playbooks>,
    ready: AtomicBool,
}

impl DaemonState {
    pub fn new(
        rules: Arc<RuleSet>,
        store: Store,
        events: EventBus,
        control: Arc<dyn Control>,
        api_token: Option<String>,
    ) -> DaemonState {
        let now = Utc::now();
        let revision = rules.revision.to_string();
        DaemonState {
            rules: ArcSwap::new(rules),
            store,
            metrics: Metrics::new(),
            events,
            status: RwLock::new(StatusInfo {
                started_at: now,
                revision,
                loaded_at: now,
                last_reload_error: None,
                reloads: 0,
                reload_failures: 0,
            }),
            scores: RwLock::new(Vec::new()),
            control,
            api_token,
            playbooks: Arc::new(super::playbooks::Playbooks::none()),
            ready: AtomicBool::new(false),
        }
    }

    /// The state with `playbooks` (the daemon's; without it no playbook can be run).
    pub fn with_playbooks(mut self, playbooks: Arc<super::playbooks::Playbooks>) -> DaemonState {
        self.playbooks = playbooks;
        self
    }

    /// Ready once the scheduler runs (and until shutdown begins).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
