//! Pusher's close and error codes, and the Pusher code for each way Herald
//! ends a session.
//!
//! pusher-js acts on the range: 4000–4099 do not reconnect, 4100–4199
//! reconnect after a back-off, 4200–4299 reconnect at once, 4300 and above
//! do not reconnect. A drain must therefore be 4200 (never 4009, which
//! strands clients).

use crate::close;

/// No app with this key.
pub const APP_NOT_FOUND: u16 = 4001;
/// `protocol` is not a version this server speaks (only 7 is).
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
/// The upgrade named no `protocol`.
pub const NO_PROTOCOL: u16 = 4008;
/// Refused by the app: a failed sign-in, or disconnected by the backend.
pub const UNAUTHORIZED: u16 = 4009;
/// Over capacity: reconnect after a back-off.
pub const OVER_CAPACITY: u16 = 4100;
/// Reconnect now, to another server if need be.
pub const RECONNECT: u16 = 4200;
/// The client did not answer a ping in time.
pub const PONG_NOT_RECEIVED: u16 = 4201;
/// Client events came faster than the rate limit.
pub const CLIENT_EVENT_RATE: u16 = 4301;

/// The code a Pusher client is closed with when Herald closes its session
/// with `herald_code` (the code the native protocol would send).
pub fn for_close(herald_code: u16) -> u16 {
    match herald_code {
        close::SERVICE_RESTART | close::GOING_AWAY | close::INTERNAL_ERROR => RECONNECT,
        close::TRY_AGAIN_LATER => OVER_CAPACITY,
        close::POLICY_VIOLATION => CLIENT_EVENT_RATE,
        // A backend's disconnect, Pusher's `terminate_connections`: the app
        // wants this client gone, so it must not come straight back.
        close::BACKEND_DISCONNECT | close::AUTH_EXPIRED => UNAUTHORIZED,
        // 1009 and a backend's own 4xxx codes are already meaningful.
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_reconnects_at_once_and_a_backend_disconnect_does_not() {
        assert_eq!(for_close(close::SERVICE_RESTART), RECONNECT);
        assert_eq!(for_close(close::BACKEND_DISCONNECT), UNAUTHORIZED);
        assert_eq!(for_close(close::TRY_AGAIN_LATER), OVER_CAPACITY);
        assert_eq!(for_close(close::MESSAGE_TOO_BIG), close::MESSAGE_TOO_BIG);
        assert_eq!(for_close(4321), 4321);
    }
}
