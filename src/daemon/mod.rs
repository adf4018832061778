//! `patrol daemon`: the unattended main job. Checks and suites run on their schedules within shared
//! limits; results are judged against in-memory baselines and written in batches; scores are kept;
//! rules reload atomically (from a watched directory, or from Consul KV watched with blocking
//! queries); the API serves status, metrics and a live event stream.

pub(crate) mod alerts;
mod core;
pub mod events;
mod jobs;
mod models;
pub mod playbooks;
mod reload;
mod reports;
mod scores;
pub mod state;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use self::core::{Daemon, DaemonControl, DaemonRunner};
use self::events::EventBus;
use self::reload::{Pending, ReloadCause};
use self::state::DaemonState;
use self::writer::Writer;
use crate::cli::{DEFAULT_STORE, EXIT_INVALID, EXIT_OK};
use crate::config::source::{RulesSource, bootstrap};
use crate::config::{self, ProcessEnv, duration};
use crate::engine::Limits;
use crate::schedule::{JobKey, Scheduler, SystemClock};
use crate::store::Store;

pub use self::jobs::{check_job, jobs_from, system_timezone};

#[derive(clap::Args, Debug, Clone)]
pub struct DaemonArgs {
    /// Where the rules come from: a directory (watched for changes) or
    /// consul://HOST:PORT/PREFIX (`consuls://` or `?tls` for HTTPS; every key under PREFIX ending
    /// in .yaml/.yml, watched with blocking queries; token in CONSUL_HTTP_TOKEN). Default: the
    /// --config file's `rules_source`, else `rules`; given here, it wins over the file.
    #[arg(long, value_name = "DIR|consul://HOST:PORT/PREFIX")]
    pub rules: Option<String>,
    /// Bootstrap file: `rules_source:` (a directory or consul:// URL) and `consul_token:` (by
    /// reference: `${env:NAME}` or `${file:PATH}`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "PATROL_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Address of the API, /metrics and the status page.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Time zone of cron schedules without their own (default: the system's).
    #[arg(long)]
    pub timezone: Option<String>,
    /// How long in-flight checks may finish after SIGTERM.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub grace: Duration,
    /// Bearer token required by mutating API endpoints (required for a non-loopback --listen).
    #[arg(long, env = "PATROL_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Results, runs, scores and events older than this are pruned daily.
    #[arg(long, default_value = "30d", value_parser = duration::parse)]
    pub retention: Duration,
    /// Checks running at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Checks running at once against one target.
    #[arg(long, default_value_t = 4)]
    pub per_target: usize,
    /// Base URL of patrol as people reach it (links in notifications); default: http://LISTEN.
    #[arg(long, env = "PATROL_EXTERNAL_URL")]
    pub external_url: Option<String>,
    /// How often firing alerts are pushed again to `alertmanager` receivers (keep it below their
    /// `resolve_timeout`, default 5m).
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub repush_every: Duration,
    /// How often health scores are evaluated.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub score_every: Duration,
    /// Directory of the `kind: playbook` files (default: `playbooks`; the rules' `playbooks.dir`
    /// wins). A missing directory means no playbooks.
    #[arg(long, value_name = "DIR")]
    pub playbooks: Option<PathBuf>,
    /// Suite runs write their reports here (`<suite>-<timestamp>.{html,md,json,xml}`); default:
    /// no files (a suite's `notify:` receivers still get the summary).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

/// Runs the daemon until SIGTERM/SIGINT; exit code 0 after a clean drain, 2 for bad input.
pub async fn run(args: DaemonArgs) -> u8 {
    match start(args).await {
        Ok(()) => EXIT_OK,
        Err(message) => {
            eprintln!("patrol daemon: {message}");
            EXIT_INVALID
        }
    }
}

async fn start(args: DaemonArgs) -> Result<(), String> {
    if !args.listen.ip().is_loopback() && args.api_token.is_none() {
        return Err(format!(
            "refusing to listen on {} without --api-token (or PATROL_API_TOKEN): the API can start runs and reloads",
            args.listen
        ));
    }
    let timezone = match &args.timezone {
        Some(tz) => crate::schedule::parse_timezone(tz)?,
        None => system_timezone(),
    };
    let source = rules_source(&args)?;
    let rules = source.load().await.map_err(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        format!("{} problem(s) in the rules; not starting", problems.len())
    })?;
    let store = Store::open(&args.store).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let external_url = external_url(&args, bound);
    let playbooks = load_playbooks(&args, &rules, &store, &external_url)?;
    recover_drill_faults(&store, &rules).await;
    let daemon = assemble(
        &args,
        source,
        rules,
        store,
        playbooks,
        external_url,
        timezone,
    )
    .await?;
    let shutdown = daemon.shutdown.clone();
    let observer = Arc::new(alerts::MetricsObserver(daemon.state.clone()))
        as Arc<dyn crate::alert::outbox::OutboxObserver>;
    let rules_now = daemon.state.rules.load_full();
    daemon
        .alerting
        .start_sender(&daemon.state.store, &rules_now, observer, &shutdown)
        .await;
    let api = tokio::spawn(crate::api::serve(
        listener,
        daemon.state.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    let (reload_tx, reload_rx) = mpsc::unbounded_channel();
    let _rules_watcher = match &daemon.rules_source {
        RulesSource::Dir(dir) => reload::watch(dir, reload_tx.clone())
            .map_err(|e| tracing::warn!("{e}; reload with SIGHUP or POST /api/v1/reload"))
            .ok(),
        RulesSource::Consul(consul) => {
            let current = daemon.state.rules.load().revision.files.clone();
            reload::watch_consul(consul.clone(), current, reload_tx.clone(), shutdown.clone());
            None
        }
    };
    // Edited playbooks apply like edited rules (read against them, all or nothing).
    let playbooks_dir = daemon.state.playbooks.dir_for(&daemon.state.rules.load());
    let _playbooks_watcher = playbooks_dir
        .is_dir()
        .then(|| reload::watch(&playbooks_dir, reload_tx.clone()).ok())
        .flatten();
    tokio::spawn(reload_requests(daemon.clone(), reload_rx));
    tokio::spawn(on_sighup(reload_tx));
    tokio::spawn(score_loop(
        daemon.clone(),
        args.score_every,
        shutdown.clone(),
    ));
    tokio::spawn(alertmanager_repush_loop(
        daemon.clone(),
        args.repush_every,
        shutdown.clone(),
    ));
    tokio::spawn(alerts::reminder_loop(daemon.clone(), shutdown.clone()));
    tokio::spawn(models::refit_loop(daemon.clone(), shutdown.clone()));
    tokio::spawn(retention_loop(
        daemon.state.store.clone(),
        args.retention,
        shutdown.clone(),
    ));
    daemon.state.set_ready(true);
    tracing::info!("rules from {}", daemon.rules_source);
    // The bound address, not the flag: with `--listen 127.0.0.1:0` this tells which port it got.
    tracing::info!(
        "patrol daemon listening on {}, revision {}",
        bound,
        daemon.state.rules.load().revision
    );
    wait_for_termination().await;
    drain(&daemon, args.grace, &shutdown).await;
    let _ = api.await;
    Ok(())
}

/// Where the rules come from: `--rules`, else the bootstrap file's `rules_source`, else `rules`;
/// the Consul token from the bootstrap file, else `CONSUL_HTTP_TOKEN`.
fn rules_source(args: &DaemonArgs) -> Result<RulesSource, String> {
    let boot = match &args.config {
        Some(file) => bootstrap::read(file, &ProcessEnv).map_err(|problems| {
            for p in &problems {
                eprintln!("{p}");
            }
            format!(
                "{} problem(s) in {}; not starting",
                problems.len(),
                file.display()
            )
        })?,
        None => bootstrap::Bootstrap::default(),
    };
    boot.source(args.rules.as_deref(), &ProcessEnv)
}

/// A drill killed with -9 may have left faults injected (a paused process, a Redis pause): the
/// daemon reverts whatever the fault journal still holds as active before it starts inspecting,
/// so the inspection does not measure a leftover fault. Faults of a drill that is still running
/// (in another process) are left to it.
async fn recover_drill_faults(store: &Store, rules: &config::RuleSet) {
    let ctx = crate::chaos::fault::FaultContext {
        rules: Arc::new(rules.clone()),
        proxies: Default::default(),
        base_dir: std::env::current_dir().unwrap_or_default(),
    };
    match crate::chaos::fault::recover(store, &ctx).await {
        Ok(outcomes) => {
            for o in outcomes {
                tracing::warn!("fault left active by a drill: {o}");
            }
        }
        Err(e) => tracing::error!("cannot read the fault journal to revert leftover faults: {e}"),
    }
}

/// Base URL of patrol as people reach it: `--external-url`, else `http://` and the address
/// bound (with `--listen 127.0.0.1:0`, the port it got).
fn external_url(args: &DaemonArgs, bound: SocketAddr) -> String {
    args.external_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
}

/// The playbooks for `rules` and their runner; an invalid playbook (or a rule naming a missing
/// one) keeps the daemon from starting, as an invalid rule does.
fn load_playbooks(
    args: &DaemonArgs,
    rules: &config::RuleSet,
    store: &Store,
    external_url: &str,
) -> Result<Arc<playbooks::Playbooks>, String> {
    let runs = playbooks::RunContext {
        store: store.clone(),
        external_url: external_url.to_string(),
    };
    let playbooks = playbooks::Playbooks::new(args.playbooks.clone(), runs);
    let set = playbooks.prepare(rules).map_err(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        format!(
            "{} problem(s) in the playbooks; not starting",
            problems.len()
        )
    })?;
    playbooks.install(set);
    Ok(Arc::new(playbooks))
}

/// Builds the daemon: cached baselines and check states, the writer, the scheduler, and the
/// token cancelled at shutdown.
async fn assemble(
    args: &DaemonArgs,
    source: RulesSource,
    rules: config::RuleSet,
    store: Store,
    playbooks: Arc<playbooks::Playbooks>,
    external_url: String,
    timezone: chrono_tz::Tz,
) -> Result<Arc<Daemon>, String> {
    let shutdown = CancellationToken::new();
    let alerting = alerts::Alerting::load(&store, external_url).await?;
    let names: Vec<String> = rules.checks.iter().map(|c| c.name().to_string()).collect();
    let baselines = store.baselines(&names).await.map_err(|e| e.to_string())?;
    let memories = crate::engine::load_memories(&store, &rules.checks)
        .await
        .map_err(|e| e.to_string())?;
    let check_states = store.check_states().await.map_err(|e| e.to_string())?;
    let last_runs = store.job_last_runs().await.map_err(|e| e.to_string())?;
    let rules = Arc::new(rules);
    let events = EventBus::new();
    alerting.announce_on(events.clone());
    let writer = Writer::start(store.clone(), events.clone());
    let daemon = Arc::new_cyclic(|weak| {
        let control = Arc::new(DaemonControl(weak.clone()));
        let state = Arc::new(
            DaemonState::new(
                rules.clone(),
                store,
                events,
                control,
                args.api_token.clone(),
            )
            .with_playbooks(playbooks),
        );
        Daemon {
            state,
            rules_source: source,
            timezone,
            limits: Limits::new(args.concurrency, args.per_target),
            writer,
            baselines: Mutex::new(baselines),
            models: models::Models::default(),
            memories: Mutex::new(memories),
            check_states: Mutex::new(check_states),
            scheduler: std::sync::OnceLock::new(),
            reload_lock: Mutex::new(()),
            low_scores: Mutex::new(crate::score::LowScoreWatch::default()),
            published_scores: Mutex::new(HashMap::new()),
            api_runs: tokio_util::task::TaskTracker::new(),
            alerting,
            shutdown,
            report_dir: args.report_dir.clone(),
        }
    });
    daemon
        .state
        .metrics
        .set_revision(&rules.revision.to_string());
    let last_runs: HashMap<JobKey, chrono::DateTime<chrono::Utc>> = last_runs
        .into_iter()
        .filter_map(|(k, t)| JobKey::parse(&k).map(|k| (k, t)))
        .collect();
    let runner = Arc::new(DaemonRunner(Arc::downgrade(&daemon)));
    let handle = Scheduler::start(
        Arc::new(SystemClock),
        runner,
        jobs_from(&rules, timezone),
        last_runs,
    );
    let _ = daemon.scheduler.set(handle);
    Ok(daemon)
}

async fn reload_requests(daemon: Arc<Daemon>, mut rx: mpsc::UnboundedReceiver<ReloadCause>) {
    // The files the daemon reads: the rules directory (not for Consul) and the playbooks.
    let watched = |d: &Daemon| {
        let playbooks = d.state.playbooks.dir_for(&d.state.rules.load());
        let rules_dir = d.rules_source.dir().map(std::path::Path::to_path_buf);
        rules_dir.into_iter().chain([playbooks]).collect::<Vec<_>>()
    };
    // Unknown at first: the files may have changed since the start's load, before this task ran.
    let mut last_attempt = None;
    while let Some(first) = rx.recv().await {
        // Requests that piled up during a reload are answered by the next one.
        let mut pending = Pending::default();
        pending.add(first);
        while let Ok(cause) = rx.try_recv() {
            pending.add(cause);
        }
        let digest = reload::files_digest(&watched(&daemon));
        // The Consul watch sends a snapshot only when the rules in it changed.
        let forced = pending.signalled || pending.snapshot.is_some();
        if !forced && last_attempt == Some(digest) {
            tracing::debug!("rule files unchanged since the last reload attempt");
            daemon.state.metrics.reload_unchanged();
            continue;
        }
        last_attempt = Some(digest);
        // A signal reloads whatever the source says now; otherwise the watch's snapshot applies.
        let snapshot = pending.snapshot.filter(|_| !pending.signalled);
        reload::reload_from(&daemon, snapshot).await;
    }
}

#[cfg(unix)]
async fn on_sighup(reload: mpsc::UnboundedSender<ReloadCause>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let _ = reload.send(ReloadCause::Signal);
    }
}

#[cfg(not(unix))]
async fn on_sighup(_reload: mpsc::UnboundedSender<ReloadCause>) {}

async fn score_loop(daemon: Arc<Daemon>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_skipped: HashMap<String, u64> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        scores::evaluate_now(&daemon).await;
        export_skips(&daemon, &mut last_skipped);
    }
}

/// Keeps firing alerts alive in Alertmanager receivers (they expire at `resolve_timeout`).
async fn alertmanager_repush_loop(
    daemon: Arc<Daemon>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let rules = daemon.state.rules.load_full();
        daemon
            .alerting
            .repush_to_alertmanagers(&daemon.state.store, &rules, chrono::Utc::now())
            .await;
    }
}

/// Carries the scheduler's skip counts into `patrol_schedule_skipped_total`.
fn export_skips(daemon: &Daemon, last: &mut HashMap<String, u64>) {
    let Some(s) = daemon.scheduler.get() else {
        return;
    };
    for (key, job) in s.stats().jobs {
        let JobKey::Check(name) = &key else { continue };
        let seen = last.entry(name.clone()).or_insert(0);
        for _ in *seen..job.skipped {
            daemon.state.metrics.skipped(name);
        }
        *seen = job.skipped;
    }
}

/// Prunes what is older than the retention once at start and then daily.
async fn retention_loop(store: Store, retention: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let before = chrono::Utc::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
        match store.prune(before).await {
            Ok(counts) => tracing::info!("retention: pruned {counts:?} older than {before}"),
            Err(e) => tracing::warn!("retention: pruning failed: {e}"),
        }
    }
}

async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Stops scheduling, lets in-flight checks finish within `grace`, flushes the writer, stops the API.
async fn drain(daemon: &Arc<Daemon>, grace: Duration, shutdown: &CancellationToken) {
    tracing::info!(
        "shutting down: letting in-flight checks finish (up to {})",
        duration::format(grace)
    );
    daemon.state.set_ready(false);
    daemon.api_runs.close();
    let playbook_runs = daemon.state.playbooks.tasks();
    playbook_runs.close();
    let scheduled = async {
        if let Some(s) = daemon.scheduler.get() {
            s.shutdown().await;
            s.drained().await;
        }
    };
    let in_flight = async { tokio::join!(scheduled, daemon.api_runs.wait(), playbook_runs.wait()) };
    if tokio::time::timeout(grace, in_flight).await.is_err() {
        let scheduled = daemon.scheduler.get().map_or(0, |s| s.in_flight());
        tracing::warn!(
            "{} scheduled and {} API run(s) still running after the grace period; their results are lost",
            scheduled,
            daemon.api_runs.len()
        );
        if !playbook_runs.is_empty() {
            tracing::warn!(
                "{} playbook run(s) still running after the grace period are cut short",
                playbook_runs.len()
            );
        }
    }
    daemon.writer.flush().await;
    shutdown.cancel();
}
