//! Serving client actions routed to a NATS subject.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use herald_bus::responder::Responder;
use herald_bus::{Bus, BusError};
use herald_proto::client::FrameId;
use herald_proto::handler::{Claims, HandlerRequest, HandlerResponse};
use herald_proto::status;
use serde::de::DeserializeOwned;

use crate::reply::Reply;

/// A client action as a handler sees it, with its details read into `D`.
#[derive(Debug, Clone)]
pub struct Request<D> {
    pub action: String,
    pub details: D,
    /// The client's correlation id; Herald puts it on the reply itself.
    pub id: Option<FrameId>,
    /// The connection that sent the action (`<edge>.<n>`).
    pub conn: String,
    /// Who sent it; `None` for an anonymous connection.
    pub user: Option<String>,
    /// The groups the connection is in.
    pub groups: Vec<String>,
    /// The claims of the connection's token, beyond Herald's own.
    pub claims: Claims,
}

/// Serves the actions a route sends to one NATS subject.
#[derive(Debug, Clone)]
pub struct Handler {
    subject: String,
    queue: String,
    limit: usize,
}

impl Handler {
    /// A handler for `subject`, in the queue group of the same name: every
    /// copy started shares the load.
    pub fn new(subject: impl Into<String>) -> Handler {
        let subject = subject.into();
        Handler { queue: subject.clone(), subject, limit: 1024 }
    }

    /// Joins another queue group.
    pub fn queue_group(mut self, queue: impl Into<String>) -> Handler {
        self.queue = queue.into();
        self
    }

    /// Requests worked on at once; more are answered 503 at once.
    pub fn limit(mut self, limit: usize) -> Handler {
        self.limit = limit.max(1);
        self
    }

    /// Answers requests with `handle` until `stop` resolves, then stops
    /// taking new ones (the other copies get them), finishes those it has,
    /// and returns. Details that do not read as `D` are answered 400 without
    /// calling `handle`.
    pub async fn serve<D, F, Fut>(self, bus: &Bus, handle: F, stop: impl Future<Output = ()>) -> Result<(), BusError>
    where
        D: DeserializeOwned + Send + 'static,
        F: Fn(Request<D>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let requests = bus.queue_subscribe(self.subject.clone(), self.queue).await?;
        if let Err(e) = bus.sync().await {
            // NATS is down: the client subscribes as soon as it is back.
            tracing::warn!(error = %e, "NATS has not confirmed the handler's subscription; serving anyway");
        }
        let handle = Arc::new(handle);
        let responder = Responder {
            span_name: "herald.handler.request",
            answer: move |payload: Bytes| {
                let handle = handle.clone();
                async move {
                    let reply = match read_request(&payload) {
                        Ok(request) => handle(request).await,
                        Err(problem) => Reply::error(status::BAD_REQUEST, problem),
                    };
                    encode(reply.into_response())
                }
            },
            limit: self.limit,
            overloaded: encode(Reply::error(status::SERVICE_UNAVAILABLE, "the handler is overloaded").into_response()),
        };
        tracing::info!(subject = self.subject, "handler serving");
        responder.serve(bus, requests, stop).await;
        Ok(())
    }
}

/// Reads a handler request, or says what is wrong with it.
fn read_request<D: DeserializeOwned>(payload: &[u8]) -> Result<Request<D>, String> {
    let request: HandlerRequest =
        herald_proto::json::from_object(payload).map_err(|e| format!("not a handler request: {e}"))?;
    let details =
        serde_json::from_str(request.details.get()).map_err(|e| format!("bad details for {}: {e}", request.action))?;
    Ok(Request {
        action: request.action,
        details,
        id: request.id,
        conn: request.conn,
        user: request.user,
        groups: request.groups,
        claims: request.claims,
    })
}

fn encode(response: HandlerResponse) -> Bytes {
    Bytes::from(serde_json::to_vec(&response).expect("a handler response always serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Send {
        text: String,
    }

    #[test]
    fn reads_typed_requests() {
        let payload = br#"{"action":"chat/send","details":{"text":"hi"},"id":3,"conn":"e.1","user":"ann","groups":["g"],"claims":{"plan":"pro"}}"#;
        let request: Request<Send> = read_request(payload).unwrap();
        assert_eq!(request.details, Send { text: "hi".into() });
        assert_eq!(request.user.as_deref(), Some("ann"));
        assert_eq!(request.claims["plan"], "pro");
    }

    #[test]
    fn bad_details_say_what_is_wrong() {
        let payload =
            br#"{"action":"chat/send","details":{"txt":"hi"},"conn":"e.1","user":null,"groups":[],"claims":{}}"#;
        let problem = read_request::<Send>(payload).unwrap_err();
        assert!(problem.starts_with("bad details for chat/send: missing field `text`"), "{problem}");
    }
}
