//! Queue-group subscriptions: each message goes to one member of the group,
//! and a member that stops leaves without losing what is on its way to it
//! (routers taking handler requests, disconnect and webhook events; handlers).
//!
//! On NATS a member rides a subscribe-only connection (`herald-nats-sub`),
//! not async-nats: async-nats 0.51's `drain` forgets the subscription as
//! soon as its `UNSUB` is written, so the messages the server had already
//! sent to a leaving member were dropped on arrival, and a request among
//! them went unanswered until its sender's timeout (ADR 0033). Here the
//! subscription stays until the server has answered a ping sent after the
//! `UNSUB`, which it does after every message it sent before.
//!
//! A member's answers ([`Answers`]) go out by the connection its requests
//! came by: in a cluster, only the server that passed a request on is sure
//! to know the requester's inbox already; another may learn of a fresh
//! inbox after the answer reaches it, and drop the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use herald_nats_sub as nats_sub;
use tokio::sync::mpsc;

use crate::local::LocalSubscription;
use crate::{Bus, BusError, BusMessage, trace};

/// Messages a member holds before the first is read; beyond it the next
/// are dropped, as async-nats drops them for a subscription that does not
/// keep up (its default capacity). Routers shed load long before this, at
/// their `max_inflight`.
const MEMBER_CAPACITY: usize = 64 * 1024;

/// How long [`Answers::flush`] waits for the server.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// One member of a queue group; dropping it leaves the group at once
/// (whatever is on its way is lost: [`QueueSubscription::until_drained`]
/// leaves without losing it).
#[derive(Debug)]
pub enum QueueSubscription {
    Nats(Member),
    Local(LocalSubscription),
}

/// A member on NATS.
#[derive(Debug)]
pub struct Member {
    /// What the subscription's handler was given, in order. Ends when the
    /// handler, which holds the sender, is dropped: after a drain.
    messages: mpsc::Receiver<BusMessage>,
    /// `None` once drained.
    subscription: Option<nats_sub::Subscription>,
    /// The connection it rides, which its answers take.
    connection: nats_sub::Subscriber,
}

/// Where a member's answers go: on NATS the connection its requests came
/// by, on the in-process bus the bus. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Answers {
    Nats(nats_sub::Subscriber),
    Local(Bus),
}

impl Member {
    /// Joins `group` on `subject` over `subscriber`'s connection; the
    /// server has it once the subscriber syncs.
    pub(crate) fn join(subscriber: &nats_sub::Subscriber, subject: &str, group: &str) -> Result<Member, BusError> {
        let (sender, messages) = mpsc::channel(MEMBER_CAPACITY);
        let handler = move |delivery: nats_sub::Delivery<'_>| {
            // A status (e.g. "no responders") is not a message anybody sent.
            if delivery.headers.as_ref().is_some_and(|headers| headers.status().is_some()) {
                return;
            }
            let message = BusMessage {
                subject: delivery.subject.into(),
                reply: delivery.reply.map(Into::into),
                payload: delivery.payload,
                headers: delivery.headers.map(|headers| {
                    let mut map = async_nats::HeaderMap::new();
                    for (name, value) in headers.iter() {
                        map.append(name, value);
                    }
                    map
                }),
            };
            if let Err(mpsc::error::TrySendError::Full(message)) = sender.try_send(message) {
                tracing::warn!(subject = message.subject(), "a queue member does not keep up: message dropped");
            }
        };
        let subscription = subscriber
            .queue_subscribe(subject, group, Arc::new(handler))
            .map_err(|e| BusError::Subscribe { subject: subject.to_owned(), reason: e.into() })?;
        Ok(Member { messages, subscription: Some(subscription), connection: subscriber.clone() })
    }
}

impl Answers {
    /// Sends `payload` to `reply`, with the current span's trace context.
    pub async fn send(&self, reply: String, payload: Bytes) -> Result<(), BusError> {
        match self {
            Answers::Nats(connection) => {
                let headers = trace::inject(None);
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .flat_map(|map| map.iter())
                    .flat_map(|(name, values)| values.iter().map(move |value| (name.as_ref(), value.as_str())))
                    .collect();
                connection
                    .publish(&reply, &headers, &payload)
                    .map_err(|e| BusError::Publish { subject: reply.clone(), reason: e.into() })
            }
            Answers::Local(bus) => bus.publish(reply, payload).await,
        }
    }

    /// Waits, for a bounded time, until the answers sent so far have
    /// reached the server: a process that exits next must not lose them.
    /// Returns at once while NATS is away: a connection that dropped took
    /// what it had not written with it, and no later one writes it.
    pub async fn flush(&self) -> Result<(), BusError> {
        let flushed = match self {
            Answers::Nats(connection) if !connection.is_connected() => {
                let reason = "NATS is away: answers not yet written are lost".into();
                return Err(BusError::Publish { subject: "(answers)".to_owned(), reason });
            }
            Answers::Nats(connection) => tokio::time::timeout(FLUSH_TIMEOUT, connection.sync()).await.map(Ok),
            Answers::Local(bus) => tokio::time::timeout(FLUSH_TIMEOUT, bus.flush()).await,
        };
        flushed.unwrap_or_else(|_| {
            Err(BusError::Publish { subject: "(answers)".to_owned(), reason: "not flushed in time".into() })
        })
    }
}

impl QueueSubscription {
    /// Where its answers go; `bus` is the bus it was made on.
    pub fn answers(&self, bus: &Bus) -> Answers {
        match self {
            QueueSubscription::Nats(member) => Answers::Nats(member.connection.clone()),
            QueueSubscription::Local(_) => Answers::Local(bus.clone()),
        }
    }

    /// Leaves the group: the bus gives new messages to the other members,
    /// those already on their way here still arrive, and the stream ends
    /// after them.
    pub async fn drain(&mut self) {
        match self {
            QueueSubscription::Nats(member) => {
                if let Some(subscription) = member.subscription.take() {
                    subscription.drain().await;
                }
            }
            QueueSubscription::Local(local) => local.drain(),
        }
    }

    /// Its messages until `stop` resolves; then it leaves the group, and
    /// the stream yields those already on their way and ends. What a member
    /// that stops reads, so that it loses nothing the bus gave it.
    pub fn until_drained(self, stop: impl Future<Output = ()>) -> impl Stream<Item = BusMessage> {
        let stop = Some(Box::pin(stop));
        futures_util::stream::unfold((self, stop), |(mut member, mut stop)| async move {
            loop {
                let Some(stopping) = &mut stop else {
                    return member.next().await.map(|message| (message, (member, None)));
                };
                tokio::select! {
                    message = member.next() => return message.map(|message| (message, (member, stop))),
                    () = stopping => {
                        stop = None;
                        member.drain().await;
                    }
                }
            }
        })
    }
}

impl Stream for QueueSubscription {
    type Item = BusMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        match self.get_mut() {
            QueueSubscription::Nats(member) => member.messages.poll_recv(cx),
            QueueSubscription::Local(local) => Pin::new(local).poll_next(cx),
        }
    }
}
