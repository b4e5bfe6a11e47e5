//! WebSocket close codes Herald sends (RFC 6455 section 7.4 plus the
//! application range 4000-4999).

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is going away and will not come back at this address.
pub const GOING_AWAY: u16 = 1001;
/// The peer vanished without a close frame; never sent, only reported in
/// lifecycle events (for example after missed pings).
pub const ABNORMAL: u16 = 1006;
/// Policy violation: sustained abuse of the rate limit.
pub const POLICY_VIOLATION: u16 = 1008;
/// A frame over the configured size limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// An unexpected failure on the server side.
pub const INTERNAL_ERROR: u16 = 1011;
/// The server restarts or drains: reconnect, possibly elsewhere.
pub const SERVICE_RESTART: u16 = 1012;
/// Try again later: the client did not read its messages fast enough.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// Default code of a backend's `disconnect` control operation.
pub const BACKEND_DISCONNECT: u16 = 4000;
/// The token expired and no valid `$auth` arrived within the grace period.
pub const AUTH_EXPIRED: u16 = 4001;

/// Whether a close frame may carry `code` (RFC 6455 section 7.4): 1005,
/// 1006 and 1015 are reserved for reporting, and codes below 1000 or in
/// 1016-2999 are not assigned.
pub fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_unassigned_codes_are_not_sendable() {
        for code in
            [NORMAL, GOING_AWAY, POLICY_VIOLATION, SERVICE_RESTART, BACKEND_DISCONNECT, AUTH_EXPIRED, 3000, 4999]
        {
            assert!(is_sendable(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, ABNORMAL, 1015, 2000, 5000] {
            assert!(!is_sendable(code), "{code}");
        }
    }
}
