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
//! one; each message says which subscription it came by. The edge's
//! topics, one per user, go further: they are subscriptions in a
//! [`Family`], one per kind of topic, of which the connection keeps
//! nothing, not even the subject: a topic is its id, and the registry,
//! which keeps the topics anyway, says them again when NATS reconnects
//! (ADR 0026).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use herald_nats_sub as nats_sub;
pub use herald_nats_sub::{Owner, Resubscribing};
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
    Local(LocalDeliveries),
}

/// Deliveries on the in-process bus.
#[derive(Clone, Debug)]
pub struct LocalDeliveries {
    bus: LocalBus,
    /// The tasks reading the subscriptions of families, by id: they end by
    /// their id ([`Deliveries::unsubscribe`]), as on NATS.
    in_families: Arc<Mutex<HashMap<u64, AbortOnDropHandle<()>>>>,
}

/// Subscriptions that share a handler and are kept by their owner
/// ([`Deliveries::family`]).
pub enum Family {
    Nats(nats_sub::Family),
    /// Its handler: the in-process bus never reconnects, so it has no use
    /// for the owner.
    Local(Arc<dyn Deliver>),
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Family::Nats(family) => f.debug_tuple("Nats").field(family).finish(),
            Family::Local(_) => f.write_str("Local"),
        }
    }
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

impl LocalDeliveries {
    /// Reads the local subscription to `subject` on a task, handing each
    /// message to `handler` with a new id, until the task is aborted.
    fn read(&self, subject: &str, handler: Arc<dyn Deliver>) -> Result<(u64, AbortOnDropHandle<()>), BusError> {
        let mut messages = self.bus.subscribe(subject.to_owned(), None)?;
        let id = NEXT_LOCAL_ID.fetch_add(1, Ordering::Relaxed);
        let reading = tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                handler.deliver(Delivered { subscription: id, ..Delivered::from(&message) });
            }
        });
        Ok((id, AbortOnDropHandle::new(reading)))
    }

    fn in_families(&self) -> std::sync::MutexGuard<'_, HashMap<u64, AbortOnDropHandle<()>>> {
        self.in_families.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Deliveries {
    /// Deliveries on the in-process bus `bus`.
    pub(crate) fn local(bus: &LocalBus) -> Deliveries {
        Deliveries::Local(LocalDeliveries { bus: bus.clone(), in_families: Arc::default() })
    }

    /// Starts the subscribe-only connection in the background (start-up
    /// does not wait for NATS, as with the bus). Its reconnections count
    /// in `reconnects`, with the bus's own.
    pub(crate) fn connect(config: &BusConfig, reconnects: Counter) -> Result<Deliveries, BusError> {
        nats_sub::Subscriber::connect(subscriber_config(config, "deliveries", reconnects))
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
            Deliveries::Local(local) => {
                let (id, reading) = local.read(subject, handler)?;
                Ok(DeliverySubscription::Local(Box::new(LocalSubscription { id, _reading: reading })))
            }
        }
    }

    /// Registers a family of subscriptions, for many subscriptions that
    /// share `handler` and are kept by `owner`, which says them again when
    /// NATS reconnects: the connection keeps nothing of each (ADR 0026).
    /// A fixed few, made at start-up (at most 15 on NATS).
    pub fn family(&self, handler: Arc<dyn Deliver>, owner: Arc<dyn Owner>) -> Family {
        match self {
            Deliveries::Nats(subscriber) => Family::Nats(subscriber.family(handler, owner)),
            Deliveries::Local(_) => Family::Local(handler),
        }
    }

    /// Hands every message on `subject` to `family`'s handler, with the
    /// returned id, until [`Deliveries::unsubscribe`] is called with it.
    /// Until then the family's owner must say it when asked
    /// ([`Owner::resubscribe`]), with the same subject and id. Returns at
    /// once; [`Deliveries::sync`] says when the bus has it.
    pub fn subscribe_in(&self, family: &Family, subject: &str) -> Result<u64, BusError> {
        let failed =
            |reason: nats_sub::Error| BusError::Subscribe { subject: subject.to_owned(), reason: reason.into() };
        match (self, family) {
            (Deliveries::Nats(subscriber), Family::Nats(family)) => {
                subscriber.subscribe_in(*family, subject).map_err(failed)
            }
            (Deliveries::Local(local), Family::Local(handler)) => {
                let (id, reading) = local.read(subject, handler.clone())?;
                local.in_families().insert(id, reading);
                Ok(id)
            }
            _ => {
                Err(BusError::Subscribe { subject: subject.to_owned(), reason: "a family of other deliveries".into() })
            }
        }
    }

    /// Ends a family's subscription ([`Deliveries::subscribe_in`]).
    pub fn unsubscribe(&self, id: u64) {
        match self {
            Deliveries::Nats(subscriber) => subscriber.unsubscribe(id),
            Deliveries::Local(local) => drop(local.in_families().remove(&id)),
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

/// A subscribe-only connection to the bus's servers, named for its `role`
/// in NATS monitoring and in the logs; its reconnections count in
/// `reconnects`, with the bus's own.
pub(crate) fn subscriber_config(config: &BusConfig, role: &'static str, reconnects: Counter) -> nats_sub::Config {
    let mut nats_config = nats_sub::Config::new(config.urls.clone(), format!("{} {role}", config.name));
    nats_config.ping_interval = config.ping_interval;
    let connected_once = AtomicBool::new(false);
    nats_config.on_event = Some(Arc::new(move |event: &nats_sub::Event| {
        if matches!(event, nats_sub::Event::Connected { .. }) && connected_once.swap(true, Ordering::Relaxed) {
            reconnects.inc();
        }
        log_event(role, event);
    }));
    nats_config
}

fn log_event(role: &str, event: &nats_sub::Event) {
    match event {
        nats_sub::Event::Connected { server } => tracing::info!(server, "NATS {role} connected"),
        nats_sub::Event::Disconnected { reason } => {
            tracing::warn!(reason, "NATS {role} disconnected; reconnecting");
        }
        nats_sub::Event::ConnectFailed { server, reason } => {
            tracing::warn!(server, reason, "NATS {role}: connection attempt failed");
        }
        nats_sub::Event::ServerError(error) => tracing::warn!(error, "NATS {role}: server error"),
        nats_sub::Event::LameDuck { server } => tracing::info!(server, "NATS {role}: server leaving"),
        nats_sub::Event::Dropped { reason } => tracing::warn!(reason, "NATS {role}: dropped a malformed message"),
    }
}
