//! WebSocket close codes Herald sends (RFC 6455 section 7.4 plus the
//! application range 4000-4999).

/// Normal closure, e.g. a backend's `disconnect` without a code.
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
