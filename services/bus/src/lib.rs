//! The message bus Herald's services talk over.
//!
//! A thin layer that speaks in Herald's terms (subjects, payloads, one
//! header, requests) so the services never touch a client library directly.
//! Two buses stand behind it:
//!
//! - [`nats`]: NATS, for everything deployed. Reconnection is the client
//!   library's: after an outage it reconnects with backoff and re-subscribes
//!   every live subscription. Messages published while it is disconnected
//!   are lost (NATS core is at-most-once).
//! - [`local`]: an in-process bus for `herald dev` and unit tests, which
//!   behaves like NATS for everything Herald relies on: subject wildcards,
//!   queue groups, request/reply with "no responders", headers, draining,
//!   and dropping messages for a subscriber that does not keep up.
//!
//! [`deliveries`] are subscriptions whose messages are handed to a handler
//! as they arrive, on NATS over a subscribe-only connection with no channel
//! per subscription (the edge's topics, ADR 0006).
//!
//! [`history`] is JetStream's message history (NATS only), for recovery.
//!
//! [`queue`] subscriptions are queue-group members that leave without
//! losing what is on its way to them; on NATS they too ride a
//! subscribe-only connection (ADR 0033).
//!
//! [`responder`] is the request-serving loop routers and handlers share;
//! [`trace`] carries the trace context in message headers.

pub mod deliveries;
pub mod history;
pub mod local;
pub mod nats;
pub mod queue;
pub mod responder;
pub mod trace;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use thiserror::Error;

pub use crate::deliveries::{
    Deliver, Delivered, Deliveries, DeliverySubscription, Family, LocalDeliveries, LocalSubscription, Owner,
    Resubscribing,
};
pub use crate::nats::BusConfig;
pub use crate::queue::QueueSubscription;

/// What a bus failure came from: the NATS client's own error, or what the
/// in-process bus refused. Kept whole (as the error's `source`) so a caller
/// can still tell the client's error kinds apart.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Failures talking to the bus. Each message ends with its cause's, so one
/// line says it all wherever it is logged; the cause is also the error's
/// `source`.
#[derive(Debug, Error)]
pub enum BusError {
    #[error("bad NATS URL {url:?}: {reason}")]
    BadUrl {
        url: String,
        #[source]
        reason: Cause,
    },
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        subject: String,
        #[source]
        reason: Cause,
    },
    #[error("cannot publish to {subject}: {reason}")]
    Publish {
        subject: String,
        #[source]
        reason: Cause,
    },
}

/// Why a request got no reply.
#[derive(Debug, Error)]
pub enum RequestError {
    /// Nobody listens on the subject.
    #[error("no responders on {0}")]
    NoResponders(String),
    /// Somebody listens but did not answer in time.
    #[error("request to {0} timed out")]
    TimedOut(String),
    /// The bus could not send the request (e.g. disconnected).
    #[error("request to {subject} failed: {reason}")]
    Failed {
        subject: String,
        #[source]
        reason: Cause,
    },
}

/// One message received on a subscription.
#[derive(Debug, Clone)]
pub struct BusMessage {
    subject: async_nats::Subject,
    /// Where the sender waits for an answer, for requests.
    reply: Option<async_nats::Subject>,
    pub payload: Bytes,
    headers: Option<async_nats::HeaderMap>,
}

impl BusMessage {
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject to answer a request on.
    pub fn reply(&self) -> Option<&str> {
        self.reply.as_deref()
    }

    /// The first value of a header, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|value| value.as_str())
    }
}

/// A connection to a bus; cheap to clone, every clone shares it.
#[derive(Clone, Debug)]
pub enum Bus {
    Nats(nats::NatsBus),
    Local(local::LocalBus),
}

impl Bus {
    /// Connects to NATS in the background: start-up does not wait for it, so
    /// a process can come up (and report itself unready) while NATS is down.
    pub async fn connect(config: &BusConfig) -> Result<Bus, BusError> {
        nats::NatsBus::connect(config).await.map(Bus::Nats)
    }

    /// A new, empty in-process bus.
    pub fn local() -> Bus {
        Bus::Local(local::LocalBus::default())
    }

    /// The message history on JetStream; `None` on the in-process bus,
    /// which stores nothing.
    pub fn history(&self) -> Option<history::History> {
        match self {
            Bus::Nats(bus) => Some(history::History::new(bus.clone())),
            Bus::Local(_) => None,
        }
    }

    /// Whether the bus is connected right now.
    pub fn is_connected(&self) -> bool {
        match self {
            Bus::Nats(bus) => bus.is_connected(),
            Bus::Local(_) => true,
        }
    }

    /// Counts reconnections to NATS after an outage; the in-process bus
    /// never disconnects, so its count stays 0.
    pub fn reconnects(&self) -> prometheus_client::metrics::counter::Counter {
        match self {
            Bus::Nats(bus) => bus.reconnects(),
            Bus::Local(_) => prometheus_client::metrics::counter::Counter::default(),
        }
    }

    /// Where to make delivery subscriptions (messages handed to a handler as
    /// they arrive, see [`deliveries`]). On NATS each call opens a
    /// subscribe-only connection of its own, in the background.
    pub fn deliveries(&self) -> Result<Deliveries, BusError> {
        match self {
            Bus::Nats(bus) => Deliveries::connect(bus.config(), bus.reconnects()),
            Bus::Local(bus) => Ok(Deliveries::local(bus)),
        }
    }

    pub async fn subscribe(&self, subject: String) -> Result<Subscription, BusError> {
        match self {
            Bus::Nats(bus) => bus.subscribe(subject).await,
            Bus::Local(bus) => bus.subscribe(subject, None).map(Subscription::Local),
        }
    }

    /// Subscribes as one member of a queue group: each message goes to one
    /// member of the group. [`Bus::sync`] says when the bus has it.
    pub async fn queue_subscribe(&self, subject: String, group: String) -> Result<QueueSubscription, BusError> {
        match self {
            Bus::Nats(bus) => bus.queue_subscribe(&subject, &group).await,
            Bus::Local(bus) => bus.subscribe(subject, Some(group)).map(QueueSubscription::Local),
        }
    }

    pub async fn publish(&self, subject: String, payload: Bytes) -> Result<(), BusError> {
        self.send(subject, None, None, payload).await
    }

    /// Publishes with one header, e.g. `Herald-Exclude-Conn`.
    pub async fn publish_with_header(
        &self,
        subject: String,
        header: (&str, &str),
        payload: Bytes,
    ) -> Result<(), BusError> {
        self.publish_with_headers(subject, &[header], payload).await
    }

    /// Publishes with headers (a Pusher client event carries its sender's
    /// connection, to skip, and user id).
    pub async fn publish_with_headers(
        &self,
        subject: String,
        headers: &[(&str, &str)],
        payload: Bytes,
    ) -> Result<(), BusError> {
        let mut map = async_nats::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, *value);
        }
        self.send(subject, None, Some(map), payload).await
    }

    async fn send(
        &self,
        subject: String,
        reply: Option<String>,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
    ) -> Result<(), BusError> {
        let headers = trace::inject(headers);
        match self {
            Bus::Nats(bus) => bus.publish(subject, reply, headers, payload).await,
            Bus::Local(bus) => bus.publish(subject, reply, headers, payload).map(|_| ()),
        }
    }

    /// Sends a request and waits up to `timeout` for the first reply.
    pub async fn request(&self, subject: String, payload: Bytes, timeout: Duration) -> Result<Bytes, RequestError> {
        let headers = trace::inject(None);
        match self {
            Bus::Nats(bus) => bus.request(subject, headers, payload, timeout).await,
            Bus::Local(bus) => bus.request(subject, headers, payload, timeout).await,
        }
    }

    /// Asks every listener on `subject` and gathers their answers until
    /// `expected` have arrived or `timeout` passes, whichever is first.
    pub async fn scatter(
        &self,
        subject: String,
        payload: Bytes,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Bytes>, BusError> {
        let inbox = self.new_inbox();
        let mut answers = self.subscribe(inbox.clone()).await?;
        self.ask(subject, inbox, payload).await?;
        Ok(answers.gather(expected, tokio::time::Instant::now() + timeout).await)
    }

    /// A subject of this connection's own to receive answers on.
    pub fn new_inbox(&self) -> String {
        match self {
            Bus::Nats(bus) => bus.new_inbox(),
            Bus::Local(bus) => bus.new_inbox(),
        }
    }

    /// Publishes a question whose answers go to `inbox`: for questions
    /// answered by many, whose answers are read from a subscription the
    /// asker keeps (see [`Subscription::gather`]).
    pub async fn ask(&self, subject: String, inbox: String, payload: Bytes) -> Result<(), BusError> {
        self.send(subject, Some(inbox), None, payload).await
    }

    /// Returns once the bus has handled everything sent before: a
    /// subscription made before `sync` receives every message published
    /// after it returns, by anyone.
    pub async fn sync(&self) -> Result<(), BusError> {
        match self {
            Bus::Nats(bus) => bus.sync().await,
            // The local bus applies a subscription before it returns.
            Bus::Local(_) => Ok(()),
        }
    }

    /// Waits until everything published so far has been written to the
    /// server (not that the server has handled it: see [`Bus::sync`]).
    pub async fn flush(&self) -> Result<(), BusError> {
        match self {
            Bus::Nats(bus) => bus.flush().await,
            // Publishing to the local bus delivers before it returns.
            Bus::Local(_) => Ok(()),
        }
    }
}

/// The messages of one subscription; dropping it unsubscribes.
#[derive(Debug)]
pub enum Subscription {
    Nats(async_nats::Subscriber),
    Local(local::LocalSubscription),
}

impl Subscription {
    /// Reads payloads until `expected` have arrived, `deadline` passes or
    /// the subscription ends, whichever is first.
    pub async fn gather(&mut self, expected: usize, deadline: tokio::time::Instant) -> Vec<Bytes> {
        let mut gathered = Vec::new();
        while gathered.len() < expected {
            match tokio::time::timeout_at(deadline, self.next()).await {
                Ok(Some(answer)) => gathered.push(answer.payload),
                Ok(None) | Err(_) => break,
            }
        }
        gathered
    }
}

impl Stream for Subscription {
    type Item = BusMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        match self.get_mut() {
            Subscription::Nats(inner) => loop {
                match Pin::new(&mut *inner).poll_next(cx) {
                    // A status from the server (e.g. "no responders" on a
                    // reply subject) is not a message anybody sent.
                    Poll::Ready(Some(m)) if m.status.is_some() => continue,
                    other => {
                        break other.map(|message| {
                            message.map(|m| BusMessage {
                                subject: m.subject,
                                reply: m.reply,
                                payload: m.payload,
                                headers: m.headers,
                            })
                        });
                    }
                }
            },
            Subscription::Local(inner) => Pin::new(inner).poll_next(cx),
        }
    }
}
