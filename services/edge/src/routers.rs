//! The edge's side of the routers' queue group: a handler request out, a
//! handler response back, or why none came.

use std::time::Duration;

use bytes::Bytes;
use herald_bus::{Bus, RequestError};
use herald_proto::handler::{HandlerRequest, HandlerResponse};
use herald_proto::status::Failure;
use herald_proto::subject::Subjects;

/// How much longer than its action timeout the edge waits for a router's
/// answer: a router gives up on the handler at the action timeout (the
/// request says it) and answers 504 saying why; the edge's own 504 is for a
/// router that is gone.
const ROUTER_GRACE: Duration = Duration::from_millis(500);

/// Asks the routers; cheap to clone (a client action's request holds one).
#[derive(Debug, Clone)]
pub(crate) struct Routers {
    bus: Bus,
    /// `<prefix>.router.actions`, answered by one router of the queue group.
    subject: String,
    /// How long a handler may take to answer (the action timeout).
    timeout: Duration,
}

impl Routers {
    pub fn new(bus: Bus, subjects: &Subjects, timeout: Duration) -> Routers {
        Routers { bus, subject: subjects.router_actions(), timeout }
    }

    /// Whether a request could reach a router now (the bus is connected).
    pub fn reachable(&self) -> bool {
        self.bus.is_connected()
    }

    /// Sends `request` to one router, with the time its handler has, and
    /// reads its answer.
    pub async fn ask(&self, mut request: HandlerRequest) -> Result<HandlerResponse, Failure> {
        request.timeout_ms = Some(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX));
        let payload = Bytes::from(serde_json::to_vec(&request).expect("a handler request always serialises"));
        match self.bus.request(self.subject.clone(), payload, self.timeout + ROUTER_GRACE).await {
            Ok(answer) => herald_proto::json::from_object(&answer).map_err(|e| {
                tracing::warn!(action = request.action, error = %e, "malformed answer from a router");
                Failure::Malformed
            }),
            Err(e) => {
                tracing::debug!(action = request.action, error = %e, "no answer from the routers");
                Err(failure_of(&e))
            }
        }
    }
}

fn failure_of(error: &RequestError) -> Failure {
    match error {
        RequestError::NoResponders(_) => Failure::NoResponders,
        RequestError::TimedOut(_) => Failure::TimedOut,
        RequestError::Failed { .. } => Failure::Unreachable,
    }
}
