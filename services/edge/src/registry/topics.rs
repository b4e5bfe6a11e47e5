//! Topics: one per user or group that local sessions belong to, each with
//! the one bus subscription for it and the pump task that reads it and fans
//! every message out to the topic's members; and, when broadcasts to
//! everyone keep a history, one topic for `all` that every session is in
//! (otherwise `all` is an edge-wide subscription, `edge_wide`).
//!
//! A topic has a generation: its pump only delivers to the topic it was
//! started for, so a new topic for the same name (the last member left and
//! a new one joined) never receives the old subscription's messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use herald_bus::BusMessage;
use tokio::sync::oneshot;
use tokio_util::task::AbortOnDropHandle;

use super::delivery::{Addressee, Fanout};
use super::readiness::{Ready, Subscribed, readiness};
use super::recovery::{From, Joiners, Outcome};
use super::{Registry, State};
use crate::handle::SessionHandle;

/// What a topic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicKind {
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
    /// Which start of this topic's name it is.
    pub generation: u64,
    /// Its local sessions, by the local part of their connection ids.
    pub members: HashMap<u64, SessionHandle>,
    /// Set once NATS has the subscription.
    subscribed: Subscribed,
    /// Sessions waiting for the pump's answer, when the topic keeps a
    /// history (`recovery`).
    joiners: Option<Arc<Joiners>>,
    /// Dropping the topic stops its pump, which unsubscribes.
    _pump: AbortOnDropHandle<()>,
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
        let topic = state.topics_mut(kind).entry(name.clone()).or_insert_with(|| self.start_topic(kind, name.clone()));
        topic.members.insert(local, handle.clone());
        // Where the topic keeps a history, its pump says where the session is.
        let outcome = topic.joiners.as_ref().zip(from).map(|(joiners, from)| joiners.push(local, handle, from));
        (topic.subscribed.clone(), outcome)
    }

    fn start_topic(self: &Arc<Self>, kind: TopicKind, name: Arc<str>) -> Topic {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (ready, subscribed) = readiness();
        let registry = self.clone();
        let history = self.history.clone().filter(|history| history.covers(kind));
        let (pump, joiners) = match history {
            Some(history) => {
                let joiners = Arc::new(Joiners::default());
                let pump = registry.pump_history(kind, name, generation, ready, joiners.clone(), history);
                (AbortOnDropHandle::new(tokio::spawn(pump)), Some(joiners))
            }
            None => (AbortOnDropHandle::new(tokio::spawn(registry.pump_topic(kind, name, generation, ready))), None),
        };
        Topic { generation, members: HashMap::new(), subscribed, joiners, _pump: pump }
    }

    async fn pump_topic(self: Arc<Self>, kind: TopicKind, name: Arc<str>, generation: u64, ready: Ready) {
        let subject = match kind {
            TopicKind::User => self.subjects.user(&name),
            TopicKind::Group => self.subjects.group(&name),
            TopicKind::All => self.subjects.all(),
        };
        // Boxed: subscribing happens once, and its state would otherwise stay
        // in the task of every topic for as long as the topic lives.
        let Some(mut messages) = Box::pin(self.subscribe(subject, ready)).await else { return };
        while let Some(message) = messages.next().await {
            self.deliver_to_topic(kind, &name, generation, message);
        }
    }

    fn deliver_to_topic(&self, kind: TopicKind, name: &str, generation: u64, message: BusMessage) {
        let Some(frame) = self.frame_of(&message) else { return };
        let excluded = self.excluded_local(&message);
        let state = self.read();
        let Some(topic) = state.topics(kind).get(name).filter(|topic| topic.generation == generation) else { return };
        let mut fanout = Fanout::new(frame, kind.addressee(name), &message);
        for (local, handle) in &topic.members {
            if Some(*local) != excluded
                && let Some(frame) = fanout.frame_for(handle.wire())
            {
                self.offer(handle, frame);
            }
        }
    }
}

/// Takes a session out of a topic, and drops the topic (which unsubscribes)
/// once nobody is left in it.
pub(super) fn remove_member(topics: &mut HashMap<Arc<str>, Topic>, name: &str, local: u64) {
    if let Some(topic) = topics.get_mut(name) {
        topic.members.remove(&local);
        if topic.members.is_empty() {
            topics.remove(name);
        }
    }
}
