//! The one place that reads the wall clock. Everything else takes `now` as an
//! input, so tests can put time where they need it; and whatever waits for an
//! instant (a tunnel's deadline) waits on the same clock, so a test that moves a
//! [`ManualClock`] past a deadline wakes the waiter at once, with no real sleep.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A wait for an instant of a clock (see [`Clock::sleep_until`]).
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The wall clock is re-read at least this often while waiting for an instant:
/// it can jump (NTP step, a resumed virtual machine) while a monotonic sleep
/// computed once would not notice. Bounds how late a wait ends after a jump.
pub const MAX_NAP: StdDuration = StdDuration::from_secs(1);

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `at` (at once if it already has).
    ///
    /// The default suits clocks that follow real time: it sleeps in naps of at
    /// most [`MAX_NAP`], re-reading `now` after each, so it ends at most a nap
    /// late whatever the clock does meanwhile.
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let left = at - self.now();
                // `to_std` refuses only a negative span: the instant has passed.
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_NAP)).await;
            }
        })
    }
}

/// A clock shared between components.
pub type SharedClock = std::sync::Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to; for tests. Moving it wakes the waits
/// ([`Clock::sleep_until`]) whose instant it reaches, and only those.
#[derive(Debug)]
pub struct ManualClock(watch::Sender<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(watch::Sender::new(at))
    }

    /// Sets the time (forward or back).
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.send_replace(at);
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep<'_> {
        // Subscribed before the first look, so a move between the look and the
        // wait is not missed.
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= at {
                    return;
                }
                // The sender lives as long as `self`, which outlives this future.
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    /// Polls `f` once, with a no-op waker: whether it is done *now*.
    fn ready(f: &mut Sleep<'_>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(f.as_mut().poll(&mut cx), Poll::Ready(()))
    }

    #[test]
    fn a_manual_sleeper_wakes_when_the_clock_reaches_its_instant_and_not_before() {
        let clock = ManualClock::new(t0());
        let mut sleep = clock.sleep_until(t0() + Duration::seconds(10));
        assert!(!ready(&mut sleep));
        clock.advance(Duration::seconds(9));
        assert!(!ready(&mut sleep), "woke a second early");
        clock.advance(Duration::milliseconds(999));
        assert!(!ready(&mut sleep), "woke a millisecond early");
        clock.advance(Duration::milliseconds(1));
        assert!(ready(&mut sleep), "still asleep at its instant");
    }

    #[test]
    fn an_instant_already_passed_is_no_wait() {
        let clock = ManualClock::new(t0());
        assert!(ready(&mut clock.sleep_until(t0())));
        assert!(ready(&mut clock.sleep_until(t0() - Duration::hours(1))));
        assert!(ready(&mut SystemClock.sleep_until(Utc::now() - Duration::seconds(1))));
    }

    #[test]
    fn several_sleepers_wake_each_at_its_own_instant() {
        let clock = ManualClock::new(t0());
        let mut early = clock.sleep_until(t0() + Duration::seconds(5));
        let mut late = clock.sleep_until(t0() + Duration::seconds(60));
        let mut also_early = clock.sleep_until(t0() + Duration::seconds(5));
        clock.set(t0() + Duration::seconds(30));
        assert!(ready(&mut early));
        assert!(ready(&mut also_early));
        assert!(!ready(&mut late));
        clock.set(t0() + Duration::seconds(61));
        assert!(ready(&mut late));
    }

    #[test]
    fn setting_the_clock_back_wakes_no_one() {
        let clock = ManualClock::new(t0() + Duration::seconds(30));
        let mut sleep = clock.sleep_until(t0() + Duration::seconds(60));
        clock.set(t0());
        assert!(!ready(&mut sleep));
        clock.advance(Duration::seconds(-5));
        assert!(!ready(&mut sleep));
        clock.advance(Duration::seconds(65));
        assert!(ready(&mut sleep));
    }

    /// The waker is called on the move itself: a task parked on the wait runs
    /// again without anything polling it, and with no real time passing.
    #[tokio::test(start_paused = true)]
    async fn advancing_wakes_a_parked_task_at_once() {
        let clock = Arc::new(ManualClock::new(t0()));
        let waiter = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(t0() + Duration::hours(1)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let virtual_start = tokio::time::Instant::now();
        clock.advance(Duration::hours(1));
        // With time paused, an unwoken waiter lets the runtime jump to this
        // timeout at once: the test fails instead of hanging.
        tokio::time::timeout(StdDuration::from_secs(3600), waiter)
            .await
            .expect("the advance did not wake the waiter")
            .unwrap();
        assert_eq!(
            tokio::time::Instant::now(),
            virtual_start,
            "a timer fired, not the clock"
        );
    }

    /// The wall clock's wait ends at its instant, give or take scheduling: it
    /// neither returns early nor oversleeps by a nap.
    #[tokio::test]
    async fn the_system_clock_wakes_at_the_wall_clock_instant() {
        let at = Utc::now() + Duration::milliseconds(300);
        SystemClock.sleep_until(at).await;
        let now = Utc::now();
        assert!(now >= at, "woke {} early", at - now);
        assert!(now - at < Duration::milliseconds(500), "woke {} late", now - at);
    }
}
