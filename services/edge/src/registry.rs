//! The edge's index of its sessions and the bus interest it holds for them.
//!
//! Per edge there is exactly one bus subscription per distinct user and group
//! that any local session belongs to ("topics"), shared by those sessions and
//! dropped when the last one leaves. A few more subscriptions per edge cover
//! everyone (`all`), every single connection (`conn.<edge>.*` and
//! `ctl.conn.<edge>.*`): a connection costs no subscription of its own.
//!
//! Control operations for users come in on one wildcard per edge
//! (`ctl.user.*`) and are filtered here, rather than on a second subscription
//! per user: each subscription costs about 6 KiB in the NATS client, control
//! operations are rare next to deliveries, and an edge drops the ones for
//! users it does not hold after one map lookup.
//!
//! Each topic has a pump task that reads its subscription and fans every
//! message out to the topic's members. The frame is made once (`Utf8Bytes`,
//! reference-counted) and shared by all of them; queuing it never waits, so a
//! slow session cannot hold up the others.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::{Bus, BusMessage, Subscription};
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::control::ControlOp;
use herald_proto::presence::{EdgePresence, PresenceQuery};
use herald_proto::subject::{EXCLUDE_CONN_HEADER, Subjects, decode_token};
use tokio::sync::SetOnce;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::task::AbortOnDropHandle;

use crate::metrics::{Metrics, inc};
use crate::session::handle::{CloseRequest, Offer, SessionHandle};

/// How long a session waits for its subscriptions to reach NATS before it
/// goes on regardless (NATS down: they are restored when it returns).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// What a topic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopicKind {
    User,
    Group,
}

/// The index and everything it needs to keep bus interest in step with it.
#[derive(Debug)]
pub(crate) struct Registry {
    /// This edge's id, the first part of its connection ids.
    edge_id: String,
    /// Subject names.
    subjects: Subjects,
    /// Where subscriptions are made.
    bus: Bus,
    /// Source of the local part of connection ids.
    next_local: AtomicU64,
    /// Source of topic generations: a pump only delivers to the topic it was
    /// started for, never to a newer topic of the same name.
    next_generation: AtomicU64,
    /// Start of the delivery clock used for slow-consumer grace.
    epoch: Instant,
    /// How long a mailbox may stay full before the session is closed.
    slow_consumer_grace: Duration,
    metrics: Arc<Metrics>,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<u64, ConnEntry>,
    users: HashMap<Arc<str>, Topic>,
    groups: HashMap<Arc<str>, Topic>,
}

/// One local connection.
#[derive(Debug)]
struct ConnEntry {
    handle: SessionHandle,
    user: Option<Arc<str>>,
    groups: BTreeSet<Arc<str>>,
}

/// One user or group that local sessions belong to.
#[derive(Debug)]
struct Topic {
    generation: u64,
    members: HashMap<u64, SessionHandle>,
    /// Set once NATS has the subscription.
    subscribed: Subscribed,
    /// Dropping the topic stops its pump, which unsubscribes.
    _pump: AbortOnDropHandle<()>,
}

/// The user and groups a session had when it left.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    pub user: Option<String>,
    pub groups: Vec<String>,
}

impl Registry {
    pub fn new(
        edge_id: String,
        subjects: Subjects,
        bus: Bus,
        slow_consumer_grace: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            edge_id,
            subjects,
            bus,
            next_local: AtomicU64::new(1),
            next_generation: AtomicU64::new(1),
            epoch: Instant::now(),
            slow_consumer_grace,
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

    /// User and group subscriptions held now.
    pub fn topics(&self) -> usize {
        let state = self.read();
        state.users.len() + state.groups.len()
    }

    /// Starts the edge-wide subscriptions: everyone, and single connections.
    /// They live as long as the returned guards.
    pub async fn start_edge_pumps(self: &Arc<Self>) -> Vec<AbortOnDropHandle<()>> {
        let all = self.subjects.all();
        let conns = self.subjects.conns_of_edge(&self.edge_id);
        let ctl_conns = self.subjects.ctl_conns_of_edge(&self.edge_id);
        let ctl_users = self.subjects.ctl_users();
        let mut waits = Vec::new();
        let mut pumps = Vec::new();
        let routes = [
            (all, EdgeRoute::All),
            (conns, EdgeRoute::Conn),
            (ctl_conns, EdgeRoute::CtlConn),
            (ctl_users, EdgeRoute::CtlUser),
        ];
        for (subject, route) in routes {
            let (ready, subscribed) = readiness();
            let registry = self.clone();
            pumps.push(AbortOnDropHandle::new(tokio::spawn(async move {
                let Some(mut messages) = registry.subscribe(subject, ready).await else { return };
                while let Some(message) = messages.next().await {
                    registry.on_edge_message(route, message);
                }
            })));
            waits.push(subscribed);
        }
        wait_subscribed(waits).await;
        pumps
    }

    /// A fresh connection id, given out at the upgrade so that a `$connect`
    /// handler already sees the id the connection will have.
    pub fn new_conn_id(&self) -> ConnId {
        ConnId::new(&self.edge_id, self.next_local.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds a session with its user and groups, subscribing what this edge
    /// does not hold yet. Returns the subscriptions to wait for before telling
    /// the client it is connected.
    pub fn register(
        self: &Arc<Self>,
        conn: &ConnId,
        handle: SessionHandle,
        user: Option<&str>,
        groups: &[String],
    ) -> Vec<Subscribed> {
        let local = conn.local();
        let mut subscribed = Vec::new();
        let mut state = self.write();
        let user: Option<Arc<str>> = user.map(Arc::from);
        if let Some(user) = &user {
            subscribed.push(self.add_member(&mut state, TopicKind::User, user, local, &handle));
        }
        let mut entry_groups = BTreeSet::new();
        for group in groups {
            let group: Arc<str> = Arc::from(group.as_str());
            if entry_groups.insert(group.clone()) {
                subscribed.push(self.add_member(&mut state, TopicKind::Group, &group, local, &handle));
            }
        }
        state.conns.insert(local, ConnEntry { handle, user, groups: entry_groups });
        subscribed
    }

    /// Removes a session from everything it belonged to.
    pub fn unregister(&self, local: u64) -> Membership {
        let mut state = self.write();
        let Some(entry) = state.conns.remove(&local) else { return Membership::default() };
        if let Some(user) = &entry.user {
            remove_member(&mut state.users, user, local);
        }
        for group in &entry.groups {
            remove_member(&mut state.groups, group, local);
        }
        Membership {
            user: entry.user.as_deref().map(str::to_owned),
            groups: entry.groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// Adds a session to a group. `None` when the session is gone.
    pub fn join(self: &Arc<Self>, local: u64, group: &str) -> Option<Subscribed> {
        let mut state = self.write();
        let entry = state.conns.get(&local)?;
        let handle = entry.handle.clone();
        let group: Arc<str> = Arc::from(group);
        let subscribed = self.add_member(&mut state, TopicKind::Group, &group, local, &handle);
        state.conns.get_mut(&local)?.groups.insert(group);
        Some(subscribed)
    }

    /// Removes a session from a group; whether it was in it.
    pub fn leave(&self, local: u64, group: &str) -> bool {
        let mut state = self.write();
        let removed = state.conns.get_mut(&local).is_some_and(|entry| entry.groups.remove(group));
        if removed {
            remove_member(&mut state.groups, group, local);
        }
        removed
    }

    /// Moves a session to another user (after `$auth` with another `sub`).
    pub fn set_user(self: &Arc<Self>, local: u64, user: Option<&str>) -> Option<Subscribed> {
        let mut state = self.write();
        let entry = state.conns.get(&local)?;
        if entry.user.as_deref() == user {
            return None;
        }
        let handle = entry.handle.clone();
        let old = entry.user.clone();
        if let Some(old) = &old {
            remove_member(&mut state.users, old, local);
        }
        let user: Option<Arc<str>> = user.map(Arc::from);
        let subscribed = user.as_ref().map(|user| self.add_member(&mut state, TopicKind::User, user, local, &handle));
        state.conns.get_mut(&local)?.user = user;
        subscribed
    }

    /// The groups a session is in now.
    pub fn groups_of(&self, local: u64) -> Vec<String> {
        self.read()
            .conns
            .get(&local)
            .map(|entry| entry.groups.iter().map(|g| g.to_string()).collect())
            .unwrap_or_default()
    }

    /// This edge's part of a presence query.
    pub fn presence(&self, query: &PresenceQuery) -> EdgePresence {
        let state = self.read();
        let (topic, with_users) = match query {
            PresenceQuery::User(user) => (state.users.get(user.as_str()), false),
            PresenceQuery::Group(group) => (state.groups.get(group.as_str()), true),
        };
        let members = topic.map(|topic| &topic.members);
        let conns = members.map_or(0, HashMap::len);
        let mut users: Vec<String> = match members {
            Some(members) if with_users => {
                members.keys().filter_map(|local| state.conns.get(local)?.user.as_deref().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        };
        users.sort_unstable();
        users.dedup();
        EdgePresence { edge: self.edge_id.clone(), conns, users }
    }

    /// Asks every session to close at once (drain).
    pub fn close_all(&self, request: &CloseRequest) {
        for entry in self.read().conns.values() {
            entry.handle.close_now(request.clone());
        }
    }

    fn add_member(
        self: &Arc<Self>,
        state: &mut State,
        kind: TopicKind,
        name: &Arc<str>,
        local: u64,
        handle: &SessionHandle,
    ) -> Subscribed {
        let topics = match kind {
            TopicKind::User => &mut state.users,
            TopicKind::Group => &mut state.groups,
        };
        let topic = topics.entry(name.clone()).or_insert_with(|| self.start_topic(kind, name.clone()));
        topic.members.insert(local, handle.clone());
        topic.subscribed.clone()
    }

    fn start_topic(self: &Arc<Self>, kind: TopicKind, name: Arc<str>) -> Topic {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (ready, subscribed) = readiness();
        let registry = self.clone();
        let pump = AbortOnDropHandle::new(tokio::spawn(registry.pump_topic(kind, name, generation, ready)));
        Topic { generation, members: HashMap::new(), subscribed, _pump: pump }
    }

    /// Subscribes, waits until NATS has the subscription, and says so.
    async fn subscribe(&self, subject: String, ready: Ready) -> Option<Subscription> {
        let subscription = match self.bus.subscribe(subject).await {
            Ok(subscription) => subscription,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe; deliveries to it are lost");
                return None;
            }
        };
        if let Err(e) = self.bus.sync().await {
            tracing::warn!(error = %e, "could not confirm a subscription with NATS");
        }
        drop(ready);
        Some(subscription)
    }

    async fn pump_topic(self: Arc<Self>, kind: TopicKind, name: Arc<str>, generation: u64, ready: Ready) {
        let subject = match kind {
            TopicKind::User => self.subjects.user(&name),
            TopicKind::Group => self.subjects.group(&name),
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
        let topics = match kind {
            TopicKind::User => &state.users,
            TopicKind::Group => &state.groups,
        };
        let Some(topic) = topics.get(name).filter(|topic| topic.generation == generation) else { return };
        for (local, handle) in &topic.members {
            if Some(*local) != excluded {
                self.offer(handle, frame.clone());
            }
        }
    }

    /// Applies a control operation to every local connection of a user.
    fn control_user(self: &Arc<Self>, message: &BusMessage) {
        let Some(Ok(user)) = message.subject().rsplit('.').next().map(decode_token) else { return };
        let locals: Vec<u64> = match self.read().users.get(user.as_str()) {
            Some(topic) => topic.members.keys().copied().collect(),
            None => return,
        };
        let Some(op) = parse_control(message) else { return };
        for local in locals {
            self.apply_control(local, &op);
        }
    }

    fn on_edge_message(self: &Arc<Self>, route: EdgeRoute, message: BusMessage) {
        match route {
            EdgeRoute::All => {
                let Some(frame) = self.frame_of(&message) else { return };
                let excluded = self.excluded_local(&message);
                for (local, entry) in &self.read().conns {
                    if Some(*local) != excluded {
                        self.offer(&entry.handle, frame.clone());
                    }
                }
            }
            EdgeRoute::Conn => {
                let Some(local) = last_token_local(message.subject()) else { return };
                if self.excluded_local(&message) == Some(local) {
                    return;
                }
                let Some(frame) = self.frame_of(&message) else { return };
                if let Some(entry) = self.read().conns.get(&local) {
                    self.offer(&entry.handle, frame);
                }
            }
            EdgeRoute::CtlConn => {
                let Some(local) = last_token_local(message.subject()) else { return };
                if let Some(op) = parse_control(&message) {
                    self.apply_control(local, &op);
                }
            }
            EdgeRoute::CtlUser => self.control_user(&message),
        }
    }

    fn apply_control(self: &Arc<Self>, local: u64, op: &ControlOp) {
        match op {
            ControlOp::Join { group } => {
                self.join(local, group);
            }
            ControlOp::Leave { group } => {
                self.leave(local, group);
            }
            ControlOp::Disconnect { code, reason } => {
                if let Some(entry) = self.read().conns.get(&local) {
                    entry.handle.close_after_queued(CloseRequest::new(*code, reason.clone()));
                }
            }
        }
    }

    /// The frame a bus message becomes: its payload as it is, once checked to
    /// be text.
    fn frame_of(&self, message: &BusMessage) -> Option<Utf8Bytes> {
        inc(&self.metrics.bus_messages_total);
        match Utf8Bytes::try_from(message.payload.clone()) {
            Ok(frame) => Some(frame),
            Err(_) => {
                tracing::warn!(subject = message.subject(), "dropped a message that is not UTF-8 text");
                None
            }
        }
    }

    /// The local connection a message's `Herald-Exclude-Conn` names, if it is
    /// one of ours.
    fn excluded_local(&self, message: &BusMessage) -> Option<u64> {
        let excluded: ConnId = message.header(EXCLUDE_CONN_HEADER)?.trim().parse().ok()?;
        (excluded.edge() == self.edge_id).then_some(excluded.local())
    }

    /// Queues a frame for a session; a session whose mailbox stayed full for
    /// longer than the grace is closed with 1013.
    fn offer(&self, handle: &SessionHandle, frame: Utf8Bytes) {
        // The clock starts at 1 so that 0 can mean "not full".
        let now_ms = self.epoch.elapsed().as_millis() as u64 + 1;
        if let Offer::Full { since_ms } = handle.offer(frame, now_ms) {
            inc(&self.metrics.deliveries_dropped_total);
            if Duration::from_millis(now_ms - since_ms) >= self.slow_consumer_grace
                && handle.close_now(CloseRequest::new(close::TRY_AGAIN_LATER, "slow consumer"))
            {
                inc(&self.metrics.slow_consumers_total);
            }
        }
    }
}

/// Which edge-wide subscription a message came from.
#[derive(Debug, Clone, Copy)]
enum EdgeRoute {
    All,
    Conn,
    CtlConn,
    CtlUser,
}

fn remove_member(topics: &mut HashMap<Arc<str>, Topic>, name: &str, local: u64) {
    if let Some(topic) = topics.get_mut(name) {
        topic.members.remove(&local);
        if topic.members.is_empty() {
            topics.remove(name);
        }
    }
}

/// The local connection number at the end of `<prefix>.conn.<edge>.<n>`.
fn last_token_local(subject: &str) -> Option<u64> {
    ConnId::parse_local(subject.rsplit('.').next()?)
}

fn parse_control(message: &BusMessage) -> Option<ControlOp> {
    match herald_proto::json::from_object(&message.payload) {
        Ok(op) => Some(op),
        Err(e) => {
            tracing::warn!(subject = message.subject(), error = %e, "ignored a control message that is not a valid op");
            None
        }
    }
}

/// Set once a subscription is live, or once trying is over (it failed, or
/// its topic is gone): what sessions wait on before they say they are
/// reachable. (A `SetOnce` rather than a `watch` channel, whose eight
/// receiver `Notify`s cost about 350 bytes per topic.)
pub(crate) type Subscribed = Arc<SetOnce<()>>;

/// The subscribing side of a [`Subscribed`]: sets it when dropped, whether
/// subscribing succeeded, failed or was cancelled, so no session waits on
/// a subscription nobody is making.
#[derive(Debug)]
struct Ready(Subscribed);

impl Drop for Ready {
    fn drop(&mut self) {
        let _ = self.0.set(());
    }
}

fn readiness() -> (Ready, Subscribed) {
    let subscribed = Subscribed::default();
    (Ready(subscribed.clone()), subscribed)
}

/// Waits, for a bounded time, until every subscription is live.
pub(crate) async fn wait_subscribed(subscriptions: impl IntoIterator<Item = Subscribed>) {
    let all = async {
        for subscribed in subscriptions {
            subscribed.wait().await;
        }
    };
    if tokio::time::timeout(SUBSCRIBE_WAIT, all).await.is_err() {
        tracing::warn!("subscriptions not confirmed by NATS in time; going on");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_go_on_once_subscribing_is_over_whatever_its_outcome() {
        let (ready, subscribed) = readiness();
        let waiter = tokio::spawn(wait_subscribed([subscribed.clone()]));
        tokio::task::yield_now().await;
        assert!(!subscribed.initialized());
        // Dropped without subscribing: failed, or its topic went away.
        drop(ready);
        tokio::time::timeout(Duration::from_millis(500), waiter).await.unwrap().unwrap();
        assert!(subscribed.initialized());
    }
}
