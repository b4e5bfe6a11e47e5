//! Topics: one per user or group that local sessions belong to, each with
//! the one bus subscription for it; and, when broadcasts to everyone keep a
//! history, one topic for `all` that every session is in (otherwise `all`
//! is an edge-wide subscription, `edge_wide`).
//!
//! A topic without a history hands each message to its members as it
//! arrives, from its subscription's handler: no channel or task per topic
//! (ADR 0006). Its subscription is in its kind's family (ADR 0026): the
//! deliveries' connection keeps nothing of it, the topic keeps its id,
//! and when NATS reconnects the family's owner, [`TopicDeliveries`], says
//! every topic's subscription again from the registry. A topic with a
//! history has a pump task instead, which reads between messages (gaps,
//! resuming sessions: `recovery`).
//!
//! A topic's subscription hands its messages only to that topic: the
//! handler, which every topic of a kind shares, takes the name from the
//! subject and delivers only if the topic of that name holds the
//! subscription the message came by; a pump only to the topic of its
//! generation. So a new topic for the same name (the last member left and
//! a new one joined) never receives a message the old subscription was
//! handing over as it went.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroU64;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use herald_bus::{Deliver, Delivered, Deliveries, Family, Owner, Resubscribing};
use herald_proto::subject::decode_token;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::delivery::{Addressee, Fanout, prefetched};
use super::readiness::{Ready, Subscribed};
use super::recovery::{From, Joiners, Outcome};
use super::{Registry, State};
use crate::handle::SessionHandle;

/// What a topic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicKind {
    // The order indexes `Registry::topic_families`.
    User,
    Group,
    /// Everyone: only when `all` keeps a history (its one name is [`ALL`]).
    All,
}

/// The name of the one topic of kind [`TopicKind::All`].
pub(super) const ALL: &str = "all";

impl TopicKind {
    /// Whom a message on such a topic is for.
    pub(super) fn addressee(self, name: &str) -> Addressee<'_> {
        match self {
            TopicKind::User => Addressee::User(name),
            TopicKind::Group => Addressee::Group(name),
            TopicKind::All => Addressee::Connection,
        }
    }
}

/// One user or group that local sessions belong to.
#[derive(Debug)]
pub(super) struct Topic {
    /// Which start of this topic's name it is: what its pump checks, and
    /// which batch of confirmations its subscription is in.
    pub generation: u64,
    /// Its local sessions, by the local part of their connection ids.
    pub members: Members,
    /// Dropping the topic unsubscribes.
    feed: Feed,
}

/// A topic's local sessions, by the local part of their connection ids.
///
/// Most users have one session on an edge, and every one of them has a
/// topic: the one member is kept in place, and a map (boxed, so that the
/// topic stays small in the registry's maps) is made at the second. A
/// topic is made with its first member and dropped with its last, so
/// there is no empty variant, which would take a tag beside the handle's
/// pointer (24 B where this is 16, in every topic).
#[derive(Debug)]
pub(super) enum Members {
    One(u64, SessionHandle),
    #[allow(clippy::box_collection, reason = "in place, the map's 48 B would be in every topic")]
    Many(Box<HashMap<u64, SessionHandle>>),
}

impl Members {
    fn insert(&mut self, local: u64, handle: SessionHandle) {
        match self {
            Members::One(only, only_handle) if *only == local => *only_handle = handle,
            Members::One(only, only_handle) => {
                *self = Members::Many(Box::new(HashMap::from([(*only, only_handle.clone()), (local, handle)])));
            }
            Members::Many(members) => {
                members.insert(local, handle);
            }
        }
    }

    /// Takes `local` out. Whether nobody is left: the topic is then
    /// dropped, with the one member left in place if it was `local`.
    fn remove(&mut self, local: u64) -> bool {
        match self {
            Members::One(only, _) => *only == local,
            Members::Many(members) => {
                members.remove(&local);
                members.is_empty()
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Members::One(..) => 1,
            Members::Many(members) => members.len(),
        }
    }

    /// Each member's local id and handle.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &SessionHandle)> + Clone {
        let (one, many) = match self {
            Members::One(local, handle) => (Some((*local, handle)), None),
            Members::Many(members) => (None, Some(members.iter().map(|(local, handle)| (*local, handle)))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Each member's local id.
    pub fn locals(&self) -> impl Iterator<Item = u64> {
        self.iter().map(|(local, _)| local)
    }
}

/// How a topic's messages reach it.
#[derive(Debug)]
enum Feed {
    /// Handed to a [`TopicDeliveries`] as they arrive, by the subscription
    /// of this id in the kind's family; `None` when subscribing failed
    /// (logged; its members get nothing until they reconnect). When NATS
    /// has it is the registry's `Confirmations`' to say, from the topic's
    /// generation. Ended by [`Topic::end`] (the id is all it is, 8 bytes
    /// in every user's topic); the topics still held when the registry is
    /// dropped go with its deliveries' connection.
    Handler { subscription: Option<NonZeroU64> },
    /// Read by the pump of a topic with a history, which owns the
    /// subscription; `joiners` are the sessions waiting for its answer
    /// (`recovery`).
    Pump { _task: AbortOnDropHandle<()>, joiners: Arc<Joiners> },
}

/// The handler and owner of the family of the topics of one kind without
/// a history, which they all share: fans each message out to the members
/// of the topic its subscription is for, and says every such topic's
/// subscription again when NATS reconnects. Holds the registry weakly:
/// the registry holds the deliveries, which hold this.
#[derive(Debug)]
pub(super) struct TopicDeliveries {
    registry: Weak<Registry>,
    kind: TopicKind,
}

impl TopicDeliveries {
    /// The families of the kinds of topics, in the order of [`TopicKind`].
    pub fn families(registry: &Weak<Registry>, deliveries: &Deliveries) -> [Family; 3] {
        [TopicKind::User, TopicKind::Group, TopicKind::All].map(|kind| {
            let family = Arc::new(TopicDeliveries { registry: registry.clone(), kind });
            deliveries.family(family.clone(), family)
        })
    }
}

impl Deliver for TopicDeliveries {
    fn deliver(&self, message: Delivered<'_>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.deliver_to_topic(self.kind, &message);
        }
    }
}

/// Under the registry's lock, under which topics subscribe and end: no
/// topic comes or goes unseen meanwhile (the lock order is the registry's,
/// then the deliveries').
impl Owner for TopicDeliveries {
    fn resubscribe(&self, resubscribing: &Resubscribing<'_>) {
        let Some(registry) = self.registry.upgrade() else { return };
        let state = registry.read();
        for (name, topic) in state.topics(self.kind) {
            if let Feed::Handler { subscription: Some(id) } = topic.feed {
                resubscribing.sub(&registry.topic_subject(self.kind, name), id.get());
            }
        }
    }
}

impl Topic {
    /// Ends the topic's subscription: it was dropped from the registry.
    fn end(self, deliveries: &Deliveries) {
        if let Feed::Handler { subscription: Some(id) } = self.feed {
            deliveries.unsubscribe(id.get());
        }
    }
}

impl Registry {
    pub(super) fn add_member(
        self: &Arc<Self>,
        state: &mut State,
        kind: TopicKind,
        name: &Arc<str>,
        local: u64,
        handle: &SessionHandle,
        from: Option<From>,
    ) -> (Subscribed, Option<oneshot::Receiver<Outcome>>) {
        let topic = match state.topics_mut(kind).entry(name.clone()) {
            Entry::Occupied(topic) => {
                let topic = topic.into_mut();
                topic.members.insert(local, handle.clone());
                topic
            }
            Entry::Vacant(topic) => topic.insert(self.start_topic(kind, name.clone(), local, handle.clone())),
        };
        // Where the topic keeps a history, its pump says where the session is.
        let outcome = match (&topic.feed, from) {
            (Feed::Pump { joiners, .. }, Some(from)) => Some(joiners.push(local, handle, from)),
            _ => None,
        };
        (self.subscribed(topic), outcome)
    }

    /// What a session joining `topic` waits on before it says it is reachable.
    fn subscribed(&self, topic: &Topic) -> Subscribed {
        match &topic.feed {
            Feed::Handler { subscription: Some(_) } => self.confirmations.subscribed(topic.generation),
            Feed::Handler { subscription: None } => Subscribed::default(),
            Feed::Pump { joiners, .. } => Subscribed::from(&joiners.subscribed),
        }
    }

    /// A topic whose first member is `local`.
    fn start_topic(self: &Arc<Self>, kind: TopicKind, name: Arc<str>, local: u64, handle: SessionHandle) -> Topic {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let history = self.history.clone().filter(|history| history.covers(kind));
        let feed = match history {
            Some(history) => {
                let joiners = Arc::new(Joiners::default());
                let ready = Ready::of(&joiners.subscribed);
                let pump = self.clone().pump_history(kind, name, generation, ready, joiners.clone(), history);
                Feed::Pump { _task: AbortOnDropHandle::new(tokio::spawn(pump)), joiners }
            }
            None => {
                let subscription = self.subscribe_topic(kind, &self.topic_subject(kind, &name));
                if subscription.is_some() {
                    self.confirmations.queued(generation);
                }
                Feed::Handler { subscription }
            }
        };
        Topic { generation, members: Members::One(local, handle), feed }
    }

    /// The subject a topic's subscription is to.
    fn topic_subject(&self, kind: TopicKind, name: &str) -> String {
        match kind {
            TopicKind::User => self.subjects.user(name),
            TopicKind::Group => self.subjects.group(name),
            TopicKind::All => self.subjects.all(),
        }
    }

    fn deliver_to_topic(&self, kind: TopicKind, message: &Delivered<'_>) {
        // The subject is `<prefix>.user.<U>` or `<prefix>.group.<G>`, its
        // last token the name, encoded.
        let Some(Ok(name)) = message.subject.rsplit('.').next().map(decode_token) else { return };
        let Some(frame) = self.frame_of(message) else { return };
        let excluded = self.excluded_local(message);
        let state = self.read();
        let fed = |topic: &&Topic| matches!(topic.feed, Feed::Handler { subscription: Some(id) } if id.get() == message.subscription);
        let Some(topic) = state.topics(kind).get(name.as_str()).filter(fed) else { return };
        let mut fanout = Fanout::new(frame, kind.addressee(&name), message);
        for (local, handle) in prefetched(topic.members.iter(), |(_, handle)| handle) {
            if Some(local) != excluded
                && let Some(frame) = fanout.frame_for(handle.wire())
            {
                self.offer(handle, frame);
            }
        }
    }

    /// Takes a session out of a topic, and ends the topic once nobody is
    /// left in it.
    pub(super) fn remove_member(&self, topics: &mut HashMap<Arc<str>, Topic>, name: &str, local: u64) {
        if let Some(topic) = topics.get_mut(name)
            && topic.members.remove(local)
            && let Some(topic) = topics.remove(name)
        {
            topic.end(&self.deliveries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Wire;

    fn handle() -> SessionHandle {
        SessionHandle::new(1, Wire::Herald).0
    }

    fn locals(members: &Members) -> Vec<u64> {
        let mut locals: Vec<u64> = members.locals().collect();
        locals.sort_unstable();
        locals
    }

    #[test]
    fn members_are_kept_in_place_until_a_second_joins() {
        let mut members = Members::One(7, handle());
        members.insert(7, handle());
        assert!(matches!(members, Members::One(7, _)));
        assert_eq!((members.len(), locals(&members)), (1, vec![7]));
        members.insert(9, handle());
        members.insert(8, handle());
        assert_eq!((members.len(), locals(&members)), (3, vec![7, 8, 9]));
        assert!(!members.remove(8));
        assert!(!members.remove(100));
        assert_eq!((members.len(), locals(&members)), (2, vec![7, 9]));
        assert!(!members.remove(7));
        assert!(members.remove(9), "nobody left");
    }

    /// The topic of a user's subscription id, as its messages carry it.
    fn subscription_of(registry: &Registry, user: &str) -> u64 {
        match &registry.read().users[user].feed {
            Feed::Handler { subscription: Some(id) } => id.get(),
            feed => panic!("not subscribed: {feed:?}"),
        }
    }

    #[tokio::test]
    async fn a_topic_takes_messages_only_from_its_own_subscription() {
        use futures_util::StreamExt;
        use herald_bus::Bus;
        use herald_proto::subject::Subjects;

        use crate::metrics::Metrics;
        use crate::registry::Delivering;

        let bus = Bus::local();
        let metrics = Arc::new(Metrics::new(&bus));
        let registry = Registry::new(
            "e".to_owned(),
            Subjects::default(),
            bus.deliveries().unwrap(),
            bus.clone(),
            None,
            Delivering { flushers: 1, slow_consumer_grace: std::time::Duration::from_secs(1) },
            metrics,
        );
        let first = registry.new_conn_id();
        registry.register(first.local(), handle(), Some(&"u".into()), &[], None);
        let old = subscription_of(&registry, "u");
        // The last member leaves and another joins: a new topic, a new
        // subscription, while the old one's handler may still be handing a
        // message over.
        registry.unregister(first.local());
        let (member, mut mailbox) = SessionHandle::new(8, Wire::Herald);
        let second = registry.new_conn_id();
        registry.register(second.local(), member, Some(&"u".into()), &[], None);
        let new = subscription_of(&registry, "u");
        assert_ne!(old, new);

        let subject = Subjects::default().user("u");
        let mut seen = bus.subscribe(subject.clone()).await.unwrap();
        bus.publish(subject, "{}".into()).await.unwrap();
        let message = seen.next().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.recv()).await.expect("delivered live");
        let mut delivered = Delivered::from(&message);
        delivered.subscription = old;
        registry.deliver_to_topic(TopicKind::User, &delivered);
        assert!(mailbox.try_recv().is_none(), "the old subscription's message was delivered");
        delivered.subscription = new;
        registry.deliver_to_topic(TopicKind::User, &delivered);
        assert!(mailbox.try_recv().is_some());
    }

    #[test]
    fn a_topics_subscription_is_its_id() {
        // Every user has a topic: 40 B where a subscription handle made it 48.
        assert_eq!(size_of::<Topic>(), 40);
    }

    #[test]
    fn removing_the_one_member_leaves_nobody() {
        let mut members = Members::One(3, handle());
        assert!(!members.remove(4));
        assert_eq!(members.len(), 1);
        assert!(members.remove(3));
    }
}
