//! The scheduler: one task with one timer over a heap of (due, job), however many jobs there are
//! (10,000 checks are 10,000 heap entries, not 10,000 tasks with a timer each). Runs are handed to
//! a [`JobRunner`] and spawned; the scheduler only decides when.
//!
//! Rules: a job still running is not started again (the fire is skipped and counted); `every`
//! jobs fire first at start + jitter, then every interval from the planned time (no drift); cron
//! jobs fire at each cron time + jitter; a cron fire missed while the daemon was down runs once at
//! start when it lies within the job's `catch_up` window and after its last recorded run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};

use super::clock::Clock;
use super::stats::{JobStats, LatencyHistogram, ScheduleStats};
use super::trigger::{Trigger, jitter_offset};

/// The longest the loop sleeps without looking at the clock, so a wall clock set forward (or a
/// suspended host) delays fires by at most this much.
const MAX_NAP: TimeDelta = TimeDelta::seconds(1);

/// Past fires a late job steps over one by one before jumping to the present.
const MAX_MISSED_STEPS: u64 = 10_000;

/// What a job runs: one check on its own schedule, or a suite (a set of checks as one run).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKey {
    Check(String),
    Suite(String),
}

impl JobKey {
    /// Reads the `Display` form back (`check:NAME`, `suite:NAME`), e.g. from the store.
    pub fn parse(text: &str) -> Option<JobKey> {
        match text.split_once(':')? {
            ("check", name) if !name.is_empty() => Some(JobKey::Check(name.to_string())),
            ("suite", name) if !name.is_empty() => Some(JobKey::Suite(name.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobKey::Check(name) => write!(f, "check:{name}"),
            JobKey::Suite(name) => write!(f, "suite:{name}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub key: JobKey,
    pub trigger: Trigger,
    /// Upper bound of the job's stable offset ([`jitter_offset`] of its key).
    pub jitter: Duration,
    /// How far back a missed cron fire is still run at start.
    pub catch_up: Duration,
}

/// Runs a job; the scheduler spawns the future and counts the job as running until it ends.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, key: JobKey, planned: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

pub struct Scheduler;

impl Scheduler {
    /// Plans `jobs` from the clock's now, queues the catch-up runs `last_runs` (planned times of
    /// the last recorded runs) call for, and spawns the loop. Needs a tokio runtime.
    pub fn start(
        clock: Arc<dyn Clock>,
        runner: Arc<dyn JobRunner>,
        jobs: Vec<Job>,
        last_runs: HashMap<JobKey, DateTime<Utc>>,
    ) -> SchedulerHandle {
        let (in_flight, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            registry: Mutex::new(BTreeMap::new()),
            lateness: Mutex::new(LatencyHistogram::default()),
            in_flight,
        });
        let mut planner = Planner {
            clock,
            runner,
            shared: shared.clone(),
            jobs: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
        };
        planner.replace(jobs);
        planner.queue_catch_ups(&last_runs);
        let (commands, receiver) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(false);
        tokio::spawn(async move {
            planner.run(receiver).await;
            let _ = ended_tx.send(true);
        });
        SchedulerHandle {
            commands,
            shared,
            ended,
        }
    }
}

/// Control of a running scheduler; clones control the same one.
#[derive(Clone)]
pub struct SchedulerHandle {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    ended: watch::Receiver<bool>,
}

enum Command {
    Replace(Vec<Job>),
    Poll(oneshot::Sender<()>),
    Shutdown,
}

impl SchedulerHandle {
    /// Hot reload. A job whose key, trigger and jitter are unchanged keeps its next fire; a new or
    /// changed one is planned from now (a changed one keeps its counters, and is still not started
    /// while its previous run goes on); a removed one is not fired again, a run of it in progress
    /// finishes. Applied by the loop right after this call.
    pub fn replace_jobs(&self, jobs: Vec<Job>) {
        let _ = self.commands.send(Command::Replace(jobs));
    }

    /// Returns once the loop has started every run due at the clock's current time (and applied
    /// earlier `replace_jobs`). For tests with a `ManualClock`; harmless otherwise.
    pub async fn poll_now(&self) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Command::Poll(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Stops planning and returns when the loop has ended. Runs in progress go on: see
    /// [`SchedulerHandle::in_flight`] and [`SchedulerHandle::drained`].
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(|e| *e).await;
    }

    /// Runs started and not finished yet.
    pub fn in_flight(&self) -> usize {
        *self.shared.in_flight.borrow()
    }

    /// Completes when no run is in progress.
    pub async fn drained(&self) {
        let mut count = self.shared.in_flight.subscribe();
        let _ = count.wait_for(|n| *n == 0).await;
    }

    pub fn stats(&self) -> ScheduleStats {
        let jobs = lock(&self.shared.registry)
            .iter()
            .map(|(key, state)| (key.clone(), state.snapshot()))
            .collect();
        ScheduleStats {
            jobs,
            lateness: lock(&self.shared.lateness).summary(),
            in_flight: self.in_flight(),
        }
    }
}

/// State the loop shares with handles and running jobs.
struct Shared {
    /// The jobs currently scheduled.
    registry: Mutex<BTreeMap<JobKey, Arc<JobState>>>,
    lateness: Mutex<LatencyHistogram>,
    in_flight: watch::Sender<usize>,
}

/// A job's counters and running flag; survives reloads that keep the key.
#[derive(Default)]
struct JobState {
    running: AtomicBool,
    started: AtomicU64,
    skipped: AtomicU64,
    missed: AtomicU64,
    /// Microseconds; negative: none yet.
    last_lateness_micros: AtomicI64,
    next_planned: Mutex<Option<DateTime<Utc>>>,
}

impl JobState {
    fn new() -> Arc<JobState> {
        Arc::new(JobState {
            last_lateness_micros: AtomicI64::new(-1),
            ..JobState::default()
        })
    }

    fn snapshot(&self) -> JobStats {
        let late = self.last_lateness_micros.load(Ordering::Relaxed);
        JobStats {
            started: self.started.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            last_lateness: u64::try_from(late).ok().map(Duration::from_micros),
            next_planned: *lock(&self.next_planned),
            running: self.running.load(Ordering::Acquire),
        }
    }

    fn set_next(&self, fire: Option<Fire>) {
        *lock(&self.next_planned) = fire.map(|f| f.planned);
    }
}

/// One planned fire: the trigger's time and that time plus the job's jitter offset.
#[derive(Clone, Copy, Debug)]
struct Fire {
    base: DateTime<Utc>,
    planned: DateTime<Utc>,
}

/// A job as the loop tracks it.
struct Planned {
    job: Job,
    offset: TimeDelta,
    next: Option<Fire>,
    /// Sequence number of the job's live heap entry; older entries are stale.
    seq: u64,
    state: Arc<JobState>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    due: DateTime<Utc>,
    seq: u64,
    key: JobKey,
    /// A one-off catch-up run at start, with its planned time.
    catch_up: Option<DateTime<Utc>>,
}

/// The loop's own state.
struct Planner {
    clock: Arc<dyn Clock>,
    runner: Arc<dyn JobRunner>,
    shared: Arc<Shared>,
    jobs: HashMap<JobKey, Planned>,
    queue: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl Planner {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut polls: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let now = self.clock.now();
            self.fire_due(now);
            for ack in polls.drain(..) {
                let _ = ack.send(());
            }
            let wake = self
                .queue
                .peek()
                .map_or(now + MAX_NAP, |Reverse(e)| e.due.min(now + MAX_NAP));
            let sleep = self.clock.sleep_until(wake);
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(Command::Replace(jobs)) => self.replace(jobs),
                    Some(Command::Poll(ack)) => polls.push(ack),
                },
                _ = sleep => {}
            }
        }
    }

    fn fire_due(&mut self, now: DateTime<Utc>) {
        while self.queue.peek().is_some_and(|Reverse(e)| e.due <= now) {
            let Some(Reverse(entry)) = self.queue.pop() else {
                break;
            };
            self.fire(entry, now);
        }
    }

    fn fire(&mut self, entry: Entry, now: DateTime<Utc>) {
        let Some(p) = self.jobs.get_mut(&entry.key) else {
            return; // removed by a reload
        };
        let starter = Starter {
            clock: &*self.clock,
            runner: &self.runner,
            shared: &self.shared,
        };
        if let Some(planned) = entry.catch_up {
            starter.start(&entry.key, &p.state, planned, false);
            return;
        }
        let Some(fire) = p.next.filter(|_| p.seq == entry.seq) else {
            return; // stale: the job was re-planned
        };
        starter.start(&entry.key, &p.state, fire.planned, true);
        let (next, missed) = following(&p.job.trigger, p.offset, fire, now);
        p.state.missed.fetch_add(missed, Ordering::Relaxed);
        self.seq += 1;
        p.seq = self.seq;
        p.next = next;
        p.state.set_next(next);
        if let Some(f) = next {
            self.queue.push(Reverse(Entry {
                due: f.planned,
                seq: self.seq,
                key: entry.key,
                catch_up: None,
            }));
        }
    }

    /// Applies a new job list (see [`SchedulerHandle::replace_jobs`]).
    fn replace(&mut self, jobs: Vec<Job>) {
        let now = self.clock.now();
        let mut old = std::mem::take(&mut self.jobs);
        for job in jobs {
            if self.jobs.contains_key(&job.key) {
                tracing::warn!("job {} is listed twice; the first one counts", job.key);
                continue;
            }
            let key = job.key.clone();
            let planned = match old.remove(&key) {
                Some(mut kept)
                    if kept.job.trigger == job.trigger && kept.job.jitter == job.jitter =>
                {
                    kept.job = job;
                    kept
                }
                Some(changed) => self.plan(job, changed.state, now),
                None => self.plan(job, JobState::new(), now),
            };
            self.jobs.insert(key, planned);
        }
        *lock(&self.shared.registry) = self
            .jobs
            .iter()
            .map(|(k, p)| (k.clone(), p.state.clone()))
            .collect();
        self.drop_stale_entries();
    }

    /// A job's first fire from `now`, queued.
    fn plan(&mut self, job: Job, state: Arc<JobState>, now: DateTime<Utc>) -> Planned {
        let offset = offset_of(&job);
        let next = first_fire(&job.trigger, offset, now);
        if next.is_none() {
            tracing::warn!(
                "job {} never fires: its schedule has no future time",
                job.key
            );
        }
        self.seq += 1;
        if let Some(f) = next {
            self.queue.push(Reverse(Entry {
                due: f.planned,
                seq: self.seq,
                key: job.key.clone(),
                catch_up: None,
            }));
        }
        state.set_next(next);
        Planned {
            job,
            offset,
            next,
            seq: self.seq,
            state,
        }
    }

    /// Queues, to run now, each cron job's last fire when it lies within the job's catch-up window
    /// and is later than the job's last recorded run (or the job has none).
    fn queue_catch_ups(&mut self, last_runs: &HashMap<JobKey, DateTime<Utc>>) {
        let now = self.clock.now();
        let mut due = Vec::new();
        for (key, p) in &self.jobs {
            let Some(base) = p.job.trigger.last_at_or_before(now - p.offset) else {
                continue;
            };
            let planned = base + p.offset;
            let window = TimeDelta::from_std(p.job.catch_up).unwrap_or(TimeDelta::MAX);
            let already_ran = last_runs.get(key).is_some_and(|ran| *ran >= planned);
            if now - planned <= window && !already_ran {
                due.push((key.clone(), planned));
            }
        }
        for (key, planned) in due {
            self.seq += 1;
            self.queue.push(Reverse(Entry {
                due: now,
                seq: self.seq,
                key,
                catch_up: Some(planned),
            }));
        }
    }

    /// Rebuilds the heap when reloads left more stale entries than live ones.
    fn drop_stale_entries(&mut self) {
        if self.queue.len() <= 2 * self.jobs.len() + 1024 {
            return;
        }
        let jobs = &self.jobs;
        self.queue.retain(|Reverse(e)| {
            jobs.get(&e.key)
                .is_some_and(|p| e.catch_up.is_some() || p.seq == e.seq)
        });
    }
}

/// What starting a run needs, borrowed from the planner while one of its jobs is borrowed too.
struct Starter<'a> {
    clock: &'a dyn Clock,
    runner: &'a Arc<dyn JobRunner>,
    shared: &'a Arc<Shared>,
}

impl Starter<'_> {
    /// Starts a run unless the job is still running (then the fire is skipped and counted).
    fn start(&self, key: &JobKey, state: &Arc<JobState>, planned: DateTime<Utc>, count: bool) {
        if state.running.swap(true, Ordering::AcqRel) {
            state.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let late = (self.clock.now() - planned)
            .to_std()
            .unwrap_or(Duration::ZERO);
        state.started.fetch_add(1, Ordering::Relaxed);
        let micros = i64::try_from(late.as_micros()).unwrap_or(i64::MAX);
        state.last_lateness_micros.store(micros, Ordering::Relaxed);
        if count {
            lock(&self.shared.lateness).record(late);
        }
        self.shared.in_flight.send_modify(|n| *n += 1);
        let guard = RunGuard {
            state: state.clone(),
            shared: self.shared.clone(),
        };
        let run = self.runner.run(key.clone(), planned);
        tokio::spawn(async move {
            let _guard = guard;
            run.await;
        });
    }
}

/// Marks the run finished when its task ends, also when the run panicked.
struct RunGuard {
    state: Arc<JobState>,
    shared: Arc<Shared>,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.state.running.store(false, Ordering::Release);
        self.shared
            .in_flight
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn offset_of(job: &Job) -> TimeDelta {
    let offset = jitter_offset(&job.key.to_string(), job.jitter);
    TimeDelta::from_std(offset).unwrap_or(TimeDelta::zero())
}

/// The first fire planned from `now`: `every` jobs at now + offset, cron jobs at the first cron
/// time whose planned time (+ offset) is after now.
fn first_fire(trigger: &Trigger, offset: TimeDelta, now: DateTime<Utc>) -> Option<Fire> {
    let base = match trigger {
        Trigger::Every(_) => now,
        Trigger::Cron { .. } => trigger.next_after(now - offset)?,
    };
    Some(Fire {
        base,
        planned: base + offset,
    })
}

/// The fire after `fire`, and how many fires were stepped over because they were already past
/// at `now` (the loop was behind by more than a period).
fn following(
    trigger: &Trigger,
    offset: TimeDelta,
    fire: Fire,
    now: DateTime<Utc>,
) -> (Option<Fire>, u64) {
    let step = |base: DateTime<Utc>| trigger.next_after(base).filter(|next| *next > base);
    let mut missed = 0;
    let mut base = fire.base;
    loop {
        let Some(next) = step(base) else {
            return (None, missed);
        };
        base = next;
        if base + offset > now {
            break;
        }
        missed += 1;
        if missed >= MAX_MISSED_STEPS {
            let Some(present) = trigger.next_after(now - offset) else {
                return (None, missed);
            };
            base = present;
            break;
        }
    }
    let next = Fire {
        base,
        planned: base + offset,
    };
    (Some(next), missed)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
