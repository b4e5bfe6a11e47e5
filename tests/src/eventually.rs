//! Polling assertions for state that changes asynchronously by design (a
//! subscription restored after a NATS outage, `/readyz` flipping). Never use
//! a sleep as an assertion: poll the condition until it holds or time is up.

use std::time::Duration;

/// How often [`assert_eventually!`](crate::assert_eventually) re-evaluates its condition.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// Default time [`assert_eventually!`](crate::assert_eventually) waits for its condition.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Re-evaluates `cond` (which may contain `.await`) every
/// [`POLL_EVERY`](crate::eventually::POLL_EVERY) until it is true; panics
/// with the condition's text, and the message if one is given (formatted
/// then, so it can show the state that was not reached), when `timeout`
/// passes first.
///
/// ```ignore
/// assert_eventually!(edge.http("/readyz").await.0 == 503, Duration::from_secs(5));
/// assert_eventually!(bus.is_connected());
/// assert_eventually!(events().len() == 1, WAIT, "events: {:?}", events());
/// ```
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr) => {
        $crate::assert_eventually!($cond, $crate::eventually::DEFAULT_TIMEOUT)
    };
    ($cond:expr, $timeout:expr) => {
        $crate::assert_eventually!($cond, $timeout, "")
    };
    ($cond:expr, $timeout:expr, $($message:tt)+) => {{
        let timeout: ::std::time::Duration = $timeout;
        let started = ::tokio::time::Instant::now();
        loop {
            if $cond {
                break;
            }
            if started.elapsed() >= timeout {
                panic!(
                    "condition `{}` did not become true within {:?} {}",
                    stringify!($cond),
                    timeout,
                    format_args!($($message)+)
                );
            }
            ::tokio::time::sleep($crate::eventually::POLL_EVERY).await;
        }
    }};
}
