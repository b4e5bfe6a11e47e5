//! Deliveries: subscriptions whose messages are handed to a handler as they
//! arrive, for the edge's topics and edge-wide subscriptions.
//!
//! On NATS they ride a subscribe-only connection of their own
//! (`herald-nats-sub`, ADR 0006): a subscription is a map entry and its
//! handler, with no channel or task per subscription, where an async-nats
//! subscription is a channel of about 6.4 KiB. The handler runs on that
//! connection's reader, so it must not block. On the in-process bus a
//! subscription is a task reading a local subscription (`herald dev` holds
//! few sessions; what matters there is that it behaves the same).
//!
//! Subscriptions take their handler as an `Arc`, so that many can share
//! one (the edge's topics do: one handler per kind of topic rather than an
//! allocation per user); each message says which subscription it came by.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use herald_nats_sub as nats_sub;
use prometheus_client::metrics::counter::Counter;
use tokio_util::task::AbortOnDropHandle;

use crate::local::LocalBus;
use crate::nats::BusConfig;
use crate::{BusError, BusMessage};

/// What a delivery subscription hands its messages to, one at a time, in
/// the order they arrived. It must not block: on NATS it runs on the
/// connection's reader, and its time is time no other message is read.
pub trait Deliver: Send + Sync + 'static {
    fn deliver(&self, message: Delivered<'_>);
}

/// One message handed to a [`Deliver`], or read from a [`crate::Subscription`]
/// and looked at the same way ([`Delivered::from`]).
#[derive(Debug)]
pub struct Delivered<'a> {
    /// The subject it was published to (the whole subject, for a wildcard).
    pub subject: &'a str,
    /// Which delivery subscription it came by ([`DeliverySubscription::id`]);
    /// 0 for a message read from a [`crate::Subscription`].
    pub subscription: u64,
    /// The payload, the handler's to keep.
    pub payload: Bytes,
    /// Its headers, read where they arrived.
    headers: Headers<'a>,
}

#[derive(Debug)]
enum Headers<'a> {
    None,
    Nats(nats_sub::Headers<'a>),
    Bus(&'a async_nats::HeaderMap),
}

impl Delivered<'_> {
    /// The first value of a header, if the message has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.headers {
            Headers::None => None,
            Headers::Nats(headers) => headers.get(name),
            Headers::Bus(headers) => headers.get(name).map(|value| value.as_str()),
        }
    }
}

impl<'a> From<&'a BusMessage> for Delivered<'a> {
    fn from(message: &'a BusMessage) -> Delivered<'a> {
        let headers = message.headers.as_ref().map_or(Headers::None, Headers::Bus);
        Delivered { subject: message.subject(), subscription: 0, payload: message.payload.clone(), headers }
    }
}

/// Where delivery subscriptions are made; cheap to clone, every clone
/// shares the connection.
#[derive(Clone, Debug)]
pub enum Deliveries {
    Nats(nats_sub::Subscriber<dyn Deliver>),
    Local(LocalBus),
}

/// One delivery subscription; dropping it unsubscribes.
#[derive(Debug)]
pub enum DeliverySubscription {
    Nats(nats_sub::Subscription<dyn Deliver>),
    /// Boxed, so that the NATS variant (most of them) stays two words.
    Local(Box<LocalSubscription>),
}

/// A subscription on the in-process bus.
#[derive(Debug)]
pub struct LocalSubscription {
    id: u64,
    /// The task reading the local subscription.
    _reading: AbortOnDropHandle<()>,
}

/// Ids of local delivery subscriptions, unique in the process as NATS's
/// are on their connection.
static NEXT_LOCAL_ID: AtomicU64 = AtomicU64::new(1);

impl DeliverySubscription {
    /// What the messages it hands over carry as [`Delivered::subscription`].
    pub fn id(&self) -> u64 {
        match self {
            DeliverySubscription::Nats(subscription) => subscription.sid(),
            DeliverySubscription::Local(subscription) => subscription.id,
        }
    }
}

impl Deliveries {
    /// Starts the subscribe-only connection in the background (start-up
    /// does not wait for NATS, as with the bus). Its reconnections count
    /// in `reconnects`, with the bus's own.
    pub(crate) fn connect(config: &BusConfig, reconnects: Counter) -> Result<Deliveries, BusError> {
        let mut nats_config = nats_sub::Config::new(config.urls.clone(), format!("{} deliveries", config.name));
        nats_config.ping_interval = config.ping_interval;
        let connected_once = AtomicBool::new(false);
        nats_config.on_event = Some(Arc::new(move |event: &nats_sub::Event| {
            if matches!(event, nats_sub::Event::Connected { .. }) && connected_once.swap(true, Ordering::Relaxed) {
                reconnects.inc();
            }
            log_event(event);
        }));
        nats_sub::Subscriber::connect(nats_config)
            .map(Deliveries::Nats)
            .map_err(|e| BusError::BadUrl { url: config.urls.join(","), reason: e.into() })
    }

    /// Hands every message on `subject` to `handler` until the returned
    /// subscription is dropped. Returns at once; [`Deliveries::sync`] says
    /// when the bus has it. The subscription holds `handler`, so `handler`
    /// must not hold the subscription.
    pub fn subscribe(&self, subject: &str, handler: Arc<dyn Deliver>) -> Result<DeliverySubscription, BusError> {
        match self {
            Deliveries::Nats(subscriber) => subscriber
                .subscribe(subject, handler)
                .map(DeliverySubscription::Nats)
                .map_err(|e| BusError::Subscribe { subject: subject.to_owned(), reason: e.into() }),
            Deliveries::Local(bus) => {
                let mut messages = bus.subscribe(subject.to_owned(), None)?;
                let id = NEXT_LOCAL_ID.fetch_add(1, Ordering::Relaxed);
                let reading = tokio::spawn(async move {
                    while let Some(message) = messages.next().await {
                        handler.deliver(Delivered { subscription: id, ..Delivered::from(&message) });
                    }
                });
                Ok(DeliverySubscription::Local(Box::new(LocalSubscription {
                    id,
                    _reading: AbortOnDropHandle::new(reading),
                })))
            }
        }
    }

    /// Returns once the bus has every subscription made before the call:
    /// from then on it delivers what anyone publishes to them. While NATS
    /// is down it waits for the connection after; callers bound it.
    pub async fn sync(&self) {
        match self {
            Deliveries::Nats(subscriber) => subscriber.sync().await,
            // The local bus applies a subscription before it returns.
            Deliveries::Local(_) => {}
        }
    }

    /// Whether deliveries can arrive right now.
    pub fn is_connected(&self) -> bool {
        match self {
            Deliveries::Nats(subscriber) => subscriber.is_connected(),
            Deliveries::Local(_) => true,
        }
    }
}

/// A [`Deliver`] as the subscribe-only connection calls it.
impl nats_sub::Deliver for dyn Deliver {
    fn deliver(&self, message: nats_sub::Delivery<'_>) {
        let headers = match message.headers {
            // A status (e.g. "no responders") is not a message anybody
            // sent, as the bus's subscriptions see it.
            Some(headers) if headers.status().is_some() => return,
            Some(headers) => Headers::Nats(headers),
            None => Headers::None,
        };
        Deliver::deliver(
            self,
            Delivered { subject: message.subject, subscription: message.sid, payload: message.payload, headers },
        );
    }
}

fn log_event(event: &nats_sub::Event) {
    match event {
        nats_sub::Event::Connected { server } => tracing::info!(server, "NATS deliveries connected"),
        nats_sub::Event::Disconnected { reason } => {
            tracing::warn!(reason, "NATS deliveries disconnected; reconnecting");
        }
        nats_sub::Event::ConnectFailed { server, reason } => {
            tracing::warn!(server, reason, "NATS deliveries: connection attempt failed");
        }
        nats_sub::Event::ServerError(error) => tracing::warn!(error, "NATS deliveries: server error"),
        nats_sub::Event::LameDuck { server } => tracing::info!(server, "NATS deliveries: server leaving"),
        nats_sub::Event::Dropped { reason } => tracing::warn!(reason, "NATS deliveries: dropped a malformed message"),
    }
}
