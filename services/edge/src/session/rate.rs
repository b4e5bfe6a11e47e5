//! A per-connection rate limit: a token bucket, plus strikes for clients
//! that keep sending while limited.

use std::time::Duration;

use super::clock::Stamp;

/// What the limiter says about one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Refused; answer 429.
    Refused,
    /// Refused once too often without backing off; close with 1008.
    Abuse,
}

/// A rate: `burst` frames at once, refilled at `per_sec`, and `strikes`
/// refused frames allowed before [`Verdict::Abuse`]. Kept apart from the
/// bucket's state, which every session holds: the rate is the edge's (or
/// the protocol's) and is handed to each check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Tokens refilled per second.
    pub per_sec: u32,
    /// Bucket size (at least 1).
    pub burst: u32,
    /// Strikes allowed before [`Verdict::Abuse`].
    pub strikes: u32,
}

impl Rate {
    fn burst(&self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// Token bucket at a [`Rate`]. Refused frames count as strikes; strikes are
/// forgiven once the bucket is full again, i.e. once the client has backed
/// off.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    tokens: f64,
    strikes: u32,
    refilled_at: Stamp,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate: &Rate, now: Stamp) -> RateLimiter {
        RateLimiter { tokens: rate.burst(), strikes: 0, refilled_at: now }
    }

    pub fn check(&mut self, rate: &Rate, now: Stamp) -> Verdict {
        let burst = rate.burst();
        let elapsed = now.since(self.refilled_at);
        self.refilled_at = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * f64::from(rate.per_sec)).min(burst);
        if self.tokens >= burst {
            self.strikes = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        self.strikes += 1;
        if self.strikes > rate.strikes { Verdict::Abuse } else { Verdict::Refused }
    }

    /// How long until one more frame would be allowed (for messages).
    pub fn retry_after(&self, rate: &Rate) -> Duration {
        if rate.per_sec == 0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / f64::from(rate.per_sec)).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::Clock;
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_then_calls_it_abuse() {
        let start = Clock::new().now();
        let rate = Rate { per_sec: 10, burst: 3, strikes: 2 };
        let mut limiter = RateLimiter::new(&rate, start);
        for _ in 0..3 {
            assert_eq!(limiter.check(&rate, start), Verdict::Allowed);
        }
        assert_eq!(limiter.check(&rate, start), Verdict::Refused);
        assert_eq!(limiter.check(&rate, start), Verdict::Refused);
        assert_eq!(limiter.check(&rate, start), Verdict::Abuse);
    }

    #[test]
    fn refills_over_time() {
        let start = Clock::new().now();
        let rate = Rate { per_sec: 10, burst: 1, strikes: 5 };
        let mut limiter = RateLimiter::new(&rate, start);
        assert_eq!(limiter.check(&rate, start), Verdict::Allowed);
        assert_eq!(limiter.check(&rate, start), Verdict::Refused);
        assert_eq!(limiter.check(&rate, start.after(Duration::from_millis(100))), Verdict::Allowed);
    }

    #[test]
    fn backing_off_forgives_strikes() {
        let start = Clock::new().now();
        let rate = Rate { per_sec: 10, burst: 2, strikes: 2 };
        let mut limiter = RateLimiter::new(&rate, start);
        limiter.check(&rate, start);
        limiter.check(&rate, start);
        assert_eq!(limiter.check(&rate, start), Verdict::Refused);
        assert_eq!(limiter.check(&rate, start), Verdict::Refused);
        // Quiet until the bucket is full again: strikes start over.
        let later = start.after(Duration::from_secs(1));
        assert_eq!(limiter.check(&rate, later), Verdict::Allowed);
        assert_eq!(limiter.check(&rate, later), Verdict::Allowed);
        assert_eq!(limiter.check(&rate, later), Verdict::Refused);
        assert_eq!(limiter.check(&rate, later), Verdict::Refused);
        assert_eq!(limiter.check(&rate, later), Verdict::Abuse);
    }

    #[test]
    fn retry_after_says_when_the_next_token_comes() {
        let start = Clock::new().now();
        let rate = Rate { per_sec: 10, burst: 1, strikes: 5 };
        let mut limiter = RateLimiter::new(&rate, start);
        limiter.check(&rate, start);
        assert_eq!(limiter.retry_after(&rate), Duration::from_millis(100));
    }
}
