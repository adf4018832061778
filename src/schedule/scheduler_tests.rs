//! The scheduler on a `ManualClock`: time moves only when a test moves it, and `poll_now` returns
//! once the loop has started everything due, so every assertion is exact and nothing sleeps.

use std::sync::Mutex;

use chrono::TimeZone;
use tokio::sync::Semaphore;

use super::*;
use crate::schedule::ManualClock;

/// One call of the runner.
#[derive(Clone, Debug, PartialEq)]
struct Run {
    key: JobKey,
    planned: DateTime<Utc>,
    started: DateTime<Utc>,
}

/// Records runs as they start; a held job's runs wait for a permit of its gate.
struct Recorder {
    clock: Arc<ManualClock>,
    runs: mpsc::UnboundedSender<Run>,
    gates: Mutex<HashMap<JobKey, Arc<Semaphore>>>,
}

impl JobRunner for Recorder {
    fn run(&self, key: JobKey, planned: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let gate = lock(&self.gates).get(&key).cloned();
        let started = self.clock.now();
        let _ = self.runs.send(Run {
            key,
            planned,
            started,
        });
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate open").forget();
            }
        })
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    recorder: Arc<Recorder>,
    handle: SchedulerHandle,
    runs: mpsc::UnboundedReceiver<Run>,
}

impl Harness {
    fn start(at: DateTime<Utc>, jobs: Vec<Job>) -> Harness {
        Harness::start_with(at, jobs, HashMap::new(), &[])
    }

    /// Starts a scheduler whose `held` jobs do not finish until [`Harness::release`].
    fn start_with(
        at: DateTime<Utc>,
        jobs: Vec<Job>,
        last_runs: HashMap<JobKey, DateTime<Utc>>,
        held: &[&JobKey],
    ) -> Harness {
        let clock = Arc::new(ManualClock::new(at));
        let (tx, runs) = mpsc::unbounded_channel();
        let gates = held
            .iter()
            .map(|k| ((*k).clone(), Arc::new(Semaphore::new(0))))
            .collect();
        let recorder = Arc::new(Recorder {
            clock: clock.clone(),
            runs: tx,
            gates: Mutex::new(gates),
        });
        let handle = Scheduler::start(clock.clone(), recorder.clone(), jobs, last_runs);
        Harness {
            clock,
            recorder,
            handle,
            runs,
        }
    }

    /// Runs started so far and not yet returned by a previous call.
    async fn runs(&mut self) -> Vec<Run> {
        self.handle.poll_now().await;
        let mut out = Vec::new();
        while let Ok(run) = self.runs.try_recv() {
            out.push(run);
        }
        out
    }

    async fn advance(&mut self, d: Duration) -> Vec<Run> {
        self.clock.advance(d);
        self.runs().await
    }

    async fn set(&mut self, t: DateTime<Utc>) -> Vec<Run> {
        self.clock.set(t);
        self.runs().await
    }

    /// Lets one held run of `key` finish and waits until it has (the count of runs in flight
    /// drops by one).
    async fn release(&self, key: &JobKey) {
        let before = self.handle.in_flight();
        lock(&self.recorder.gates)[key].add_permits(1);
        for _ in 0..10_000 {
            if self.handle.in_flight() < before {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the released run of {key} did not finish");
    }

    fn job(&self, key: &JobKey) -> JobStats {
        self.handle.stats().jobs[key].clone()
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap()
}

fn check(name: &str) -> JobKey {
    JobKey::Check(name.into())
}

fn every(name: &str, secs: u64, jitter: u64) -> Job {
    Job {
        key: check(name),
        trigger: Trigger::Every(Duration::from_secs(secs)),
        jitter: Duration::from_secs(jitter),
        catch_up: Duration::from_secs(3600),
    }
}

fn cron_job(name: &str, expr: &str, tz: &str, catch_up_secs: u64) -> Job {
    Job {
        key: check(name),
        trigger: Trigger::cron(expr, tz).unwrap(),
        jitter: Duration::ZERO,
        catch_up: Duration::from_secs(catch_up_secs),
    }
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn planned_times(runs: &[Run]) -> Vec<DateTime<Utc>> {
    runs.iter().map(|r| r.planned).collect()
}

#[tokio::test]
async fn every_fires_at_start_plus_jitter_then_every_interval_without_drift() {
    let job = every("a", 60, 30);
    let offset = TimeDelta::from_std(jitter_offset("check:a", Duration::from_secs(30))).unwrap();
    assert!(
        offset > TimeDelta::zero(),
        "a non-zero offset makes this test meaningful"
    );
    let mut h = Harness::start(t0(), vec![job]);
    let first = t0() + offset;
    assert_eq!(h.set(first - TimeDelta::milliseconds(1)).await, vec![]);
    assert_eq!(planned_times(&h.set(first).await), vec![first]);
    // Three seconds late: the run is late, the plan is not moved.
    let late = h.set(first + secs(63)).await;
    assert_eq!(planned_times(&late), vec![first + secs(60)]);
    assert_eq!(late[0].started - late[0].planned, secs(3));
    assert_eq!(
        planned_times(&h.set(first + secs(120)).await),
        vec![first + secs(120)]
    );
    assert_eq!(h.job(&check("a")).next_planned, Some(first + secs(180)));
}

#[tokio::test]
async fn lateness_is_measured_per_job_and_across_jobs() {
    let mut h = Harness::start(t0(), vec![every("a", 10, 0), every("b", 10, 0)]);
    assert_eq!(h.runs().await.len(), 2, "both fire at start");
    let runs = h.advance(Duration::from_secs(15)).await;
    assert!(runs.iter().all(|r| r.started - r.planned == secs(5)));
    let stats = h.handle.stats();
    assert_eq!(
        stats.jobs[&check("a")].last_lateness,
        Some(Duration::from_secs(5))
    );
    assert_eq!(stats.lateness.count, 4);
    assert_eq!(stats.lateness.p50, Duration::ZERO);
    assert_eq!(stats.lateness.max, Duration::from_secs(5));
    let p99 = stats.lateness.p99.as_secs_f64();
    assert!((p99 - 5.0).abs() < 0.2, "{p99}");
}

#[tokio::test]
async fn a_job_still_running_is_skipped_and_counted_never_started_twice() {
    let slow = check("slow");
    let mut h = Harness::start_with(
        t0(),
        vec![every("slow", 10, 0), every("fast", 10, 0)],
        HashMap::new(),
        &[&slow],
    );
    assert_eq!(h.runs().await.len(), 2);
    for round in 1..=2u64 {
        let runs = h.advance(Duration::from_secs(10)).await;
        assert_eq!(
            runs.iter().map(|r| &r.key).collect::<Vec<_>>(),
            vec![&check("fast")]
        );
        let s = h.job(&slow);
        assert_eq!((s.started, s.skipped, s.running), (1, round, true));
    }
    assert_eq!(h.handle.in_flight(), 1);
    h.release(&slow).await;
    assert!(!h.job(&slow).running);
    let runs = h.advance(Duration::from_secs(10)).await;
    assert_eq!(runs.len(), 2, "slow runs again once the previous run ended");
    assert_eq!(h.job(&slow).started, 2);
    assert_eq!(h.job(&check("fast")).skipped, 0);
}

#[tokio::test]
async fn catch_up_runs_a_missed_cron_fire_once_within_the_window() {
    let now = Utc.with_ymd_and_hms(2026, 5, 4, 2, 30, 0).unwrap();
    let missed = Utc.with_ymd_and_hms(2026, 5, 4, 2, 0, 0).unwrap();
    let jobs = vec![
        cron_job("never-ran", "0 2 * * *", "UTC", 3600),
        cron_job("ran", "0 2 * * *", "UTC", 3600),
        cron_job("ran-yesterday", "0 2 * * *", "UTC", 3600),
        cron_job("outside-window", "0 2 * * *", "UTC", 20 * 60),
        cron_job("berlin", "0 4 * * *", "Europe/Berlin", 3600), // 02:00 UTC in May
    ];
    let last_runs = HashMap::from([
        (check("ran"), missed),
        (check("ran-yesterday"), missed - TimeDelta::days(1)),
    ]);
    let mut h = Harness::start_with(now, jobs, last_runs, &[]);
    let mut runs = h.runs().await;
    runs.sort_by(|a, b| a.key.cmp(&b.key));
    let expected: Vec<Run> = ["berlin", "never-ran", "ran-yesterday"]
        .iter()
        .map(|n| Run {
            key: check(n),
            planned: missed,
            started: now,
        })
        .collect();
    assert_eq!(runs, expected);
    let stats = h.handle.stats();
    assert_eq!(
        stats.lateness.count, 0,
        "catch-up runs stay out of the histogram"
    );
    let s = &stats.jobs[&check("never-ran")];
    assert_eq!(s.last_lateness, Some(Duration::from_secs(30 * 60)));
    assert_eq!(s.next_planned, Some(missed + TimeDelta::days(1)));
    // Once, not again on the next polls.
    h.handle.drained().await;
    assert_eq!(h.advance(Duration::from_secs(60)).await, vec![]);
}

#[tokio::test]
async fn an_interval_job_has_no_catch_up() {
    let mut h = Harness::start(t0(), vec![every("a", 3600, 0)]);
    let runs = h.runs().await;
    assert_eq!(
        planned_times(&runs),
        vec![t0()],
        "its regular first fire only"
    );
}

#[tokio::test]
async fn replace_jobs_keeps_unchanged_state_replans_changed_and_new_stops_removed() {
    let (changed, removed) = (check("changed"), check("removed"));
    let jobs = vec![
        every("kept", 60, 0),
        every("changed", 60, 0),
        every("removed", 60, 0),
    ];
    let mut h = Harness::start_with(t0(), jobs, HashMap::new(), &[&changed, &removed]);
    assert_eq!(h.runs().await.len(), 3);
    h.set(t0() + secs(20)).await;

    let mut kept_edited = every("kept", 60, 0);
    kept_edited.catch_up = Duration::from_secs(1); // not part of the schedule
    h.handle.replace_jobs(vec![
        kept_edited,
        every("changed", 30, 0),
        every("new", 60, 0),
    ]);
    let runs = h.runs().await;
    assert_eq!(
        runs.iter().map(|r| (&r.key, r.planned)).collect::<Vec<_>>(),
        vec![(&check("new"), t0() + secs(20))],
        "new is planned from now; changed is due now too but its run goes on: skipped"
    );
    let stats = h.handle.stats();
    assert_eq!(
        stats.jobs.keys().cloned().collect::<Vec<_>>(),
        vec![changed.clone(), check("kept"), check("new")]
    );
    assert_eq!(
        stats.jobs[&check("kept")].next_planned,
        Some(t0() + secs(60))
    );
    let c = &stats.jobs[&changed];
    assert_eq!((c.started, c.skipped, c.running), (1, 1, true));
    assert_eq!(c.next_planned, Some(t0() + secs(50)));
    assert_eq!(h.handle.in_flight(), 2, "the removed job's run goes on");

    h.release(&changed).await;
    assert_eq!(h.handle.in_flight(), 1);
    h.release(&removed).await;
    assert_eq!(
        planned_times(&h.set(t0() + secs(50)).await),
        vec![t0() + secs(50)]
    );
    let runs = h.set(t0() + secs(60)).await;
    assert_eq!(
        runs.iter().map(|r| (&r.key, r.planned)).collect::<Vec<_>>(),
        vec![(&check("kept"), t0() + secs(60))],
        "kept keeps its plan; removed never fires again"
    );
}

/// Fires of a Berlin or New York 02:00 job, the clock moved an hour at a time over 4 days.
async fn daily_0200_fires(tz: &str, from: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut h = Harness::start(from, vec![cron_job("nightly", "0 2 * * *", tz, 0)]);
    let mut fired = Vec::new();
    for _ in 0..96 {
        let runs = h.advance(Duration::from_secs(3600)).await;
        fired.extend(planned_times(&runs));
        h.handle.drained().await;
    }
    fired
}

#[tokio::test]
async fn cron_job_runs_once_a_day_across_dst_on_the_scheduler() {
    let utc = |m, d, h| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
    assert_eq!(
        daily_0200_fires("Europe/Berlin", utc(3, 27, 12)).await,
        vec![utc(3, 28, 1), utc(3, 29, 1), utc(3, 30, 0), utc(3, 31, 0)]
    );
    assert_eq!(
        daily_0200_fires("Europe/Berlin", utc(10, 23, 12)).await,
        vec![
            utc(10, 24, 0),
            utc(10, 25, 0),
            utc(10, 26, 1),
            utc(10, 27, 1)
        ]
    );
    assert_eq!(
        daily_0200_fires("America/New_York", utc(3, 6, 12)).await,
        vec![utc(3, 7, 7), utc(3, 8, 7), utc(3, 9, 6), utc(3, 10, 6)]
    );
    assert_eq!(
        daily_0200_fires("America/New_York", utc(10, 30, 12)).await,
        vec![utc(10, 31, 6), utc(11, 1, 7), utc(11, 2, 7), utc(11, 3, 7)]
    );
}

#[tokio::test]
async fn cron_fires_carry_the_jitter_offset() {
    let mut job = cron_job("spread", "*/5 * * * *", "UTC", 0);
    job.jitter = Duration::from_secs(60);
    let offset = TimeDelta::from_std(jitter_offset("check:spread", job.jitter)).unwrap();
    let mut h = Harness::start(t0(), vec![job]);
    let mut fired = Vec::new();
    for _ in 0..20 {
        fired.extend(planned_times(&h.advance(Duration::from_secs(60)).await));
        h.handle.drained().await;
    }
    let expected: Vec<_> = (0..4)
        .map(|i| t0() + TimeDelta::minutes(5 * i) + offset)
        .collect();
    assert_eq!(fired, expected);
}

#[tokio::test]
async fn fires_passed_while_behind_are_counted_as_missed_not_run() {
    let mut h = Harness::start(t0(), vec![every("a", 10, 0)]);
    h.runs().await;
    h.handle.drained().await;
    let runs = h.advance(Duration::from_secs(35)).await;
    assert_eq!(planned_times(&runs), vec![t0() + secs(10)]);
    let s = h.job(&check("a"));
    assert_eq!((s.started, s.missed), (2, 2));
    assert_eq!(s.next_planned, Some(t0() + secs(40)), "back on the grid");
}

#[tokio::test]
async fn shutdown_stops_planning_and_in_flight_runs_drain() {
    let slow = check("slow");
    let mut h = Harness::start_with(t0(), vec![every("slow", 10, 0)], HashMap::new(), &[&slow]);
    assert_eq!(h.runs().await.len(), 1);
    h.handle.shutdown().await;
    h.clock.advance(Duration::from_secs(60));
    h.handle.poll_now().await; // returns at once: the loop is gone
    assert!(h.runs.try_recv().is_err(), "nothing planned after shutdown");
    assert_eq!(h.handle.in_flight(), 1);
    h.release(&slow).await;
    assert_eq!(h.handle.in_flight(), 0);
}

#[test]
fn job_keys_print_and_parse_back() {
    for key in [check("api-latency"), JobKey::Suite("nightly".into())] {
        assert_eq!(JobKey::parse(&key.to_string()), Some(key));
    }
    assert_eq!(check("a:b").to_string(), "check:a:b");
    assert_eq!(JobKey::parse("check:a:b"), Some(check("a:b")));
    assert_eq!(JobKey::parse("check:"), None);
    assert_eq!(JobKey::parse("job:x"), None);
    assert_eq!(JobKey::parse("nightly"), None);
}
