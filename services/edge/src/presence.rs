//! The edge's side of presence: it answers routers' queries about its own
//! connections, and says every second that it is alive so routers know how
//! many answers to wait for (see the router's `presence` module for why
//! presence is asked, not stored).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, Subscription};
use herald_proto::presence::{Heartbeat, PresenceQuery};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::Registry;

/// How often an edge says it is alive.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How long a stopping edge tries to tell routers it is leaving.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers presence queries until the subscription ends.
pub(crate) async fn answer_queries(registry: Arc<Registry>, bus: Bus, queries: Subscription) {
    answer_each(bus, queries, "presence", move |query: PresenceQuery| {
        let answer = registry.presence(&query);
        async move { answer }
    })
    .await;
}

/// Answers each question on `questions` (a JSON `Q`) with `answer`'s, as
/// JSON, until the subscription ends; `what` names them in logs.
pub(crate) async fn answer_each<Q, A, Answering>(
    bus: Bus,
    mut questions: Subscription,
    what: &str,
    answer: impl Fn(Q) -> Answering,
) where
    Q: DeserializeOwned,
    A: Serialize,
    Answering: Future<Output = A>,
{
    while let Some(message) = questions.next().await {
        let Some(reply) = message.reply() else { continue };
        let question: Q = match herald_proto::json::from_object(&message.payload) {
            Ok(question) => question,
            Err(e) => {
                tracing::warn!(error = %e, what, "ignored a malformed query");
                continue;
            }
        };
        let answer = serde_json::to_vec(&answer(question).await).expect("an answer always serialises");
        if let Err(e) = bus.publish(reply.to_owned(), Bytes::from(answer)).await {
            tracing::debug!(error = %e, what, "answer not sent");
        }
    }
}

/// Says the edge is alive, every [`HEARTBEAT_INTERVAL`], forever.
pub(crate) async fn beat(bus: Bus, subject: String, edge: String) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        publish(&bus, &subject, &edge, false).await;
    }
}

/// Says the edge is leaving, so routers stop waiting for it at once. Gives
/// up after [`LEAVE_TIMEOUT`]: with NATS away, stopping must not wait for it.
pub(crate) async fn leave(bus: &Bus, subject: &str, edge: &str) {
    let said = async {
        publish(bus, subject, edge, true).await;
        let _ = bus.flush().await;
    };
    if tokio::time::timeout(LEAVE_TIMEOUT, said).await.is_err() {
        tracing::debug!("could not say the edge is leaving: NATS is away");
    }
}

async fn publish(bus: &Bus, subject: &str, edge: &str, leaving: bool) {
    let heartbeat = Heartbeat { edge: edge.to_owned(), interval_ms: HEARTBEAT_INTERVAL.as_millis() as u64, leaving };
    let payload = Bytes::from(serde_json::to_vec(&heartbeat).expect("a heartbeat always serialises"));
    if let Err(e) = bus.publish(subject.to_owned(), payload).await {
        tracing::debug!(error = %e, "heartbeat not sent");
    }
}
