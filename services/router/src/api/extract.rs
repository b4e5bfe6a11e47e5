//! Reading API requests: JSON bodies with clear errors, and the API key.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::AUTHORIZATION;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use std::sync::Arc;

/// A JSON body. Unlike axum's `Json`, every rejection is a JSON error that
/// says what is wrong, and any content type is read as JSON (so a bare
/// `curl -d` works).
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state).await.map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            status => ApiError::new(status, rejection.body_text()),
        })?;
        herald_proto::json::from_object(&body)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Lets a request through only with `Authorization: Bearer <API key>`.
pub(crate) async fn require_api_key(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(key) if constant_time_eq(key.trim().as_bytes(), state.api_key.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong API key").into_response(),
        None => {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing API key: send Authorization: Bearer <key>").into_response()
        }
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell an attacker how much of a guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_keys() {
        assert!(constant_time_eq(b"key", b"key"));
        assert!(!constant_time_eq(b"key", b"kez"));
        assert!(!constant_time_eq(b"key", b"key2"));
        assert!(!constant_time_eq(b"", b"k"));
    }
}
