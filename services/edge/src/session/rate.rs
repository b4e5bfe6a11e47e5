//! A per-connection rate limit: a token bucket, plus strikes for clients
//! that keep sending while limited.

use std::time::Duration;

use tokio::time::Instant;

/// What the limiter says about one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Refused; answer 429.
    Refused,
    /// Refused once too often without backing off; close with 1008.
    Abuse,
}

/// Token bucket with `burst` tokens refilled at `per_sec`. Refused frames
/// count as strikes; strikes are forgiven once the bucket is full again,
/// i.e. once the client has backed off.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Tokens refilled per second.
    per_sec: f64,
    /// Bucket size.
    burst: f64,
    /// Strikes allowed before [`Verdict::Abuse`].
    max_strikes: u32,
    tokens: f64,
    strikes: u32,
    refilled_at: Instant,
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32, max_strikes: u32, now: Instant) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter { per_sec: f64::from(per_sec), burst, max_strikes, tokens: burst, strikes: 0, refilled_at: now }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.refilled_at = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.burst);
        if self.tokens >= self.burst {
            self.strikes = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allowed;
        }
        self.strikes += 1;
        if self.strikes > self.max_strikes { Verdict::Abuse } else { Verdict::Refused }
    }

    /// How long until one more frame would be allowed (for messages).
    pub fn retry_after(&self) -> Duration {
        if self.per_sec <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.per_sec).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_then_calls_it_abuse() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, 2, start);
        for _ in 0..3 {
            assert_eq!(limiter.check(start), Verdict::Allowed);
        }
        assert_eq!(limiter.check(start), Verdict::Refused);
        assert_eq!(limiter.check(start), Verdict::Refused);
        assert_eq!(limiter.check(start), Verdict::Abuse);
    }

    #[test]
    fn refills_over_time() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, 5, start);
        assert_eq!(limiter.check(start), Verdict::Allowed);
        assert_eq!(limiter.check(start), Verdict::Refused);
        assert_eq!(limiter.check(start + Duration::from_millis(100)), Verdict::Allowed);
    }

    #[test]
    fn backing_off_forgives_strikes() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 2, 2, start);
        limiter.check(start);
        limiter.check(start);
        assert_eq!(limiter.check(start), Verdict::Refused);
        assert_eq!(limiter.check(start), Verdict::Refused);
        // Quiet until the bucket is full again: strikes start over.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.check(later), Verdict::Allowed);
        assert_eq!(limiter.check(later), Verdict::Allowed);
        assert_eq!(limiter.check(later), Verdict::Refused);
        assert_eq!(limiter.check(later), Verdict::Refused);
        assert_eq!(limiter.check(later), Verdict::Abuse);
    }

    #[test]
    fn retry_after_says_when_the_next_token_comes() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, 5, start);
        limiter.check(start);
        assert_eq!(limiter.retry_after(), Duration::from_millis(100));
    }
}
