//! Running a drill: proxies and preflight → steady state before (nothing is injected unless it
//! holds) → workload → faults on the timeline with steady-state probes feeding `abort_when` →
//! drain (measuring recovery) → steady state after → rollback steps → verify → report.
//!
//! Whatever happens — an abort rule, SIGINT/SIGTERM (see [`Interrupt::on_signals`]), a fault that
//! cannot be injected, a panicking fault task — every injected fault is reverted before the
//! report is written.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::abort::AbortWatch;
use super::faults::{FaultEvent, FaultPhase, RunIds};
use super::interrupt::Interrupt;
use super::load_driver::LoadDriver;
use super::progress::{Progress, Status};
use super::recovery::RecoveryWatch;
use super::report::{DrillReport, DrillStatus, SteadyRecord, StepRecord, WorkloadRecord};
use super::spec::{Drill, RecoveryFrom};
use super::steady::{Prober, SteadySnapshot};
use super::verify::{judge_checks, judge_metrics};
use crate::chaos::fault::{FaultContext, Journal};
use crate::chaos::proxy::FaultProxy;
use crate::store::Store;

/// What the runner needs besides the drill.
pub struct RunSettings {
    pub store: Store,
    /// Draw the live progress line (when stderr is a terminal).
    pub live: bool,
    pub interrupt: Interrupt,
}

/// Runs `drill`. `Err` when it could not start (a proxy cannot listen, preflight failed):
/// nothing was injected then.
pub async fn run_drill(drill: &Drill, settings: &RunSettings) -> Result<DrillReport, String> {
    let started = Instant::now();
    let started_at = Utc::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let progress = Progress::new(settings.live, started);
    let proxies = start_proxies(drill).await?;
    let ctx = Arc::new(FaultContext {
        rules: drill.rules.clone(),
        proxies: proxies.clone(),
        base_dir: base_dir(&drill.file),
    });
    let clock = Clock {
        started,
        started_at,
        wall_limit: wall_limit(drill).map(|above| started + above),
    };
    let result = run_with_proxies(drill, settings, &ctx, &run_id, &clock, &progress).await;
    for proxy in proxies.values() {
        proxy.shutdown().await;
    }
    progress.finish();
    result
}

async fn run_with_proxies(
    drill: &Drill,
    settings: &RunSettings,
    ctx: &Arc<FaultContext>,
    run_id: &str,
    clock: &Clock,
    progress: &Progress,
) -> Result<DrillReport, String> {
    let started = clock.started;
    let mut status = Status {
        phase: "preflight",
        ..Status::default()
    };
    progress.show(&status);
    preflight(drill, ctx).await?;
    let names = Prober::check_names(drill);
    let baselines = settings
        .store
        .baselines(&names)
        .await
        .map_err(|e| format!("store: {e}"))?;
    let prober = Prober::new(drill, baselines, run_id, started);
    prober.load_memories(&settings.store).await?;
    let prober = Arc::new(prober);
    let mut run = Run::new(drill, run_id, clock.started_at);

    status.phase = "steady state before";
    progress.show(&status);
    let before = tokio::select! {
        (snapshot, _) = prober.probe_all() => snapshot,
        reason = clock.stop(&settings.interrupt) => return Ok(run.finish(DrillStatus::Aborted, Some(reason), started)),
    };
    let holds = before.holds;
    let failures = before.failures();
    run.steady.before = Some(before);
    if !holds {
        let reason = format!(
            "the steady state does not hold before the drill, so nothing was injected: {failures}"
        );
        return Ok(run.finish(DrillStatus::Failed, Some(reason), started));
    }

    status.phase = "workload";
    progress.show(&status);
    let load = match LoadDriver::start(&drill.workload) {
        Ok(l) => l,
        Err(e) => return Ok(run.finish(DrillStatus::Aborted, Some(e), started)),
    };

    let journal = Journal::new(settings.store.clone());
    let ids = RunIds {
        run_id: run_id.to_string(),
        drill: drill.name.clone(),
    };
    let fault_phase = FaultPhaseRun {
        drill,
        prober: prober.clone(),
        interrupt: settings.interrupt.clone(),
        started,
        progress,
    };
    let outcome = fault_phase
        .run(ctx.clone(), journal, &ids, &load, &mut status)
        .await;
    run.faults = outcome.records;
    run.steady.during = outcome.during;
    run.scores = outcome.scores;

    if let Some(reason) = settings.interrupt.reason().or(outcome.abort) {
        status.phase = "rollback";
        progress.show(&status);
        run.workload = load.finish(Duration::ZERO).await;
        run.rollback = rollback(drill).await;
        return Ok(run.finish(DrillStatus::Aborted, Some(reason), started));
    }

    status.phase = "drain";
    status.active.clear();
    progress.show(&status);
    let drained = tokio::select! {
        w = load.finish(drill.drain) => Some(w),
        reason = clock.stop(&settings.interrupt) => { run.abort = Some(reason); None }
    };
    run.recovery_ms = match (outcome.recovery, &run.abort) {
        (Some(watch), None) => watch.result().await,
        (Some(watch), Some(_)) => {
            watch.cancel();
            None
        }
        (None, _) => None,
    };
    run.workload = drained.unwrap_or_default();
    if run.abort.is_none() {
        status.phase = "steady state after";
        progress.show(&status);
        tokio::select! {
            (snapshot, _) = prober.probe_all() => run.steady.after = Some(snapshot),
            reason = clock.stop(&settings.interrupt) => run.abort = Some(reason),
        }
    }
    status.phase = "rollback";
    progress.show(&status);
    run.rollback = rollback(drill).await;
    if let Some(reason) = run.abort.take() {
        return Ok(run.finish(DrillStatus::Aborted, Some(reason), started));
    }
    run.judge(drill);
    let (verdict, reason) = run.verdict();
    Ok(run.finish(verdict, reason, started))
}

/// When the drill started, and when its wall-time abort (if any) falls.
struct Clock {
    started: Instant,
    started_at: chrono::DateTime<Utc>,
    wall_limit: Option<Instant>,
}

impl Clock {
    /// Resolves with the reason to stop: a signal (or another trigger), or the wall-time limit.
    /// The fault phase watches the wall time itself, with the other abort rules.
    async fn stop(&self, interrupt: &Interrupt) -> String {
        let limit = async {
            match self.wall_limit {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = interrupt.wait() => reason,
            _ = limit => {
                let above = self.wall_limit.map(|at| at - self.started).unwrap_or_default();
                format!("abort_when: wall time is above {}", crate::config::duration::format(above))
            }
        }
    }
}

/// The tightest `wall_time` abort of the drill.
fn wall_limit(drill: &Drill) -> Option<Duration> {
    drill
        .abort_when
        .iter()
        .filter_map(|a| match a {
            super::spec::AbortRule::WallTime { above } => Some(*above),
            _ => None,
        })
        .min()
}

/// Starts every declared proxy (they live for the whole drill, faults or not: the workload and
/// the steady-state checks go through them).
async fn start_proxies(drill: &Drill) -> Result<HashMap<String, FaultProxy>, String> {
    let mut out = HashMap::new();
    for spec in &drill.proxies {
        match FaultProxy::start(spec).await {
            Ok(p) => {
                out.insert(spec.name.clone(), p);
            }
            Err(e) => {
                for p in out.values() {
                    FaultProxy::shutdown(p).await;
                }
                return Err(format!(
                    "proxy {}: cannot listen on {}: {e}",
                    spec.name, spec.listen
                ));
            }
        }
    }
    Ok(out)
}

/// Every fault's own preflight (pidfile readable, target reachable, command present), all
/// reported together.
pub async fn preflight(drill: &Drill, ctx: &FaultContext) -> Result<(), String> {
    let mut problems = Vec::new();
    for f in &drill.faults {
        if let Err(e) = f.spec.preflight(ctx).await {
            problems.push(format!("fault #{} ({}): {e}", f.index + 1, f.spec.kind()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "preflight failed; nothing was injected:\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn base_dir(file: &Path) -> std::path::PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The extra rollback steps, each bounded by its timeout; all run even when one fails.
async fn rollback(drill: &Drill) -> Vec<StepRecord> {
    let mut out = Vec::new();
    for step in &drill.rollback {
        out.push(step.run(&base_dir(&drill.file)).await);
    }
    out
}

/// What the fault phase produced.
struct FaultPhaseOutcome {
    records: Vec<super::report::FaultRecord>,
    during: Vec<SteadySnapshot>,
    scores: Vec<super::abort::ScorePoint>,
    abort: Option<String>,
    recovery: Option<RecoveryWatch>,
}

struct FaultPhaseRun<'a> {
    drill: &'a Drill,
    prober: Arc<Prober>,
    interrupt: Interrupt,
    started: Instant,
    progress: &'a Progress,
}

impl FaultPhaseRun<'_> {
    async fn run(
        self,
        ctx: Arc<FaultContext>,
        journal: Journal,
        ids: &RunIds,
        load: &LoadDriver,
        status: &mut Status,
    ) -> FaultPhaseOutcome {
        let drill = self.drill;
        let (tx, mut events) = mpsc::unbounded_channel();
        let zero = Instant::now();
        let mut phase = FaultPhase::start(&drill.faults, zero, ctx, journal, ids, tx);
        let mut watch = AbortWatch::new(&drill.abort_when, drill.rules.clone());
        let (probe_tx, mut probes) = mpsc::channel(4);
        let prober_task = spawn_probes(self.prober.clone(), drill.probe_interval, probe_tx);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut active: BTreeMap<usize, String> = BTreeMap::new();
        let mut during = Vec::new();
        let mut abort = None;
        let mut recovery = None;
        let last = last_fault(drill);
        status.phase = "faults";
        while !phase.is_done() {
            tokio::select! {
                Some(()) = phase.join_next() => {}
                Some(event) = events.recv() => {
                    match self.on_event(event, &mut active, last, zero) {
                        Ok(Some(watch)) => recovery = Some(watch),
                        Ok(None) => {}
                        Err(reason) => { abort = Some(reason); break; }
                    }
                }
                Some((snapshot, results)) = probes.recv() => {
                    let reason = watch.after_probe(&snapshot, &results, Utc::now());
                    during.push(snapshot);
                    if let Some(reason) = reason { abort = Some(format!("abort_when: {reason}")); break; }
                }
                _ = tick.tick() => {
                    status.active = active.values().cloned().collect();
                    load.describe(status);
                    self.progress.show(status);
                    if let Some(reason) = watch.on_tick(self.started.elapsed(), load.lost_so_far()) {
                        abort = Some(format!("abort_when: {reason}")); break;
                    }
                }
                reason = self.interrupt.wait() => { abort = Some(reason); break; }
            }
        }
        prober_task.abort();
        // Every task reverts what it injected before it ends; on abort they are told to now.
        let records = phase.stop_and_collect().await;
        while let Ok(event) = events.try_recv() {
            if let Ok(Some(w)) = self.on_event(event, &mut active, last, zero) {
                recovery = Some(w);
            }
        }
        if abort.is_some() {
            recovery = None;
        }
        FaultPhaseOutcome {
            records,
            during,
            scores: watch.scores,
            abort,
            recovery,
        }
    }

    /// Tracks the active faults; starts the recovery watch at the last fault's revert (or inject);
    /// `Err` when the drill must stop.
    fn on_event(
        &self,
        event: FaultEvent,
        active: &mut BTreeMap<usize, String>,
        last: Option<usize>,
        zero: Instant,
    ) -> Result<Option<RecoveryWatch>, String> {
        let drill = self.drill;
        let from = drill.recovery;
        let watch_from = |at: Instant| {
            let deadline = zero + drill.fault_phase() + drill.drain;
            RecoveryWatch::start(self.prober.clone(), at, deadline, drill.probe_interval / 5)
        };
        match event {
            FaultEvent::Injected { index, at } => {
                let kind = drill
                    .faults
                    .iter()
                    .find(|f| f.index == index)
                    .map_or("", |f| f.spec.kind());
                active.insert(index, format!("#{} {kind}", index + 1));
                self.progress.println(&format!(
                    "+{} injected fault #{}",
                    secs(self.started),
                    index + 1
                ));
                let starts = last == Some(index) && from == RecoveryFrom::FromInject;
                Ok(starts.then(|| watch_from(at)))
            }
            FaultEvent::Reverted { index, at } => {
                active.remove(&index);
                self.progress.println(&format!(
                    "+{} reverted fault #{}",
                    secs(self.started),
                    index + 1
                ));
                let starts = last == Some(index) && from == RecoveryFrom::FromRevert;
                Ok(starts.then(|| watch_from(at)))
            }
            FaultEvent::Failed { index, error } => Err(format!(
                "fault #{} could not be injected: {error}",
                index + 1
            )),
        }
    }
}

fn secs(started: Instant) -> String {
    format!("{:.1}s", started.elapsed().as_secs_f64())
}

/// The fault recovery is measured from: the one that ends last (the later in the file on a tie).
fn last_fault(drill: &Drill) -> Option<usize> {
    drill
        .faults
        .iter()
        .max_by_key(|f| (f.end(), f.index))
        .map(|f| f.index)
}

/// Probes every probed check each `interval` and sends the snapshots.
fn spawn_probes(
    prober: Arc<Prober>,
    interval: Duration,
    tx: mpsc::Sender<(SteadySnapshot, Vec<crate::result::CheckResult>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the steady state was just measured
        loop {
            tick.tick().await;
            let probe = prober.probe_all().await;
            if tx.send(probe).await.is_err() {
                return;
            }
        }
    })
}

/// The report being assembled.
struct Run {
    name: String,
    file: std::path::PathBuf,
    run_id: String,
    revision: String,
    started_at: chrono::DateTime<Utc>,
    recovery_from: RecoveryFrom,
    faults: Vec<super::report::FaultRecord>,
    steady: SteadyRecord,
    recovery_ms: Option<f64>,
    workload: WorkloadRecord,
    verify: Vec<super::verify::VerifyLine>,
    rollback: Vec<StepRecord>,
    scores: Vec<super::abort::ScorePoint>,
    abort: Option<String>,
}

impl Run {
    fn new(drill: &Drill, run_id: &str, started_at: chrono::DateTime<Utc>) -> Run {
        Run {
            name: drill.name.clone(),
            file: drill.file.clone(),
            run_id: run_id.to_string(),
            revision: drill.rules.revision.to_string(),
            started_at,
            recovery_from: drill.recovery,
            faults: drill.faults.iter().map(super::faults::record_of).collect(),
            steady: SteadyRecord::default(),
            recovery_ms: None,
            workload: WorkloadRecord::default(),
            verify: Vec::new(),
            rollback: Vec::new(),
            scores: Vec::new(),
            abort: None,
        }
    }

    fn judge(&mut self, drill: &Drill) {
        let sse = self.workload.sse.as_ref();
        let http = self.workload.http.as_ref();
        let recovery = self.recovery_ms;
        let drain = drill.drain;
        let mut lines = judge_metrics(&drill.verify, |metric| {
            super::measured::value(metric, sse, http, recovery, drain)
        });
        lines.extend(judge_checks(&drill.verify, self.steady.after.as_ref()));
        self.verify = lines;
    }

    /// Failed when the steady state does not hold after the drill or a verify line fails.
    fn verdict(&self) -> (DrillStatus, Option<String>) {
        let mut reasons = Vec::new();
        if let Some(after) = &self.steady.after
            && !after.holds
        {
            reasons.push(format!(
                "the steady state does not hold after the drill: {}",
                after.failures()
            ));
        }
        let failed: Vec<String> = self
            .verify
            .iter()
            .filter(|v| !v.pass)
            .map(|v| format!("{} is {} (expected {})", v.what, v.actual, v.expected))
            .collect();
        if !failed.is_empty() {
            reasons.push(format!("verify failed: {}", failed.join("; ")));
        }
        if reasons.is_empty() {
            (DrillStatus::Passed, None)
        } else {
            (DrillStatus::Failed, Some(reasons.join("; ")))
        }
    }

    fn finish(self, status: DrillStatus, reason: Option<String>, started: Instant) -> DrillReport {
        DrillReport {
            name: self.name,
            file: self.file,
            run_id: self.run_id,
            status,
            reason,
            revision: self.revision,
            started_at: self.started_at,
            finished_at: Utc::now(),
            duration_ms: started.elapsed().as_millis() as u64,
            faults: self.faults,
            steady_state: self.steady,
            recovery_from: self.recovery_from,
            recovery_ms: self.recovery_ms,
            workload: self.workload,
            verify: self.verify,
            rollback: self.rollback,
            scores: self.scores,
        }
    }
}
