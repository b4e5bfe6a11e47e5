//! Pusher presence channels, exact across the cluster
//! (`docs/adr/0011-pusher-presence-across-edges.md`).
//!
//! Each edge is the authority on its own members and publishes a member
//! event on `<prefix>.pusher.members.<C>` only when one of its users joins
//! `C` here first or leaves it here last. An edge holding `C` follows that
//! subject (only while it holds `C`), asked every edge for its members
//! when it began to, and so keeps the union; its subscribers are told
//! `member_added` / `member_removed` when a user enters or leaves the union.
//! Members of an edge that left, or missed three heartbeats, are removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::Bus;
use herald_handler::edges::{Edges, Standing};
use herald_proto::pusher::app::{App, WebhookKind};
use herald_proto::pusher::cluster::{ChannelQuery, EdgeMembers, MemberEvent};
use herald_proto::pusher::frame::{self, Member};
use herald_proto::subject::Subjects;
use tokio::sync::{Mutex, SetOnce};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::task::AbortOnDropHandle;

use super::view::{Change, ChannelView};
use super::webhooks::Webhooks;
use crate::events::PUBLISH_TIMEOUT;
use crate::handle::SessionHandle;
use crate::presence::HEARTBEAT_INTERVAL;
use crate::registry::Registry;

/// How long a channel nobody joined after all is kept before it is
/// dropped (a session that ended while it waited for the channel's first
/// answers).
const ABANDONED_AFTER: Duration = Duration::from_secs(10);

/// The presence channels this edge holds.
#[derive(Debug)]
pub(crate) struct Presence {
    /// This edge's id, which its member events and answers carry.
    edge: Arc<str>,
    /// Where member events are published and followed, and answers asked.
    bus: Bus,
    subjects: Subjects,
    /// The live edges, to ask for their members and to know which are gone.
    edges: Edges,
    /// The local sessions' handles, to tell them of members.
    registry: Arc<Registry>,
    /// Where member webhooks this edge decides go.
    webhooks: Arc<Webhooks>,
    /// By group. An async lock: member events are published while it is
    /// held, so they leave in the order of their `seq`.
    channels: Mutex<HashMap<Arc<str>, Channel>>,
    /// Source of epochs: each time this edge holds a channel gets a new one.
    next_epoch: AtomicU64,
}

/// A presence channel held here.
#[derive(Debug)]
struct Channel {
    /// Its app, for its webhooks.
    app: Arc<App>,
    /// Its name, as its subscribers know it.
    name: Box<str>,
    view: ChannelView,
    /// Local connections subscribed, told of the union's changes.
    subscribers: HashMap<u64, SessionHandle>,
    /// Set once the other edges' first answers are in.
    synced: Arc<SetOnce<()>>,
    /// When this edge began to hold it.
    opened: Instant,
    /// Follows the channel's member events; dropped with the channel.
    _following: AbortOnDropHandle<()>,
}

/// Why a connection may not join.
#[derive(Debug)]
pub(crate) struct Refused(pub String);

impl Presence {
    pub fn new(
        edge: &str,
        bus: Bus,
        subjects: Subjects,
        edges: Edges,
        registry: Arc<Registry>,
        webhooks: Arc<Webhooks>,
    ) -> Arc<Presence> {
        Arc::new(Presence {
            edge: edge.into(),
            bus,
            subjects,
            edges,
            registry,
            webhooks,
            channels: Mutex::default(),
            next_epoch: AtomicU64::new(1),
        })
    }

    /// Local connection `local` joins `channel` of `app` as `member`: the
    /// channel's members on every edge, for its `subscription_succeeded`.
    pub async fn join(
        self: &Arc<Self>,
        app: &Arc<App>,
        channel: &str,
        local: u64,
        member: Member,
    ) -> Result<Vec<Member>, Refused> {
        let group: Arc<str> = app.group(channel).into();
        loop {
            let synced = {
                let mut channels = self.channels.lock().await;
                let held = channels.entry(group.clone()).or_insert_with(|| self.hold(app, channel, group.clone()));
                held.synced.clone()
            };
            synced.wait().await;
            let handle = self.registry.handle_of(local).ok_or_else(|| Refused("the connection is closing".into()))?;
            let mut channels = self.channels.lock().await;
            // Dropped meanwhile (abandoned, or emptied): hold it again.
            let Some(held) = channels.get_mut(&group).filter(|held| held.synced.initialized()) else { continue };
            if !held.view.admits(&member.user_id, app.max_presence_members) {
                let max = app.max_presence_members;
                return Err(Refused(format!("the presence channel is full: at most {max} members")));
            }
            let (event, change) = held.view.join(local, member);
            if let Some(event) = event {
                self.publish(&group, &event).await;
            }
            if let Some(Change::Added(member)) = &change {
                self.webhooks.member(app, WebhookKind::MemberAdded, channel, &member.user_id).await;
            }
            self.announce(held, change);
            held.subscribers.insert(local, handle);
            return Ok(held.view.members());
        }
    }

    /// Local connection `local` leaves the presence channel that is
    /// `group` (unsubscribed, or closed).
    pub async fn leave(&self, group: &str, local: u64) {
        let mut channels = self.channels.lock().await;
        let Some(held) = channels.get_mut(group) else { return };
        if held.subscribers.remove(&local).is_none() {
            return;
        }
        let (event, change) = held.view.leave(local);
        if let Some(event) = event {
            self.publish(group, &event).await;
        }
        if let Some(Change::Removed(user)) = &change {
            self.webhooks.member(&held.app, WebhookKind::MemberRemoved, &held.name, user).await;
        }
        self.announce(held, change);
        if held.subscribers.is_empty() {
            channels.remove(group);
        }
    }

    /// This edge's answer about its members of `group`.
    pub async fn answer(&self, group: &str) -> EdgeMembers {
        match self.channels.lock().await.get(group) {
            Some(held) => held.view.answer(),
            None => EdgeMembers { edge: self.edge.to_string(), ..EdgeMembers::default() },
        }
    }

    /// This edge's members' user ids in each presence group it holds.
    pub async fn local_users(&self) -> HashMap<Arc<str>, Vec<String>> {
        let channels = self.channels.lock().await;
        channels.iter().map(|(group, held)| (group.clone(), held.view.local_users().cloned().collect())).collect()
    }

    /// Starts holding a channel: follows its member events and asks every
    /// edge for its members.
    fn hold(self: &Arc<Self>, app: &Arc<App>, channel: &str, group: Arc<str>) -> Channel {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        let synced = Arc::new(SetOnce::new());
        let following = self.clone().follow(group, epoch, synced.clone());
        Channel {
            app: app.clone(),
            name: channel.into(),
            view: ChannelView::new(self.edge.clone(), epoch),
            subscribers: HashMap::new(),
            synced,
            opened: Instant::now(),
            _following: AbortOnDropHandle::new(tokio::spawn(following)),
        }
    }

    /// Subscribes the channel's member events, then asks every edge for its
    /// members; events heard meanwhile wait in the subscription and are
    /// applied after the answers (those the answers cover are left out).
    /// Answers that come after the wait (an edge this one had not heard from
    /// yet) are applied when they come: an ask is only as complete as the
    /// edges this one knows of while it waits.
    async fn follow(self: Arc<Self>, group: Arc<str>, epoch: u64, synced: Arc<SetOnce<()>>) {
        let events = self.bus.subscribe(self.subjects.pusher_members(&group)).await;
        let query = ChannelQuery::Members { group: group.to_string() };
        let question = self.edges.standing::<EdgeMembers>(self.subjects.pusher_query(), &query).await;
        if let Err(e) = self.bus.sync().await {
            tracing::warn!(error = %e, "could not confirm a member subscription with NATS");
        }
        let (mut events, mut question) = match (events, question) {
            (Ok(events), Ok(question)) => (events, question),
            (Err(e), _) | (_, Err(e)) => {
                let _ = synced.set(());
                return tracing::error!(error = %e, group = &*group, "cannot follow a presence channel's members");
            }
        };
        self.ask_members(&mut question, &group, epoch).await;
        let _ = synced.set(());
        loop {
            let event = tokio::select! {
                message = events.next() => match message {
                    Some(message) => message,
                    None => return,
                },
                answer = question.late() => match answer {
                    Some(answer) => {
                        self.apply_answers(&group, epoch, [answer]).await;
                        continue;
                    }
                    None => return,
                },
            };
            let event: MemberEvent = match herald_proto::json::from_object(&event.payload) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(error = %e, "ignored a malformed member event");
                    continue;
                }
            };
            if *event.edge == *self.edge {
                continue;
            }
            let mut channels = self.channels.lock().await;
            let Some(held) = channels.get_mut(&group).filter(|held| held.view.epoch() == epoch) else { return };
            match held.view.apply(event) {
                Ok(changes) => changes.into_iter().for_each(|change| self.announce(held, Some(change))),
                Err(_gap) => {
                    drop(channels);
                    tracing::debug!(group = &*group, "member events were missed; asking the edges again");
                    self.ask_members(&mut question, &group, epoch).await;
                }
            }
        }
    }

    /// Asks every live edge for its members of `group` and applies the
    /// answers that come while it waits for them.
    async fn ask_members(&self, question: &mut Standing<EdgeMembers>, group: &str, epoch: u64) {
        match question.ask().await {
            Ok(answers) => self.apply_answers(group, epoch, answers).await,
            Err(e) => tracing::warn!(error = %e, group, "could not ask the edges for a presence channel's members"),
        }
    }

    /// Applies edges' answers about their members of `group`, unless this
    /// edge no longer holds it in `epoch`; a late answer from an edge gone
    /// since would bring back the members the sweep removed.
    async fn apply_answers(&self, group: &str, epoch: u64, answers: impl IntoIterator<Item = EdgeMembers>) {
        let mut channels = self.channels.lock().await;
        let Some(held) = channels.get_mut(group).filter(|held| held.view.epoch() == epoch) else { return };
        for answer in answers.into_iter().filter(|answer| !self.edges.is_gone(&answer.edge)) {
            for change in held.view.apply_answer(answer) {
                self.announce(held, Some(change));
            }
        }
    }

    /// Every heartbeat interval: removes the members of edges that are
    /// gone (their `member_removed` webhooks sent by the live edge with the
    /// smallest id holding the channel), and drops channels nobody joined
    /// after all.
    pub async fn sweep(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let mut channels = self.channels.lock().await;
            channels.retain(|_, held| {
                !held.subscribers.is_empty() || held.opened.elapsed() < ABANDONED_AFTER || !held.synced.initialized()
            });
            for held in channels.values_mut() {
                let gone: Vec<String> =
                    held.view.remote_edges().filter(|edge| self.edges.is_gone(edge)).map(str::to_owned).collect();
                if gone.is_empty() {
                    continue;
                }
                let mut changes = Vec::new();
                for edge in &gone {
                    tracing::info!(edge, channel = &*held.name, "an edge is gone; its presence members leave");
                    changes.extend(held.view.drop_edge(edge));
                }
                let sends_webhooks =
                    held.view.remote_edges().all(|edge| self.edges.is_gone(edge) || *edge > *self.edge);
                for change in changes {
                    if let (true, Change::Removed(user)) = (sends_webhooks, &change) {
                        self.webhooks.member(&held.app, WebhookKind::MemberRemoved, &held.name, user).await;
                    }
                    self.announce(held, Some(change));
                }
            }
        }
    }

    async fn publish(&self, group: &str, event: &MemberEvent) {
        let payload = Bytes::from(serde_json::to_vec(event).expect("a member event always serialises"));
        // Bounded: the presence lock is held meanwhile. A lost event is
        // repaired at the next: its seq gap makes the others ask again.
        let subject = self.subjects.pusher_members(group);
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.bus.publish(subject, payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, group, "member event not published"),
            Err(_) => tracing::warn!(group, "member event not published: NATS is away"),
        }
    }

    /// Tells the channel's local subscribers of a change, encoded once.
    fn announce(&self, held: &Channel, change: Option<Change>) {
        let frame = match change {
            None => return,
            Some(Change::Added(member)) => frame::member_added(&held.name, &member),
            Some(Change::Removed(user)) => frame::member_removed(&held.name, &user),
        };
        let frame = Utf8Bytes::from(frame);
        for handle in held.subscribers.values() {
            self.registry.offer(handle, frame.clone());
        }
    }
}
