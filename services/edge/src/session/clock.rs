//! Moments of a session's life in 8 bytes, where a `tokio::time::Instant`
//! takes 16: every idle session keeps a few (when its client was last
//! heard, when a ping went out, its rate limiter's last refill) in its
//! task, which tokio allocates in multiples of 128 bytes (BENCHMARKS, "The
//! session's own memory").

use std::num::NonZeroU64;
use std::time::Duration;

use tokio::time::Instant;

/// The sessions' clock, one per edge: moments are nanoseconds since the
/// edge was made (a `u64` of them lasts 584 years). Read through tokio's
/// clock, as the edge's alarms are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
}

/// A moment on a [`Clock`], never before its epoch: nanoseconds since the
/// epoch, plus one, so that an `Option<Stamp>` is 8 bytes too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(NonZeroU64);

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Clock {
        Clock { epoch: Instant::now() }
    }

    pub fn now(&self) -> Stamp {
        self.stamp(Instant::now())
    }

    /// `at` on this clock: the epoch for a moment before it, the last stamp
    /// for one past its 584 years.
    pub fn stamp(&self, at: Instant) -> Stamp {
        Stamp::FIRST.after(at.saturating_duration_since(self.epoch))
    }

    /// The moment `stamp` is, for the edge's alarms.
    pub fn instant(&self, stamp: Stamp) -> Instant {
        self.epoch + Duration::from_nanos(stamp.0.get() - 1)
    }
}

impl Stamp {
    /// The clock's epoch.
    const FIRST: Stamp = Stamp(NonZeroU64::MIN);

    /// `duration` later, or the last stamp.
    pub fn after(self, duration: Duration) -> Stamp {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Stamp(self.0.saturating_add(nanos))
    }

    /// The time from `earlier` to this stamp; zero if `earlier` is later.
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.get().saturating_sub(earlier.0.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_keep_the_moment_to_the_nanosecond() {
        let clock = Clock::new();
        let at = Instant::now() + Duration::from_nanos(1_234_567_891);
        assert_eq!(clock.instant(clock.stamp(at)), at);
        let stamp = clock.stamp(at);
        assert_eq!(stamp.after(Duration::from_millis(5)).since(stamp), Duration::from_millis(5));
        assert_eq!(stamp.since(stamp.after(Duration::from_millis(5))), Duration::ZERO);
    }

    #[test]
    fn stamps_saturate_rather_than_wrap() {
        let clock = Clock::new();
        let before = clock.epoch.checked_sub(Duration::from_secs(1)).expect("a second of uptime");
        assert_eq!(clock.stamp(before), clock.stamp(clock.epoch));
        let last = clock.now().after(Duration::MAX);
        assert_eq!(last.after(Duration::from_secs(1)), last);
        assert!(clock.now() < last);
    }

    #[test]
    fn an_optional_stamp_is_one_word() {
        assert_eq!(size_of::<Option<Stamp>>(), 8);
    }
}
