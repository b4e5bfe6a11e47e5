//! The edge's index of its sessions and the bus interest it holds for them.
//!
//! Per edge there is exactly one bus subscription per distinct user and group
//! that any local session belongs to ("topics"), shared by those sessions and
//! dropped when the last one leaves. When broadcasts to everyone keep a
//! history, `all` is one more topic, which every session is in. A few more subscriptions per edge cover
//! everyone (`all`), every single connection (`conn.<edge>.*` and
//! `ctl.conn.<edge>.*`): a connection costs no subscription of its own.
//!
//! Control operations for users come in on one wildcard per edge
//! (`ctl.user.*`) and are filtered here, rather than on a second subscription
//! per user: control operations are rare next to deliveries, and an edge
//! drops the ones for users it does not hold after one map lookup.
//!
//! The index, the topics and the edge-wide subscriptions share one lock, so
//! a delivery never sees a session half registered. By concern:
//!
//! - this file: the index of sessions (register, move between groups and
//!   users, presence, closing them all);
//! - [`topics`]: one topic per user or group, its subscription's handler
//!   (or, with a history, its pump task), its generation;
//! - [`edge_wide`]: the edge-wide subscriptions and control operations;
//! - [`delivery`]: how one bus message becomes one shared frame offered to
//!   sessions, and what a full mailbox means;
//! - [`readiness`]: when a subscription is live, which is what sessions wait
//!   on before they say they are reachable;
//! - [`recovery`]: topics with a history: positions, gaps, and resuming
//!   sessions brought up to date (ADR 0012).
//!
//! The registry knows sessions only by their [`SessionHandle`]s, whatever
//! protocol they speak: frames arrive as the bytes backends published.

mod delivery;
mod edge_wide;
mod readiness;
pub(crate) mod recovery;
mod topics;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use herald_bus::{Bus, Deliveries, Family};
use herald_proto::conn_id::ConnId;
use herald_proto::history::{ALL_KEY, Resume, USER_KEY, group_key};
use herald_proto::presence::{EdgePresence, PresenceQuery};
use herald_proto::subject::Subjects;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::readiness::Confirmations;
pub(crate) use self::readiness::{Subscribed, wait_subscribed};
use self::recovery::From;
pub(crate) use self::recovery::{Outcome, Recovery};
pub(crate) use self::topics::TopicKind;
use self::topics::{ALL, Members, Topic, TopicDeliveries};
use crate::handle::flush::Flusher;
use crate::handle::{CloseRequest, SessionHandle, Wire};
use crate::history::History;
use crate::metrics::Metrics;

/// The index and everything it needs to keep bus interest in step with it.
#[derive(Debug)]
pub(crate) struct Registry {
    /// This edge's id, the first part of its connection ids, which share
    /// this one copy of it.
    edge_id: Arc<str>,
    /// Subject names, for the subscriptions.
    subjects: Subjects,
    /// Where topics and edge-wide subscriptions subscribe (each message is
    /// handed to their handler as it arrives), and where topics end their
    /// subscriptions.
    deliveries: Deliveries,
    /// The families of the topics of each kind, in the order of
    /// [`TopicKind`]: their handlers, and the registry says their
    /// subscriptions again when NATS reconnects.
    topic_families: [Family; 3],
    /// Confirms new subscriptions with NATS, many at a time.
    confirmations: Confirmations,
    /// Writes the frames deliveries corked for idle sessions.
    flusher: Flusher,
    /// Where the pumps of topics with a history subscribe.
    bus: Bus,
    /// The history of the kinds of topics that keep one.
    history: Option<Arc<History>>,
    /// Source of the local part of connection ids.
    next_local: AtomicU64,
    /// Source of topic generations, given out under the state's lock: a
    /// pump only delivers to the topic it was made for, never to a newer
    /// topic of the same name, and a topic's generation says which batch
    /// of confirmations its subscription is in (`readiness`).
    next_generation: AtomicU64,
    /// Start of the delivery clock used for slow-consumer grace.
    epoch: Instant,
    /// How long a mailbox may stay full before the session is closed.
    slow_consumer_grace: Duration,
    /// Counts deliveries, drops and slow consumers.
    metrics: Arc<Metrics>,
    /// The index and the topics, under one lock.
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every local session, by the local part of its connection id.
    conns: HashMap<u64, ConnEntry>,
    /// The users local sessions belong to.
    users: HashMap<Arc<str>, Topic>,
    /// The groups local sessions belong to.
    groups: HashMap<Arc<str>, Topic>,
    /// Everyone, as the one topic [`ALL`], when `all` keeps a history
    /// (otherwise empty: the edge-wide subscription reaches `conns`).
    all: HashMap<Arc<str>, Topic>,
}

impl State {
    /// The topics of one kind.
    fn topics(&self, kind: TopicKind) -> &HashMap<Arc<str>, Topic> {
        match kind {
            TopicKind::User => &self.users,
            TopicKind::Group => &self.groups,
            TopicKind::All => &self.all,
        }
    }

    fn topics_mut(&mut self, kind: TopicKind) -> &mut HashMap<Arc<str>, Topic> {
        match kind {
            TopicKind::User => &mut self.users,
            TopicKind::Group => &mut self.groups,
            TopicKind::All => &mut self.all,
        }
    }
}

/// One local connection.
#[derive(Debug)]
struct ConnEntry {
    /// How deliveries and control operations reach it.
    handle: SessionHandle,
    /// Its user's topic name, if it has a user.
    user: Option<Arc<str>>,
    /// Its groups' topic names; boxed, and only while there are some: in
    /// place, an empty set would be 24 B in every entry of the map a
    /// broadcast to everyone walks, where this is 8.
    #[allow(clippy::box_collection, reason = "in place, the set's 24 B would be in every entry")]
    groups: Option<Box<BTreeSet<Arc<str>>>>,
}

impl ConnEntry {
    fn groups(&self) -> impl Iterator<Item = &Arc<str>> {
        self.groups.iter().flat_map(|groups| groups.iter())
    }
}

/// How the registry's deliveries are written to its sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivering {
    /// Flushing tasks to start ([`Flusher::start`]).
    pub flushers: usize,
    /// How long a mailbox may stay full before the session is closed.
    pub slow_consumer_grace: Duration,
}

/// The user and groups a session had when it left.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

impl Registry {
    /// Must be called within a tokio runtime: it starts the tasks that
    /// confirm subscriptions and flush corked frames.
    pub fn new(
        edge_id: String,
        subjects: Subjects,
        deliveries: Deliveries,
        bus: Bus,
        history: Option<Arc<History>>,
        delivering: Delivering,
        metrics: Arc<Metrics>,
    ) -> Arc<Registry> {
        Arc::new_cyclic(|registry| Registry {
            edge_id: edge_id.into(),
            topic_families: TopicDeliveries::families(registry, &deliveries),
            subjects,
            confirmations: Confirmations::start(deliveries.clone()),
            flusher: Flusher::start(delivering.flushers, metrics.frames_sent.clone(), metrics.flusher_paused.clone()),
            deliveries,
            bus,
            history,
            next_local: AtomicU64::new(1),
            next_generation: AtomicU64::new(1),
            epoch: Instant::now(),
            slow_consumer_grace: delivering.slow_consumer_grace,
            metrics,
            state: RwLock::default(),
        })
    }

    pub fn edge_id(&self) -> &str {
        &self.edge_id
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sessions held now.
    pub fn sessions(&self) -> usize {
        self.read().conns.len()
    }

    /// Whether deliveries can arrive right now.
    pub fn deliveries_connected(&self) -> bool {
        self.deliveries.is_connected()
    }

    /// User and group subscriptions held now.
    pub fn topics(&self) -> usize {
        let state = self.read();
        state.users.len() + state.groups.len()
    }

    /// A fresh connection id, given out at the upgrade so that a `$connect`
    /// handler already sees the id the connection will have.
    pub fn new_conn_id(&self) -> ConnId {
        self.conn_id(self.next_local.fetch_add(1, Ordering::Relaxed))
    }

    /// The id of this edge's connection `local`, for sessions, which keep
    /// only their local part.
    pub fn conn_id(&self, local: u64) -> ConnId {
        ConnId::on_edge(&self.edge_id, local)
    }

    /// Adds a session with its user and groups, subscribing what this edge
    /// does not hold yet. Returns the subscriptions to wait for before telling
    /// the client it is connected, and, where subjects keep a history, what
    /// their pumps will say about it (the client resumes from `resume`):
    /// only to Herald sessions, whose protocol has `$recovered`.
    pub fn register(
        self: &Arc<Self>,
        local: u64,
        handle: SessionHandle,
        user: Option<&Arc<str>>,
        groups: &[String],
        resume: Option<&Resume>,
    ) -> (Vec<Subscribed>, Recovery) {
        let mut subscribed = Vec::new();
        let mut recovery = Recovery::new(resume.is_some());
        let resumable = matches!(handle.wire(), Wire::Herald);
        let from = |key: &str| resumable.then(|| From::of(resume, key));
        let mut state = self.write();
        // The session's own text, shared rather than copied.
        let user = user.cloned();
        if let Some(user) = &user {
            let (live, outcome) = self.add_member(&mut state, TopicKind::User, user, local, &handle, from(USER_KEY));
            subscribed.push(live);
            recovery.extend(outcome);
        }
        let mut entry_groups = BTreeSet::new();
        for group in groups {
            let group: Arc<str> = Arc::from(group.as_str());
            if entry_groups.insert(group.clone()) {
                let from = from(&group_key(&group));
                let (live, outcome) = self.add_member(&mut state, TopicKind::Group, &group, local, &handle, from);
                subscribed.push(live);
                recovery.extend(outcome);
            }
        }
        if self.history.as_ref().is_some_and(|history| history.covers(TopicKind::All)) {
            let all = Arc::from(ALL);
            let (live, outcome) = self.add_member(&mut state, TopicKind::All, &all, local, &handle, from(ALL_KEY));
            subscribed.push(live);
            recovery.extend(outcome);
        }
        let groups = (!entry_groups.is_empty()).then(|| Box::new(entry_groups));
        state.conns.insert(local, ConnEntry { handle, user, groups });
        (subscribed, recovery)
    }

    /// Removes a session from everything it belonged to.
    pub fn unregister(&self, local: u64) -> Membership {
        let mut state = self.write();
        let Some(entry) = state.conns.remove(&local) else { return Membership::default() };
        if let Some(user) = &entry.user {
            self.remove_member(&mut state.users, user, local);
        }
        for group in entry.groups() {
            self.remove_member(&mut state.groups, group, local);
        }
        self.remove_member(&mut state.all, ALL, local);
        Membership {
            user: entry.user.as_deref().map(str::to_owned),
            groups: entry.groups().map(|g| g.to_string()).collect(),
        }
    }

    /// Adds a session to a group. `None` when the session is gone.
    pub fn join(self: &Arc<Self>, local: u64, group: &str) -> Option<Subscribed> {
        self.join_from(local, group, None).map(|(subscribed, _)| subscribed)
    }

    /// Adds a session to a group at the client's ask (`$join`), from where
    /// it says it was (`resume`, a position); where the group keeps a
    /// history, the pump's answer comes on the receiver, after the frames
    /// the client missed were queued. `None` when the session is gone.
    pub fn join_resuming(
        self: &Arc<Self>,
        local: u64,
        group: &str,
        resume: Option<&str>,
    ) -> Option<(Subscribed, Option<oneshot::Receiver<Outcome>>)> {
        self.join_from(local, group, Some(From::at(resume)))
    }

    fn join_from(
        self: &Arc<Self>,
        local: u64,
        group: &str,
        from: Option<From>,
    ) -> Option<(Subscribed, Option<oneshot::Receiver<Outcome>>)> {
        let mut state = self.write();
        let entry = state.conns.get(&local)?;
        let handle = entry.handle.clone();
        let group: Arc<str> = Arc::from(group);
        let joined = self.add_member(&mut state, TopicKind::Group, &group, local, &handle, from);
        state.conns.get_mut(&local)?.groups.get_or_insert_default().insert(group);
        Some(joined)
    }

    /// Removes a session from a group; whether it was in it.
    pub fn leave(&self, local: u64, group: &str) -> bool {
        let mut state = self.write();
        let Some(entry) = state.conns.get_mut(&local) else { return false };
        let removed = entry.groups.as_mut().is_some_and(|groups| groups.remove(group));
        if entry.groups.as_ref().is_some_and(|groups| groups.is_empty()) {
            entry.groups = None;
        }
        if removed {
            self.remove_member(&mut state.groups, group, local);
        }
        removed
    }

    /// Moves a session to another user (after `$auth` with another `sub`).
    pub fn set_user(self: &Arc<Self>, local: u64, user: Option<&Arc<str>>) -> Option<Subscribed> {
        let mut state = self.write();
        let entry = state.conns.get(&local)?;
        if entry.user.as_deref() == user.map(|user| &**user) {
            return None;
        }
        let handle = entry.handle.clone();
        let old = entry.user.clone();
        if let Some(old) = &old {
            self.remove_member(&mut state.users, old, local);
        }
        let user = user.cloned();
        let subscribed =
            user.as_ref().map(|user| self.add_member(&mut state, TopicKind::User, user, local, &handle, None).0);
        state.conns.get_mut(&local)?.user = user;
        subscribed
    }

    /// The groups a session is in now.
    pub fn groups_of(&self, local: u64) -> Vec<String> {
        self.read().conns.get(&local).map(|entry| entry.groups().map(|g| g.to_string()).collect()).unwrap_or_default()
    }

    /// How to reach a local session, while it is registered.
    pub fn handle_of(&self, local: u64) -> Option<SessionHandle> {
        self.read().conns.get(&local).map(|entry| entry.handle.clone())
    }

    /// The groups held here that `wanted` keeps, with their local sessions.
    pub fn group_sizes(&self, wanted: impl Fn(&str) -> bool) -> Vec<(String, usize)> {
        let state = self.read();
        state
            .groups
            .iter()
            .filter(|(group, _)| wanted(group))
            .map(|(group, topic)| (group.to_string(), topic.members.len()))
            .collect()
    }

    /// This edge's part of a presence query.
    pub fn presence(&self, query: &PresenceQuery) -> EdgePresence {
        let state = self.read();
        let (topic, with_users) = match query {
            PresenceQuery::User(user) => (state.users.get(user.as_str()), false),
            PresenceQuery::Group(group) => (state.groups.get(group.as_str()), true),
        };
        let members = topic.map(|topic| &topic.members);
        let conns = members.map_or(0, Members::len);
        let mut users: Vec<String> = match members {
            Some(members) if with_users => members
                .locals()
                .filter_map(|local| state.conns.get(&local)?.user.as_deref().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        users.sort_unstable();
        users.dedup();
        EdgePresence { edge: self.edge_id.to_string(), conns, users }
    }

    /// Asks every session to close at once (drain).
    pub fn close_all(&self, request: &CloseRequest) {
        for entry in self.read().conns.values() {
            entry.handle.close_now(request.clone());
        }
    }
}
