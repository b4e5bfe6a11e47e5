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

/// Says the edge is alive, every [`HEARTBEAT_INTERVAL`] and at once at
/// each roll call (whoever just began to follow the edges), forever.
pub(crate) async fn beat(bus: Bus, subject: String, mut roll_calls: Option<Subscription>, edge: String) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let called = async {
            match roll_calls.as_mut() {
                Some(calls) => calls.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ticks.tick() => {}
            call = called => {
                if call.is_none() {
                    roll_calls = None;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use herald_handler::edges::Edges;
    use herald_proto::subject::Subjects;

    use super::*;

    /// A new follower of the edges (here an `Edges`, as a router or a
    /// starting edge has) knows a beating edge at once, not a heartbeat
    /// interval later: its roll call makes the edge beat. Paused time: no
    /// interval passes unless the test waits for one.
    #[tokio::test(start_paused = true)]
    async fn a_roll_call_is_answered_by_a_beat_at_once() {
        let bus = Bus::local();
        let subjects = Subjects::default();
        let roll_calls = bus.subscribe(subjects.edge_roll_call()).await.unwrap();
        let mut heartbeats = bus.subscribe(subjects.edge_heartbeat()).await.unwrap();
        tokio::spawn(beat(bus.clone(), subjects.edge_heartbeat(), Some(roll_calls), "e1".into()));
        heartbeats.next().await.expect("the first beat, at once");

        let began = tokio::time::Instant::now();
        tokio::time::sleep(HEARTBEAT_INTERVAL / 2).await;
        let edges = Edges::start(bus.clone(), &subjects, Duration::from_secs(1)).await.unwrap();
        heartbeats.next().await.expect("a beat for the roll call");
        assert_eq!(began.elapsed(), HEARTBEAT_INTERVAL / 2, "beaten at the roll call, not at the next tick");
        while edges.live() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!edges.is_gone("e1"));
    }
}
