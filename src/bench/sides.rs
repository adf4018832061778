//! The two schedulers the benchmark compares, doing identical work per fire (shared limits, then
//! the engine's `execute_check`, the daemon's measuring path) against the same checks:
//!
//! - `patrol`: the daemon's [`Scheduler`] (one task, one timer, a heap of due jobs) with a
//!   [`JobRunner`] like the daemon's;
//! - `naive`: the peer — one tokio task per check looping on `tokio::time::interval`.
//!
//! Both count only fires planned inside the measured window, so with `every` equal to the
//! window each check runs exactly once on each side, and lateness is measured the same way:
//! when the check starts measuring (permits held) minus its planned start (jitter included).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::usage::{CpuTime, Memory, reset_peak_rss};
use crate::config::{Check, RuleSet};
use crate::engine::{Limits, execute_check};
use crate::schedule::{
    Job, JobKey, JobRunner, LatencyHistogram, LatenessSummary, Scheduler, SystemClock,
    jitter_offset,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// patrol's scheduler: one task, a heap of due jobs.
    Patrol,
    /// The peer: one tokio task with a tokio::time::interval per check.
    Naive,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Patrol => "patrol: one scheduler task + heap",
            Side::Naive => "naive: 1 tokio task + interval per check",
        }
    }
}

#[derive(Clone, Debug)]
pub struct SideOptions {
    /// The measured window; fires planned after it are not run.
    pub window: Duration,
    pub concurrency: usize,
    pub per_target: usize,
    /// How long runs started in the window may take to finish after it.
    pub grace: Duration,
}

/// Lateness quantiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatenessMs {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl From<LatenessSummary> for LatenessMs {
    fn from(s: LatenessSummary) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        LatenessMs {
            count: s.count,
            p50: ms(s.p50),
            p99: ms(s.p99),
            max: ms(s.max),
            mean: ms(s.mean),
        }
    }
}

/// What one side did and cost (serialized from the side's process to the parent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideReport {
    pub side: Side,
    pub checks: usize,
    pub runs: u64,
    /// Runs whose result was `crit` or `error` (against the bench server: none expected).
    pub failed: u64,
    /// Check start (permits held) − planned start.
    pub lateness: LatenessMs,
    /// patrol only: the scheduler's own hand-over lateness (before waiting for permits).
    pub dispatch: Option<LatenessMs>,
    /// patrol only: fires skipped because the check was still running, and fires missed.
    pub skipped: u64,
    pub missed: u64,
    /// Whether every run started in the window finished within the grace period.
    pub drained: bool,
    pub wall_secs: f64,
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
    /// At the end of the window (peak: during it).
    pub memory: Option<Memory>,
    /// Resident memory when the window began (the loaded rules included).
    pub rss_at_start_kib: Option<u64>,
    /// Whether the peak RSS covers the window only (it was reset after loading the rules).
    pub peak_is_window_only: bool,
}

impl SideReport {
    pub fn cpu_secs(&self) -> f64 {
        self.cpu_user_secs + self.cpu_system_secs
    }
}

/// Counts and lateness of one side's runs.
#[derive(Default)]
struct Tally {
    lateness: Mutex<LatencyHistogram>,
    runs: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    fn started(&self, planned: DateTime<Utc>) {
        let late = (Utc::now() - planned).to_std().unwrap_or(Duration::ZERO);
        self.lateness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(late);
    }

    /// Measures and judges `check` the way the daemon does: permits, then `execute_check`.
    async fn measure(&self, check: &Check, limits: &Limits, planned: DateTime<Utc>, rev: &str) {
        let _permits = limits.acquire(check).await;
        self.started(planned);
        let run_id = uuid::Uuid::now_v7().to_string();
        let judged = execute_check(check, &crate::engine::Known::default(), &run_id, rev).await;
        self.runs.fetch_add(1, Ordering::Relaxed);
        if judged.results.iter().any(|r| r.fails_run()) {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `side` over `rules`' checks for the window and reports it. CPU and peak RSS are the
/// calling process's, from here on.
pub async fn run_side(side: Side, rules: &RuleSet, opts: &SideOptions) -> SideReport {
    let peak_is_window_only = reset_peak_rss();
    let rss_at_start_kib = Memory::now().map(|m| m.current_kib);
    let cpu_before = CpuTime::now();
    let wall = Instant::now();
    let tally = Arc::new(Tally::default());
    let limits = Limits::new(opts.concurrency, opts.per_target);
    let revision = rules.revision.to_string();
    let mut report = SideReport {
        side,
        checks: rules.checks.len(),
        runs: 0,
        failed: 0,
        lateness: LatenessMs::default(),
        dispatch: None,
        skipped: 0,
        missed: 0,
        drained: false,
        wall_secs: 0.0,
        cpu_user_secs: 0.0,
        cpu_system_secs: 0.0,
        memory: None,
        rss_at_start_kib,
        peak_is_window_only,
    };
    match side {
        Side::Patrol => patrol(rules, opts, limits, tally.clone(), revision, &mut report).await,
        Side::Naive => naive(rules, opts, limits, tally.clone(), revision, &mut report).await,
    }
    let cpu = CpuTime::now().since(cpu_before);
    report.wall_secs = wall.elapsed().as_secs_f64();
    report.cpu_user_secs = cpu.user.as_secs_f64();
    report.cpu_system_secs = cpu.system.as_secs_f64();
    report.memory = Memory::now();
    report.runs = tally.runs.load(Ordering::Relaxed);
    report.failed = tally.failed.load(Ordering::Relaxed);
    report.lateness = lock_summary(&tally.lateness);
    report
}

fn lock_summary(h: &Mutex<LatencyHistogram>) -> LatenessMs {
    h.lock().unwrap_or_else(|e| e.into_inner()).summary().into()
}

/// The daemon's scheduler, started on the system clock, stopped after the window.
async fn patrol(
    rules: &RuleSet,
    opts: &SideOptions,
    limits: Arc<Limits>,
    tally: Arc<Tally>,
    revision: String,
    report: &mut SideReport,
) {
    let runner = Arc::new(BenchRunner {
        checks: rules
            .checks
            .iter()
            .map(|c| (c.name().to_string(), (c.clone(), offset_of(c))))
            .collect(),
        limits,
        tally,
        revision,
        origin: OnceLock::new(),
        window: TimeDelta::from_std(opts.window).unwrap_or(TimeDelta::MAX),
    });
    let jobs = rules.checks.iter().filter_map(|c| job_of(c)).collect();
    let scheduler = Scheduler::start(Arc::new(SystemClock), runner, jobs, HashMap::new());
    tokio::time::sleep(opts.window).await;
    // Start whatever was planned inside the window, then stop planning.
    scheduler.poll_now().await;
    scheduler.shutdown().await;
    report.drained = tokio::time::timeout(opts.grace, scheduler.drained())
        .await
        .is_ok();
    let stats = scheduler.stats();
    report.dispatch = Some(stats.lateness.into());
    report.skipped = stats.jobs.values().map(|j| j.skipped).sum();
    report.missed = stats.jobs.values().map(|j| j.missed).sum();
}

/// A check's job as the daemon plans it (cron schedules in UTC here).
fn job_of(check: &Check) -> Option<Job> {
    crate::daemon::check_job(check, chrono_tz::Tz::UTC)
}

/// The check's jitter offset, as the scheduler computes it.
fn offset_of(check: &Check) -> Duration {
    let key = JobKey::Check(check.name().to_string()).to_string();
    jitter_offset(&key, check.common.jitter.unwrap_or(Duration::ZERO))
}

struct BenchRunner {
    /// Each check with its jitter offset.
    checks: HashMap<String, (Arc<Check>, Duration)>,
    limits: Arc<Limits>,
    tally: Arc<Tally>,
    revision: String,
    /// The scheduler's start: the unjittered time of the first fire handed over (every job's
    /// first fire is planned from the same start, so it is the same for all).
    origin: OnceLock<DateTime<Utc>>,
    window: TimeDelta,
}

impl BenchRunner {
    /// The check to run for this fire, when the fire is planned inside the window.
    fn check_for(&self, key: &JobKey, planned: DateTime<Utc>) -> Option<Arc<Check>> {
        let JobKey::Check(name) = key else {
            return None;
        };
        let (check, offset) = self.checks.get(name)?;
        let base = planned - TimeDelta::from_std(*offset).ok()?;
        let origin = *self.origin.get_or_init(|| base);
        (base - origin < self.window).then(|| check.clone())
    }
}

impl JobRunner for BenchRunner {
    fn run(&self, key: JobKey, planned: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let check = self.check_for(&key, planned);
        let (limits, tally, revision) = (
            self.limits.clone(),
            self.tally.clone(),
            self.revision.clone(),
        );
        Box::pin(async move {
            if let Some(check) = check {
                tally.measure(&check, &limits, planned, &revision).await;
            }
        })
    }
}

/// The peer: a task per check, each waiting on its own `tokio::time::interval`.
async fn naive(
    rules: &RuleSet,
    opts: &SideOptions,
    limits: Arc<Limits>,
    tally: Arc<Tally>,
    revision: String,
    report: &mut SideReport,
) {
    let (start, start_utc) = (tokio::time::Instant::now(), Utc::now());
    let deadline = start + opts.window;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for check in rules.checks.iter().cloned() {
        let Some(every) = check.common.every else {
            continue;
        };
        let offset = offset_of(&check);
        let (limits, tally, revision, stop) = (
            limits.clone(),
            tally.clone(),
            revision.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let mut interval = tokio::time::interval_at(start + offset, every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                let tick = tokio::select! {
                    biased;
                    tick = interval.tick() => tick,
                    _ = stop.cancelled() => break,
                };
                if tick >= deadline {
                    break;
                }
                let planned = start_utc + (tick - start);
                tally.measure(&check, &limits, planned, &revision).await;
            }
        });
    }
    tokio::time::sleep_until(deadline).await;
    stop.cancel();
    let finished = tokio::time::timeout(opts.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    report.drained = finished.is_ok();
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both sides against a local server: 40 checks every second with a second of jitter over a
    /// one-second window run exactly once each, all passing, with lateness measured.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_sides_run_every_check_once_in_the_window() {
        crate::install_crypto_provider();
        let port = super::super::server::start().await.expect("bench server");
        let dir = tempfile::tempdir().unwrap();
        let rules =
            super::super::write_rules(dir.path(), port, 40, Duration::from_secs(1)).expect("rules");
        let opts = SideOptions {
            window: Duration::from_secs(1),
            concurrency: 8,
            per_target: 4,
            grace: Duration::from_secs(20),
        };
        for side in [Side::Patrol, Side::Naive] {
            let r = run_side(side, &rules, &opts).await;
            assert_eq!((r.checks, r.runs, r.failed), (40, 40, 0), "{r:?}");
            assert!(r.drained, "{r:?}");
            assert_eq!(r.lateness.count, 40);
            assert!(r.lateness.max >= r.lateness.p99 && r.lateness.p99 >= r.lateness.p50);
            assert!(r.wall_secs >= 1.0 && r.cpu_secs() > 0.0, "{r:?}");
            assert!(r.memory.is_some_and(|m| m.peak_kib > 0));
            match side {
                Side::Patrol => {
                    // Hand-overs just after the window are counted there but not run.
                    assert!(r.dispatch.is_some_and(|d| d.count >= 40), "{r:?}");
                    assert_eq!((r.skipped, r.missed), (0, 0));
                }
                Side::Naive => assert_eq!(r.dispatch, None),
            }
        }
    }
}
