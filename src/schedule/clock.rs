//! Time as the scheduler sees it. The daemon uses [`SystemClock`]; tests use [`ManualClock`],
//! whose time moves only when the test says so, so DST days, catch-up windows and lateness can be
//! tested exactly and without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// Wall-clock time and waiting for it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Completes once `now() >= t` (at once when `t` has passed). It may complete early when the
    /// wall clock was set back meanwhile; callers re-check `now()`.
    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The operating system's clock; waits on tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        match (t - Utc::now()).to_std() {
            Ok(wait) if !wait.is_zero() => tokio::time::sleep(wait).boxed(),
            _ => futures::future::ready(()).boxed(),
        }
    }
}

/// A clock for tests: time stands still until [`ManualClock::advance`] or [`ManualClock::set`],
/// which wake every sleeper whose time has come.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            state: Mutex::new(ManualState {
                now: start,
                sleepers: Vec::new(),
            }),
        }
    }

    /// Moves time forward by `d` and wakes the sleepers whose time has come.
    pub fn advance(&self, d: std::time::Duration) {
        let step = chrono::TimeDelta::from_std(d).expect("a test advances by a sane duration");
        let mut state = self.lock();
        let to = state.now + step;
        Self::move_to(&mut state, to);
    }

    /// Sets the time (forward or back) and wakes the sleepers whose time has come.
    pub fn set(&self, t: DateTime<Utc>) {
        Self::move_to(&mut self.lock(), t);
    }

    fn move_to(state: &mut ManualState, t: DateTime<Utc>) {
        state.now = t;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.sleepers)
            .into_iter()
            .partition(|(at, _)| *at <= t);
        state.sleepers = waiting;
        for (_, wake) in due {
            let _ = wake.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut state = self.lock();
        if t <= state.now {
            return futures::future::ready(()).boxed();
        }
        // Sleepers whose future was dropped (the scheduler woke for another reason) go now, so
        // the list stays as long as the number of live waits.
        state.sleepers.retain(|(_, wake)| !wake.is_closed());
        let (wake, woken) = oneshot::channel();
        state.sleepers.push((t, wake));
        woken.map(|_| ()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use futures::FutureExt;
    use std::time::Duration;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn manual_sleeper_wakes_only_when_its_time_has_passed() {
        let clock = ManualClock::new(t0());
        let mut sleeper = clock.sleep_until(t0() + chrono::TimeDelta::seconds(10));
        assert!((&mut sleeper).now_or_never().is_none(), "not yet");
        clock.advance(Duration::from_secs(9));
        assert!((&mut sleeper).now_or_never().is_none(), "one second early");
        clock.advance(Duration::from_secs(1));
        assert!(sleeper.now_or_never().is_some(), "woken at its time");
        assert_eq!(clock.now(), t0() + chrono::TimeDelta::seconds(10));
    }

    #[tokio::test]
    async fn manual_sleep_in_the_past_is_ready_and_set_moves_both_ways() {
        let clock = ManualClock::new(t0());
        assert!(clock.sleep_until(t0()).now_or_never().is_some());
        let later = t0() + chrono::TimeDelta::hours(1);
        let sleeper = clock.sleep_until(later);
        clock.set(later + chrono::TimeDelta::minutes(1));
        assert!(sleeper.now_or_never().is_some());
        clock.set(t0());
        assert_eq!(clock.now(), t0());
    }

    #[tokio::test]
    async fn dropped_sleepers_do_not_pile_up() {
        let clock = ManualClock::new(t0());
        for i in 1..=100 {
            drop(clock.sleep_until(t0() + chrono::TimeDelta::seconds(i)));
        }
        let _live = clock.sleep_until(t0() + chrono::TimeDelta::seconds(500));
        assert_eq!(clock.lock().sleepers.len(), 1);
    }

    #[tokio::test]
    async fn system_clock_sleeps_until_the_time() {
        let clock = SystemClock;
        let target = clock.now() + chrono::TimeDelta::milliseconds(20);
        clock.sleep_until(target).await;
        assert!(clock.now() >= target);
        assert!(
            clock
                .sleep_until(clock.now() - chrono::TimeDelta::seconds(1))
                .now_or_never()
                .is_some()
        );
    }
}
