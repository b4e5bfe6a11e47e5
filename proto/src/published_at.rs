//! When a message to clients was published (`Herald-Published-At`,
//! PROTOCOL.md 5.27): the publisher stamps it, and each edge measures
//! publish → delivery lag from it once per message, never reading the
//! payload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// NATS header: when the message was published, by the publisher's clock,
/// as Unix time in microseconds (a decimal integer).
pub const PUBLISHED_AT_HEADER: &str = "Herald-Published-At";

/// `time` as the header's value.
pub fn stamp(time: SystemTime) -> String {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros().to_string()
}

/// The header's value for a message published now.
pub fn stamp_now() -> String {
    stamp(SystemTime::now())
}

/// How long before `now` a message stamped `value` was published; `None`
/// when `value` is not a stamp. A stamp later than `now` (the publisher's
/// clock is ahead of ours) is no lag at all: zero, not negative.
pub fn lag(value: &str, now: SystemTime) -> Option<Duration> {
    let micros: u64 = value.trim().parse().ok()?;
    let published = UNIX_EPOCH.checked_add(Duration::from_micros(micros))?;
    Some(now.duration_since(published).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_the_time_since() {
        let published = UNIX_EPOCH + Duration::from_micros(1_764_448_565_123_456);
        assert_eq!(stamp(published), "1764448565123456");
        let now = published + Duration::from_millis(7);
        assert_eq!(lag(&stamp(published), now), Some(Duration::from_millis(7)));
    }

    #[test]
    fn a_clock_ahead_is_no_lag_and_a_bad_stamp_is_none() {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_448_565);
        assert_eq!(lag(&stamp(now + Duration::from_secs(2)), now), Some(Duration::ZERO));
        for bad in ["", "soon", "-5", "1.5", "99999999999999999999999"] {
            assert_eq!(lag(bad, now), None, "{bad:?}");
        }
    }
}
