//! HTTP-like status codes: the codes of `:error` replies, of handler
//! errors, and of refused upgrades, with one function per hop that turns
//! what happened on that hop into a code.
//!
//! The hops, and who maps them:
//!
//! - router → handler: [`request_failed`] when no usable answer came,
//!   [`http_handler_status`] for an HTTP handler's status line, and
//!   [`connect_handler_error`] for a `$connect` handler's own error;
//! - edge → routers (a client action): [`request_failed`];
//! - edge → client at the upgrade (`$connect`): [`upgrade_refusal`].
//!
//! WebSocket close codes are in [`crate::close`].

use std::ops::RangeInclusive;

/// Bad input: a frame, details or request that cannot be read.
pub const BAD_REQUEST: u16 = 400;
/// Not authenticated: a bad or missing token.
pub const UNAUTHORIZED: u16 = 401;
/// Not allowed: an origin, a group, an identity refused.
pub const FORBIDDEN: u16 = 403;
/// No route for an action.
pub const NOT_FOUND: u16 = 404;
/// Too large.
pub const PAYLOAD_TOO_LARGE: u16 = 413;
/// Over a rate or concurrency limit.
pub const TOO_MANY_REQUESTS: u16 = 429;
/// A handler could not produce its answer.
pub const INTERNAL_ERROR: u16 = 500;
/// A handler failed, or its answer was malformed.
pub const BAD_GATEWAY: u16 = 502;
/// Nobody to answer (no router, no handler, the bus away), or overloaded.
pub const SERVICE_UNAVAILABLE: u16 = 503;
/// A handler did not answer in time.
pub const GATEWAY_TIMEOUT: u16 = 504;

/// Codes a handler may give in an error: HTTP-like codes, and the
/// application range above them.
pub const HANDLER_ERROR_CODES: RangeInclusive<u16> = 100..=4999;

/// Why a request got no answer its sender can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nobody listens (NATS "no responders").
    NoResponders,
    /// Somebody listens, but no answer came in time.
    TimedOut,
    /// The request could not be sent: the bus is away, the handler's
    /// address refuses connections.
    Unreachable,
    /// An answer came, but it is not one (not a handler response, not
    /// readable, too large).
    Malformed,
}

/// The code for a request that got no usable answer, on either request
/// hop (edge → routers, router → handler).
pub fn request_failed(failure: Failure) -> u16 {
    match failure {
        Failure::NoResponders | Failure::Unreachable => SERVICE_UNAVAILABLE,
        Failure::TimedOut => GATEWAY_TIMEOUT,
        Failure::Malformed => BAD_GATEWAY,
    }
}

/// What an HTTP handler's status says: `None` for a 2xx, whose body is the
/// answer; the error code to give otherwise. A 4xx is the handler's own
/// refusal and is passed on as it is (a PHP script's 403 or 422); anything
/// else means the handler failed: 502.
pub fn http_handler_status(status: u16) -> Option<u16> {
    match status {
        200..=299 => None,
        400..=499 => Some(status),
        _ => Some(BAD_GATEWAY),
    }
}

/// The code a router passes on for a `$connect` handler's error. To an
/// edge, 404 means "no `$connect` route" (its own rule then decides who
/// gets in), so a handler's own 404 is a refusal like any other: 401.
pub fn connect_handler_error(code: u16) -> u16 {
    if code == NOT_FOUND { UNAUTHORIZED } else { code }
}

/// The HTTP status refusing an upgrade, from what `$connect` came back
/// with: a handler's error code, or a failure to get an answer. `None`
/// when there is no `$connect` route (404) or no router at all: the edge's
/// own rule decides. 401 and 403 are the handler's refusal, as it gave
/// them; a 5xx or a timeout is 503 (try again later); a malformed answer
/// 502; any other error refuses with 401.
pub fn upgrade_refusal(answer: Result<u16, Failure>) -> Option<u16> {
    match answer {
        Ok(NOT_FOUND) | Err(Failure::NoResponders) => None,
        Ok(code @ (UNAUTHORIZED | FORBIDDEN)) => Some(code),
        Ok(500..) | Err(Failure::TimedOut | Failure::Unreachable) => Some(SERVICE_UNAVAILABLE),
        Err(Failure::Malformed) => Some(BAD_GATEWAY),
        Ok(_) => Some(UNAUTHORIZED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_handlers_refuse_with_4xx_and_fail_with_anything_else() {
        assert_eq!(http_handler_status(200), None);
        assert_eq!(http_handler_status(204), None);
        for refusal in [400, 401, 403, 404, 409, 422, 429, 499] {
            assert_eq!(http_handler_status(refusal), Some(refusal));
        }
        for failure in [100, 302, 500, 502, 503, 599] {
            assert_eq!(http_handler_status(failure), Some(BAD_GATEWAY));
        }
    }

    #[test]
    fn failures_follow_http() {
        assert_eq!(request_failed(Failure::NoResponders), 503);
        assert_eq!(request_failed(Failure::Unreachable), 503);
        assert_eq!(request_failed(Failure::TimedOut), 504);
        assert_eq!(request_failed(Failure::Malformed), 502);
    }

    #[test]
    fn upgrades_are_refused_as_the_handler_says_and_only_a_missing_route_leaves_it_to_the_edge() {
        assert_eq!(upgrade_refusal(Ok(404)), None);
        assert_eq!(upgrade_refusal(Err(Failure::NoResponders)), None);
        assert_eq!(upgrade_refusal(Ok(401)), Some(401));
        assert_eq!(upgrade_refusal(Ok(403)), Some(403));
        assert_eq!(upgrade_refusal(Ok(422)), Some(401));
        assert_eq!(upgrade_refusal(Ok(500)), Some(503));
        assert_eq!(upgrade_refusal(Ok(502)), Some(503));
        assert_eq!(upgrade_refusal(Err(Failure::TimedOut)), Some(503));
        assert_eq!(upgrade_refusal(Err(Failure::Unreachable)), Some(503));
        assert_eq!(upgrade_refusal(Err(Failure::Malformed)), Some(502));
        // A handler's own 404 never reaches an edge as a 404.
        assert_eq!(upgrade_refusal(Ok(connect_handler_error(404))), Some(401));
        assert_eq!(connect_handler_error(403), 403);
    }
}
