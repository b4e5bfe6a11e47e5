//! Sends a handler request to the handler its route names, over NATS
//! request/reply or HTTP POST, and turns every outcome into a handler
//! response for the edge: the handler's own answer once checked, or an error
//! with the code the contract gives each failure.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use herald_bus::{Bus, RequestError};
use herald_proto::client::{ErrorDetails, action};
use herald_proto::handler::HandlerResponse;
use herald_proto::webhook;
use reqwest::Url;
use serde::Deserialize;

use crate::routes::{Handler, Route, RouteTable};

/// Largest answer an HTTP handler may give: what NATS carries by default.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Routes requests; shared by every request the router serves.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    bus: Bus,
    /// Pooled HTTP connections to HTTP handlers.
    http: reqwest::Client,
    /// Signs requests to HTTP handlers.
    webhook_secret: Option<Vec<u8>>,
    /// The current routes; replaced whole on reload, while requests in
    /// flight keep the table they started with.
    routes: ArcSwap<RouteTable>,
}

/// A request failed before a handler answered.
struct Failure {
    code: u16,
    message: String,
}

/// The one field of a handler request the router reads.
#[derive(Deserialize)]
struct ActionName {
    action: String,
}

impl Dispatcher {
    pub fn new(bus: Bus, routes: RouteTable, webhook_secret: Option<Vec<u8>>) -> Dispatcher {
        Dispatcher {
            bus,
            http: reqwest::Client::builder().build().expect("an HTTP client with default settings builds"),
            webhook_secret,
            routes: ArcSwap::from_pointee(routes),
        }
    }

    pub fn routes(&self) -> Arc<RouteTable> {
        self.routes.load_full()
    }

    pub fn replace_routes(&self, routes: RouteTable) {
        self.routes.store(Arc::new(routes));
    }

    pub fn has_webhook_secret(&self) -> bool {
        self.webhook_secret.is_some()
    }

    /// Answers one handler request (JSON) from an edge with a handler
    /// response (JSON).
    pub async fn dispatch(&self, request: Bytes) -> Bytes {
        let name = match herald_proto::json::from_object::<ActionName>(&request) {
            Ok(ActionName { action }) => action,
            Err(e) => return error_answer(400, &format!("not a handler request: {e}")),
        };
        let routes = self.routes();
        match routes.route_for(&name) {
            Some(route) => self.call(route, request).await,
            None => match name.as_str() {
                action::JOIN | action::LEAVE => error_answer(403, "not allowed to join or leave that group"),
                _ => error_answer(404, &format!("no route for action {name:?}")),
            },
        }
    }

    /// Calls a route's handler and checks its answer.
    pub async fn call(&self, route: &Route, request: Bytes) -> Bytes {
        let answer = match &route.handler {
            Handler::Nats(subject) => self.call_nats(subject, request, route.timeout).await,
            Handler::Http(url) => self.call_http(url, request, route.timeout).await,
        };
        match answer {
            Ok(answer) => match check_answer(&answer) {
                Ok(()) => answer,
                Err(problem) => {
                    tracing::warn!(route = route.action, problem, "malformed handler answer");
                    error_answer(502, "the handler's answer was malformed")
                }
            },
            Err(Failure { code, message }) => {
                tracing::debug!(route = route.action, code, message, "handler call failed");
                error_answer(code, &message)
            }
        }
    }

    async fn call_nats(&self, subject: &str, request: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        self.bus.request(subject.to_owned(), request, timeout).await.map_err(|e| match e {
            RequestError::NoResponders(_) => Failure { code: 503, message: "no handler is available".into() },
            RequestError::TimedOut(_) => Failure { code: 504, message: "the handler did not answer in time".into() },
            RequestError::Failed { reason, .. } => {
                Failure { code: 503, message: format!("the message bus failed: {reason}") }
            }
        })
    }

    async fn call_http(&self, url: &Url, body: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string();
        let secret = self.webhook_secret.as_deref().unwrap_or_default();
        let signature = webhook::sign(secret, &timestamp, &body);
        let mut response = self
            .http
            .post(url.clone())
            .timeout(timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(webhook::TIMESTAMP_HEADER, timestamp)
            .header(webhook::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(http_failure)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure { code: 502, message: format!("the handler answered HTTP {status}") });
        }
        let mut answer = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(http_failure)? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Failure { code: 502, message: "the handler's answer is too large".into() });
            }
            answer.extend_from_slice(&chunk);
        }
        // An empty body is an empty answer: reply with no details.
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Bytes::from_static(b"{}"));
        }
        Ok(answer.freeze())
    }
}

/// Error codes a handler may give clients: HTTP-like codes and the
/// application range.
const ERROR_CODES: std::ops::RangeInclusive<u16> = 100..=4999;

/// Whether a handler's answer is a handler response the edge can apply;
/// public for the fuzz target that holds it to what the edge reads.
pub fn check_answer(answer: &[u8]) -> Result<(), String> {
    let response: HandlerResponse = herald_proto::json::from_object(answer).map_err(|e| e.to_string())?;
    match response.error {
        Some(error) if !ERROR_CODES.contains(&error.code) => Err(format!("error code {} is out of range", error.code)),
        _ => Ok(()),
    }
}

fn http_failure(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure { code: 504, message: "the handler did not answer in time".into() }
    } else if e.is_connect() {
        Failure { code: 503, message: "the handler is unreachable".into() }
    } else {
        Failure { code: 502, message: format!("the handler failed: {e}") }
    }
}

/// A handler response that is only an error.
pub(crate) fn error_answer(code: u16, message: &str) -> Bytes {
    let response = HandlerResponse {
        error: Some(ErrorDetails { code, message: message.to_owned() }),
        ..HandlerResponse::default()
    };
    Bytes::from(serde_json::to_vec(&response).expect("a handler response always serialises"))
}

#[cfg(test)]
mod tests {
    use super::check_answer;

    #[test]
    fn answers_must_be_handler_responses_with_sane_codes() {
        assert!(check_answer(br#"{"details":{"a":1}}"#).is_ok());
        assert!(check_answer(br#"{"error":{"code":418,"message":"teapot"}}"#).is_ok());
        assert!(check_answer(br#"{"error":{"code":0,"message":"x"}}"#).is_err());
        assert!(check_answer(br#"{"error":{"code":5000,"message":"x"}}"#).is_err());
        assert!(check_answer(br#"[]"#).is_err());
        assert!(check_answer(br#"{"detail":1}"#).is_err());
        assert!(check_answer(b"<html>").is_err());
    }
}
