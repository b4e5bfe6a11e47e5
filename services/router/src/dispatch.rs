//! Sends a handler request to the handler its route names, over NATS
//! request/reply or HTTP POST, and turns every outcome into a handler
//! response for the edge: the handler's own answer once checked, or an error
//! with the code the contract gives each failure.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use herald_bus::{Bus, RequestError};
use herald_proto::client::{ErrorDetails, action};
use herald_proto::handler::HandlerResponse;
use herald_proto::status::{self, Failure};
use herald_proto::webhook;
use reqwest::Url;
use serde::Deserialize;
use tracing::Instrument;

use crate::metrics::{Metrics, NO_ROUTE};
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
    /// Times requests and handler calls.
    metrics: Arc<Metrics>,
}

/// A handler call that gave no answer to pass on: the error the edge gets
/// instead.
struct CallFailure {
    code: u16,
    message: String,
}

impl CallFailure {
    fn new(failure: Failure, message: impl Into<String>) -> CallFailure {
        CallFailure { code: status::request_failed(failure), message: message.into() }
    }
}

/// The fields of a handler request the router reads.
#[derive(Deserialize)]
struct Routing {
    action: String,
    /// How long the edge waits for the answer.
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl Dispatcher {
    pub fn new(bus: Bus, routes: RouteTable, webhook_secret: Option<Vec<u8>>, metrics: Arc<Metrics>) -> Dispatcher {
        Dispatcher {
            bus,
            http: reqwest::Client::builder().build().expect("an HTTP client with default settings builds"),
            webhook_secret,
            routes: ArcSwap::from_pointee(routes),
            metrics,
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
    /// response (JSON), and measures it by route and outcome.
    pub async fn dispatch(&self, request: Bytes) -> Bytes {
        let started = Instant::now();
        let (name, budget) = match herald_proto::json::from_object::<Routing>(&request) {
            Ok(Routing { action, timeout_ms }) => (action, timeout_ms.map(Duration::from_millis)),
            Err(e) => return error_answer(status::BAD_REQUEST, &format!("not a handler request: {e}")),
        };
        let routes = self.routes();
        let (route, (answer, code)) = match routes.route_for(&name) {
            Some(route) => (route.action.as_str(), self.call(route, request, budget).await),
            None => (
                NO_ROUTE,
                match name.as_str() {
                    action::JOIN | action::LEAVE => {
                        refusal(status::FORBIDDEN, "not allowed to join or leave that group")
                    }
                    _ => refusal(status::NOT_FOUND, &format!("no route for action {name:?}")),
                },
            ),
        };
        self.metrics.action_answered(route, started.elapsed(), code);
        answer
    }

    /// Calls a route's handler and checks its answer: the answer for the
    /// edge, and its error code if it has one. The handler has the
    /// route's timeout, cut to `budget` (how long the edge waits) when that
    /// is shorter: the edge's 504 would come first anyway, and this one says
    /// why.
    pub async fn call(&self, route: &Route, request: Bytes, budget: Option<Duration>) -> (Bytes, Option<u16>) {
        let cut = budget.filter(|budget| *budget < route.timeout);
        let timeout = cut.unwrap_or(route.timeout);
        let started = Instant::now();
        let transport = match &route.handler {
            Handler::Nats(_) => "nats",
            Handler::Http(_) => "http",
        };
        let span = tracing::info_span!(
            target: herald_bus::trace::TARGET,
            "herald.router.handler",
            otel.kind = "client",
            route = route.action,
            transport,
        );
        let answer = match &route.handler {
            Handler::Nats(subject) => self.call_nats(subject, request, timeout).instrument(span).await,
            Handler::Http(url) => self.call_http(url, request, timeout).instrument(span).await,
        };
        self.metrics.handler_called(&route.action, transport, started.elapsed());
        let answer = match (answer, cut) {
            (Err(failure), Some(budget)) if failure.code == status::GATEWAY_TIMEOUT => Err(cut_short(route, budget)),
            (answer, _) => answer,
        };
        // A `$connect` handler's own 404 must not read as "no route".
        let passed_on = |code| if route.action == action::CONNECT { status::connect_handler_error(code) } else { code };
        match answer {
            Ok(answer) => match check_answer(&answer) {
                Ok(None) => (answer, None),
                Ok(Some(error)) if passed_on(error.code) != error.code => {
                    refusal(passed_on(error.code), &error.message)
                }
                Ok(Some(error)) => (answer, Some(error.code)),
                Err(problem) => {
                    tracing::warn!(route = route.action, problem, "malformed handler answer");
                    refusal(status::BAD_GATEWAY, "the handler's answer was malformed")
                }
            },
            Err(CallFailure { code, message }) => {
                tracing::debug!(route = route.action, code, message, "handler call failed");
                refusal(passed_on(code), &message)
            }
        }
    }

    async fn call_nats(&self, subject: &str, request: Bytes, timeout: Duration) -> Result<Bytes, CallFailure> {
        self.bus.request(subject.to_owned(), request, timeout).await.map_err(|e| match e {
            RequestError::NoResponders(_) => CallFailure::new(Failure::NoResponders, "no handler is available"),
            RequestError::TimedOut(_) => CallFailure::new(Failure::TimedOut, "the handler did not answer in time"),
            RequestError::Failed { reason, .. } => {
                CallFailure::new(Failure::Unreachable, format!("the message bus failed: {reason}"))
            }
        })
    }

    async fn call_http(&self, url: &Url, body: Bytes, timeout: Duration) -> Result<Bytes, CallFailure> {
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).to_string();
        let secret = self.webhook_secret.as_deref().unwrap_or_default();
        let signature = webhook::sign(secret, &timestamp, &body);
        let mut post = self.http.post(url.clone());
        // `traceparent` and `tracestate`, so the handler continues the trace.
        for (name, value) in herald_bus::trace::http_headers() {
            post = post.header(name, value);
        }
        let response = post
            .timeout(timeout)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(webhook::TIMESTAMP_HEADER, timestamp)
            .header(webhook::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(http_failure)?;
        let http_status = response.status();
        let refusal = status::http_handler_status(http_status.as_u16());
        let answer = read_answer(response).await;
        if let Some(code) = refusal {
            // A refusal (4xx) says why in its body's `error.message`, when it
            // has one; a failing handler's body stays between it and us.
            let message = answer.ok().filter(|_| http_status.is_client_error()).and_then(|body| error_message(&body));
            let message = message.unwrap_or_else(|| format!("the handler answered HTTP {http_status}"));
            return Err(CallFailure { code, message });
        }
        let answer = answer?;
        // An empty body is an empty answer: reply with no details.
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Bytes::from_static(b"{}"));
        }
        Ok(answer)
    }
}

/// A handler timed out at the edge's action timeout, before its route's:
/// the client and the operator are told which limit was hit.
fn cut_short(route: &Route, budget: Duration) -> CallFailure {
    let (edge_ms, route_ms) = (budget.as_millis(), route.timeout.as_millis());
    tracing::warn!(
        route = route.action,
        edge_ms,
        route_ms,
        "a handler was cut short by the edges' action timeout, which is below the route's timeout_ms: \
         raise HERALD_ACTION_TIMEOUT_MS on the edges, or lower timeout_ms"
    );
    let message = format!(
        "the handler did not answer within the edge's action timeout ({edge_ms} ms; the route allows {route_ms} ms)"
    );
    CallFailure::new(Failure::TimedOut, message)
}

/// An HTTP handler's body, up to [`MAX_ANSWER_BYTES`].
async fn read_answer(mut response: reqwest::Response) -> Result<Bytes, CallFailure> {
    let mut answer = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(http_failure)? {
        if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(CallFailure::new(Failure::Malformed, "the handler's answer is too large"));
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(answer.freeze())
}

/// The `error.message` of a body, if it is JSON with one.
fn error_message(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body.pointer("/error/message")?.as_str().map(str::to_owned)
}

/// Reads a handler's answer as a handler response the edge can apply, and
/// returns its error, if it has one; public for the fuzz target that holds
/// it to what the edge reads.
pub fn check_answer(answer: &[u8]) -> Result<Option<ErrorDetails>, String> {
    let response: HandlerResponse = herald_proto::json::from_object(answer).map_err(|e| e.to_string())?;
    match response.error {
        Some(error) if !status::HANDLER_ERROR_CODES.contains(&error.code) => {
            Err(format!("error code {} is out of range", error.code))
        }
        error => Ok(error),
    }
}

fn http_failure(e: reqwest::Error) -> CallFailure {
    if e.is_timeout() {
        CallFailure::new(Failure::TimedOut, "the handler did not answer in time")
    } else if e.is_connect() {
        CallFailure::new(Failure::Unreachable, "the handler is unreachable")
    } else {
        CallFailure::new(Failure::Malformed, format!("the handler failed: {e}"))
    }
}

/// A handler response that is only an error, with its code.
fn refusal(code: u16, message: &str) -> (Bytes, Option<u16>) {
    (error_answer(code, message), Some(code))
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
        assert!(check_answer(br#"[]"#).is_ok(), "PHP's empty answer");
        assert!(check_answer(br#"[{"details":1}]"#).is_err());
        assert!(check_answer(br#"{"detail":1}"#).is_err());
        assert!(check_answer(b"<html>").is_err());
    }
}
