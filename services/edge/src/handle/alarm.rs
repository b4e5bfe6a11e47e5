//! Sessions' timers on one wheel per edge, where each session kept a
//! tokio `Sleep` (112 bytes) in its task (ADR 0025).
//!
//! A session sets its alarm for the next time it needs its timer (a ping,
//! a pong deadline, the token's expiry, the end of the re-authentication
//! grace). The wheel keeps a `Weak` to the session's shared part in the
//! bucket of the first tick after that moment; a driver task sleeps until
//! the next tick that has any, and rings each session found there that is
//! still set for it: it marks the alarm rung in the session's shared part
//! and wakes the session's task through its mailbox's waker, which an idle
//! session's task has left there. A session costs its task nothing, and
//! its shared part 8 bytes, the tick it is set for.
//!
//! An alarm is set again only when it has rung or the session needs it
//! earlier: a deadline that moved later (the client spoke) leaves it as it
//! is, and it rings early, finding nothing due, as tokio's timer did. An
//! ended session's entry is dropped when its tick comes; it keeps only its
//! shared part's allocation until then, not its task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use super::Shared;

/// How far apart the wheel's ticks are, in milliseconds: an alarm rings up
/// to a tick late. Coarse enough that sessions set for about the same time
/// share a tick (one bucket, one turn of the driver), fine enough for
/// timers of 100 ms (the shortest the tests use) and the seconds the
/// defaults are.
const TICK_MS: u64 = 10;
#[cfg(test)]
const TICK: Duration = Duration::from_millis(TICK_MS);

/// What a session's alarm is set for: the tick it rings at, or [`RUNG`].
#[derive(Debug, Default)]
pub(crate) struct Alarm(AtomicU64);

/// An alarm that has rung (or was never set): its session's timer is due.
const RUNG: u64 = 0;

/// The edge's wheel of alarms and the task that rings them; the task ends
/// when this is dropped.
#[derive(Debug)]
pub(crate) struct Alarms {
    /// Shared with the driver, which rings what sessions set here.
    wheel: Arc<Wheel>,
    /// The driver, which must not outlive the edge.
    _driver: AbortOnDropHandle<()>,
}

#[derive(Debug)]
struct Wheel {
    /// Tick `n` is `epoch + n * TICK`; tick 0 is the epoch itself, so no
    /// alarm is set for it and 0 can mean [`RUNG`].
    epoch: Instant,
    /// Locked by sessions setting an alarm and by the driver taking a
    /// tick's buckets, never while it wakes sessions.
    ticks: Mutex<Ticks>,
    /// Wakes the driver when an alarm is set before the tick it sleeps to.
    earlier: Notify,
}

#[derive(Debug, Default)]
struct Ticks {
    /// The sessions set for each tick to come. Keyed by tick, so setting
    /// an alarm and finding the next tick cost the ticks held, not the
    /// sessions.
    buckets: BTreeMap<u64, Vec<Weak<Shared>>>,
    /// The last tick the driver rang: an alarm set for it or before is due
    /// at once.
    rung: u64,
    /// The tick the driver sleeps to (`u64::MAX`: none).
    sleeping_until: u64,
}

impl Alarm {
    /// Whether the alarm rang since it was last set.
    pub fn rung(&self) -> bool {
        self.0.load(Ordering::Acquire) == RUNG
    }
}

impl Alarms {
    /// The wheel, and its driver on the current runtime.
    pub fn start() -> Alarms {
        let wheel = Arc::new(Wheel {
            epoch: Instant::now(),
            ticks: Mutex::new(Ticks { sleeping_until: u64::MAX, ..Ticks::default() }),
            earlier: Notify::new(),
        });
        let driver = AbortOnDropHandle::new(tokio::spawn(drive(wheel.clone())));
        Alarms { wheel, _driver: driver }
    }

    /// Sets `session`'s alarm to ring no earlier than `at` and at most a
    /// tick later, unless it is set to ring earlier already: it then rings
    /// early, and the session sets it again.
    pub(super) fn set(&self, session: &Arc<Shared>, at: Instant) {
        let tick = self.wheel.tick_after(at);
        let set = session.alarm.0.load(Ordering::Acquire);
        if set != RUNG && set <= tick {
            return;
        }
        let mut ticks = self.wheel.lock();
        if tick <= ticks.rung {
            session.alarm.0.store(RUNG, Ordering::Release);
            return;
        }
        ticks.buckets.entry(tick).or_default().push(Arc::downgrade(session));
        session.alarm.0.store(tick, Ordering::Release);
        if tick < ticks.sleeping_until {
            ticks.sleeping_until = tick;
            self.wheel.earlier.notify_one();
        }
    }
}

impl Wheel {
    fn lock(&self) -> MutexGuard<'_, Ticks> {
        self.ticks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The first tick after `at` (at least 1).
    fn tick_after(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_millis() / u128::from(TICK_MS);
        u64::try_from(since).map_or(u64::MAX, |since| since.saturating_add(1))
    }

    /// The last tick at or before now.
    fn tick_now(&self) -> u64 {
        self.tick_after(Instant::now()) - 1
    }

    /// When `tick` comes. (Ticks are of moments tokio's clock can hold:
    /// theirs, rounded up to a tick.)
    fn instant(&self, tick: u64) -> Instant {
        self.epoch + Duration::from_millis(tick.saturating_mul(TICK_MS))
    }

    /// Takes the buckets of the ticks up to now into `due`; the next tick
    /// with sessions, which the driver sleeps to.
    fn take_due(&self, due: &mut Vec<(u64, Vec<Weak<Shared>>)>) -> Option<u64> {
        let now = self.tick_now();
        let mut ticks = self.lock();
        while let Some(bucket) = ticks.buckets.first_entry() {
            if *bucket.key() > now {
                break;
            }
            due.push(bucket.remove_entry());
        }
        ticks.rung = ticks.rung.max(now);
        let next = ticks.buckets.first_key_value().map(|(&tick, _)| tick);
        ticks.sleeping_until = next.unwrap_or(u64::MAX);
        next
    }
}

/// Rings the alarms whose tick has come, then sleeps to the next tick that
/// has any, or until one is set earlier.
async fn drive(wheel: Arc<Wheel>) {
    let mut due = Vec::new();
    loop {
        let next = wheel.take_due(&mut due);
        for (tick, sessions) in due.drain(..) {
            for session in sessions.iter().filter_map(Weak::upgrade) {
                // Only a session still set for this tick: one set again
                // since (earlier, or after ringing) has another entry.
                if session.alarm.0.compare_exchange(tick, RUNG, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    session.queued.wake();
                }
            }
        }
        match next {
            Some(tick) => {
                tokio::select! {
                    () = tokio::time::sleep_until(wheel.instant(tick)) => {}
                    () = wheel.earlier.notified() => {}
                }
            }
            None => wheel.earlier.notified().await,
        }
    }
}

#[cfg(test)]
impl Alarms {
    /// The entries the wheel holds.
    fn entries(&self) -> usize {
        self.wheel.lock().buckets.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{Mailbox, SessionHandle, Wire, Woken};

    fn session() -> (SessionHandle, Mailbox) {
        SessionHandle::new(4, Wire::Herald)
    }

    /// What the session's loop finds when it waits on its mailbox.
    async fn woken(mailbox: &mut Mailbox) -> Woken {
        let woken = std::future::poll_fn(|cx| mailbox.poll_wait(cx)).await;
        mailbox.stop_waiting();
        woken
    }

    #[tokio::test(start_paused = true)]
    async fn an_alarm_rings_no_earlier_than_due_and_at_most_a_tick_later() {
        let alarms = Alarms::start();
        let (_handle, mut mailbox) = session();
        for wait in [1, 9, 10, 15, 120, 2_500] {
            let at = Instant::now() + Duration::from_millis(wait);
            mailbox.set_alarm(&alarms, at);
            assert!(matches!(woken(&mut mailbox).await, Woken::Alarm));
            let now = Instant::now();
            // (tokio's timer rounds the driver's sleep up to its millisecond.)
            let late = now - at;
            assert!(now >= at && late <= TICK + Duration::from_millis(1), "set for {wait} ms, rang {late:?} late");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_alarm_set_later_keeps_its_entry_and_one_set_earlier_adds_one() {
        let alarms = Alarms::start();
        let (_handle, mut mailbox) = session();
        let start = Instant::now();
        mailbox.set_alarm(&alarms, start + Duration::from_millis(500));
        for later in 501..600 {
            mailbox.set_alarm(&alarms, start + Duration::from_millis(later));
        }
        assert_eq!(alarms.entries(), 1, "a later deadline rings early instead");
        mailbox.set_alarm(&alarms, start + Duration::from_millis(100));
        assert_eq!(alarms.entries(), 2);
        assert!(matches!(woken(&mut mailbox).await, Woken::Alarm));
        assert!(Instant::now() < start + Duration::from_millis(500));
        assert_eq!(alarms.entries(), 1);
        // The entry left behind is no longer the session's: it rings nothing.
        mailbox.set_alarm(&alarms, start + Duration::from_secs(1));
        tokio::time::sleep_until(start + Duration::from_millis(700)).await;
        assert_eq!(alarms.entries(), 1);
        assert!(!mailbox.shared.alarm.rung());
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_session_is_let_go_when_its_tick_comes() {
        let alarms = Alarms::start();
        let (handle, mailbox) = session();
        mailbox.set_alarm(&alarms, Instant::now() + Duration::from_millis(50));
        let shared = Arc::downgrade(&mailbox.shared);
        drop((handle, mailbox));
        assert_eq!(shared.strong_count(), 0, "the wheel holds no session");
        assert_eq!(alarms.entries(), 1);
        tokio::time::sleep(Duration::from_millis(50) + TICK * 2).await;
        assert_eq!(alarms.entries(), 0, "its entry, the last reference to its allocation, is dropped");
    }

    #[tokio::test(start_paused = true)]
    async fn an_alarm_set_for_the_past_has_rung() {
        let alarms = Alarms::start();
        let (_handle, mut mailbox) = session();
        tokio::time::sleep(Duration::from_millis(100)).await;
        mailbox.set_alarm(&alarms, Instant::now() + Duration::from_millis(20));
        assert!(matches!(woken(&mut mailbox).await, Woken::Alarm));
        mailbox.set_alarm(&alarms, Instant::now() - Duration::from_millis(50));
        assert!(mailbox.shared.alarm.rung());
        assert_eq!(alarms.entries(), 0);
    }
}
