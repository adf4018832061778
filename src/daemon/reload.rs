//! Hot reload (GitOps): a new revision applies only when every file is valid; otherwise the old
//! one keeps running and the problems are logged, shown at `/api/v1/status` and counted. Unchanged
//! checks keep their schedule state; baselines survive unless what a check measures changed.
//! Rules come from the daemon's source: a directory (watched with inotify) or a Consul KV prefix
//! (watched with blocking queries); both reload through the same all-or-nothing path.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::core::Daemon;
use super::jobs::jobs_from;
use super::state::{ReloadFailure, ReloadOutcome};
use crate::config::source::{ConsulSource, KvSnapshot, RulesSource};
use crate::config::{self, ProcessEnv, RuleSet};
use crate::store::NewEvent;

/// Quiet time after the last file change before reloading (editors and `git pull` write in bursts).
const DEBOUNCE: Duration = Duration::from_millis(500);

/// How long one blocking query on the Consul prefix waits (Consul's default).
const CONSUL_WAIT: Duration = Duration::from_secs(5 * 60);

/// Reloads whatever the rules source says now.
pub async fn reload(daemon: &Arc<Daemon>) -> ReloadOutcome {
    reload_from(daemon, None).await
}

/// Reloads from `snapshot` (what the Consul watch saw) when given, else from the source.
pub async fn reload_from(daemon: &Arc<Daemon>, snapshot: Option<Arc<KvSnapshot>>) -> ReloadOutcome {
    let _one_at_a_time = daemon.reload_lock.lock().await;
    let old = daemon.state.rules.load_full();
    let loaded = match (&daemon.rules_source, snapshot) {
        (RulesSource::Consul(consul), Some(snapshot)) => {
            consul.load_snapshot(&snapshot, &ProcessEnv)
        }
        (source, _) => source.load().await,
    };
    match loaded {
        Err(problems) => refuse(daemon, &old, problems).await,
        // The playbooks are read against the new rules and apply with them, or neither does.
        Ok(new) => match daemon.state.playbooks.prepare(&new) {
            Err(problems) => refuse(daemon, &old, problems).await,
            Ok(playbooks) => apply(daemon, &old, new, playbooks).await,
        },
    }
}

async fn refuse(
    daemon: &Arc<Daemon>,
    old: &RuleSet,
    problems: Vec<config::Diagnostic>,
) -> ReloadOutcome {
    for p in &problems {
        tracing::error!(
            "reload refused, revision {} keeps running: {p}",
            old.revision
        );
    }
    daemon.state.metrics.reload_failed();
    {
        let mut status = daemon.state.status.write().await;
        status.reload_failures += 1;
        status.last_reload_error = Some(ReloadFailure {
            at: Utc::now(),
            problems: problems.clone(),
        });
    }
    let data = serde_json::json!({"applied": false, "revision": old.revision.to_string(), "problems": problems});
    publish(daemon, data).await;
    ReloadOutcome {
        applied: false,
        revision: old.revision.to_string(),
        problems,
    }
}

async fn apply(
    daemon: &Arc<Daemon>,
    old: &RuleSet,
    new: RuleSet,
    playbooks: super::playbooks::load::PlaybookSet,
) -> ReloadOutcome {
    forget_changed_baselines(daemon, old, &new).await;
    // Series of removed checks, and of checks that moved to another service, leave /metrics.
    let moved = |c: &crate::config::Check| {
        new.check(c.name())
            .is_none_or(|n| n.common.service != c.common.service)
    };
    for gone in old.checks.iter().filter(|c| moved(c)) {
        daemon.state.metrics.forget_check(gone.name());
        if new.check(gone.name()).is_none() {
            daemon.check_states.lock().await.remove(gone.name());
        }
    }
    let revision = new.revision.to_string();
    let jobs = jobs_from(&new, daemon.timezone);
    // Receivers may have changed: the outbox sender restarts with the new ones.
    let observer = Arc::new(super::alerts::MetricsObserver(daemon.state.clone()))
        as Arc<dyn crate::alert::outbox::OutboxObserver>;
    daemon
        .alerting
        .start_sender(&daemon.state.store, &new, observer, &daemon.shutdown)
        .await;
    daemon.state.rules.store(Arc::new(new));
    daemon.state.playbooks.install(playbooks);
    if let Some(s) = daemon.scheduler.get() {
        s.replace_jobs(jobs);
    }
    daemon.state.metrics.set_revision(&revision);
    {
        let mut status = daemon.state.status.write().await;
        status.reloads += 1;
        status.revision = revision.clone();
        status.loaded_at = Utc::now();
        status.last_reload_error = None;
    }
    if revision != old.revision.to_string() {
        tracing::info!("rules reloaded: revision {} → {revision}", old.revision);
    }
    publish(daemon, serde_json::json!({"applied": true, "revision": revision, "previous": old.revision.to_string()})).await;
    ReloadOutcome {
        applied: true,
        revision,
        problems: Vec::new(),
    }
}

/// A check whose measured value changed (another query, URL, field) starts learning afresh.
async fn forget_changed_baselines(daemon: &Arc<Daemon>, old: &RuleSet, new: &RuleSet) {
    for check in &new.checks {
        let Some(before) = old.check(check.name()) else {
            continue;
        };
        if before.measure_fingerprint == check.measure_fingerprint {
            continue;
        }
        daemon
            .baselines
            .lock()
            .await
            .retain(|k, _| k.check != check.name());
        if let Err(e) = daemon.state.store.delete_baselines(check.name()).await {
            tracing::warn!(
                "could not drop the stored baselines of {}: {e}",
                check.name()
            );
        }
    }
}

async fn publish(daemon: &Arc<Daemon>, data: serde_json::Value) {
    let event = NewEvent {
        kind: "reload".into(),
        at: Utc::now(),
        data,
    };
    if let Err(e) = daemon
        .state
        .events
        .publish(&daemon.state.store, &[event])
        .await
    {
        tracing::warn!("could not store the reload event: {e}");
    }
}

/// Why a reload was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadCause {
    /// A file under a watched directory changed (or seemed to).
    FilesChanged,
    /// SIGHUP: reload whatever the source says.
    Signal,
    /// The Consul watch saw other rules under the prefix: this snapshot of it.
    ConsulChanged(Arc<KvSnapshot>),
}

/// Reload requests that piled up, answered by one reload (a file change alone is one when the
/// files' digest moved; see `reload_requests`).
#[derive(Debug, Default)]
pub struct Pending {
    pub signalled: bool,
    /// The latest snapshot the Consul watch sent (later ones are newer).
    pub snapshot: Option<Arc<KvSnapshot>>,
}

impl Pending {
    pub fn add(&mut self, cause: ReloadCause) {
        match cause {
            ReloadCause::FilesChanged => {}
            ReloadCause::Signal => self.signalled = true,
            ReloadCause::ConsulChanged(snapshot) => self.snapshot = Some(snapshot),
        }
    }
}

/// Watches the Consul prefix with blocking queries until `shutdown` and asks for a reload with
/// every snapshot whose rules differ from the last seen (`current`: the loaded rules' hash).
pub fn watch_consul(
    source: ConsulSource,
    current: String,
    requests: mpsc::UnboundedSender<ReloadCause>,
    shutdown: CancellationToken,
) {
    tracing::info!("watching {source} for rule changes (blocking queries)");
    tokio::spawn(async move {
        source
            .watch(current, CONSUL_WAIT, shutdown, |snapshot| {
                tracing::info!(
                    "the rules under {source} changed (index {}): reloading",
                    snapshot.index
                );
                let _ = requests.send(ReloadCause::ConsulChanged(Arc::new(snapshot)));
            })
            .await;
    });
}

/// A digest of every rule and playbook file (names and contents) the daemon reads. Watchers
/// report several events for one save (create, write, rename, attribute change) and a
/// `git checkout` touches files without changing them: a file-change request whose digest
/// equals the last attempt's is the same attempt again and is skipped, so one broken save is
/// one refused reload in the counters, not five.
pub fn files_digest(dirs: &[std::path::PathBuf]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for file in config::yaml_files(dirs) {
        hash.update(file.to_string_lossy().as_bytes());
        hash.update([0]);
        match std::fs::read(&file) {
            Ok(bytes) => {
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
            // Unreadable now: differs from any readable content, so the reload reports it.
            Err(e) => hash.update(format!("unreadable: {e}").as_bytes()),
        }
    }
    hash.finalize().into()
}

/// Watches the rules directory and asks for a reload after each burst of changes. The returned
/// watcher must be kept alive.
pub fn watch(
    dir: &Path,
    requests: mpsc::UnboundedSender<ReloadCause>,
) -> Result<impl Drop, String> {
    let mut debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| {
        let relevant = res
            .map(|events| events.iter().any(|e| is_rule_file(&e.path)))
            .unwrap_or(true);
        if relevant {
            let _ = requests.send(ReloadCause::FilesChanged);
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    debouncer
        .watcher()
        .watch(dir, notify::RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    Ok(debouncer)
}

fn is_rule_file(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "yaml" || x == "yml") || path.is_dir()
}
