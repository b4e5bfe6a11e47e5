//! Refusals of the Pusher HTTP API, answered as Pusher answers them: the
//! status, and the reason as a line of plain text (Pusher's server SDKs
//! pass the body on as it is: pusher-http-php's `ApiErrorException`, the npm
//! `pusher`'s `RequestError.body`, the PyPI `pusher`'s exceptions).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;

/// A refused call: its status and why.
#[derive(Debug)]
pub(crate) struct PusherError {
    status: StatusCode,
    message: String,
}

impl PusherError {
    /// 400: the request is not one the API takes.
    pub fn bad_request(message: impl Into<String>) -> PusherError {
        PusherError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 401: the signature, the key or the timestamp is wrong.
    pub fn unauthorized(message: impl Into<String>) -> PusherError {
        PusherError { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }

    /// 404: no such app (or no app at all).
    pub fn unknown_app() -> PusherError {
        PusherError { status: StatusCode::NOT_FOUND, message: "Unknown app".to_owned() }
    }

    /// 413: an event's data or the whole body is too large.
    pub fn too_large(message: impl Into<String>) -> PusherError {
        PusherError { status: StatusCode::PAYLOAD_TOO_LARGE, message: message.into() }
    }

    /// 503: NATS is out of reach, so nothing could be published or asked.
    pub fn unavailable(error: impl std::fmt::Display) -> PusherError {
        PusherError { status: StatusCode::SERVICE_UNAVAILABLE, message: format!("Service unavailable: {error}") }
    }
}

impl IntoResponse for PusherError {
    fn into_response(self) -> Response {
        (self.status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", self.message)).into_response()
    }
}
