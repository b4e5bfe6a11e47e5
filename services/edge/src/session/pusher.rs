//! What a session does when it speaks Pusher protocol 7 (`/app/<key>`):
//! reads Pusher frames into subscriptions, sign-ins and client events, and
//! writes Pusher's answers. Everything else (the loop, the mailbox,
//! limits, liveness, drain) is the session's, shared with `/ws`.
//!
//! A channel is the Herald group `<app's prefix><channel>`: subscribing
//! joins it (after the signature check for private and presence channels),
//! so deliveries reach the session through the registry like any group
//! member's, encoded for Pusher once per message by the pump. Signing in
//! makes the user id the session's Herald user, so `herald.user.<U>`
//! reaches it on `#server-to-user-<U>` and `herald.ctl.user.<U>` closes it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use herald_proto::close;
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::pusher::app::App;
use herald_proto::pusher::channel::{ChannelKind, user_channel};
use herald_proto::pusher::cluster::CLIENT_EVENT_USER_HEADER;
use herald_proto::pusher::codes;
use herald_proto::pusher::frame::{self, ClientMessage, Member, herald_from_event, signed_in_user};
use herald_proto::pusher::sign::Signed;
use herald_proto::pusher::socket_id::SocketId;
use herald_proto::subject::EXCLUDE_CONN_HEADER;

use super::rate::{Rate, RateLimiter, Verdict};
use super::{Ending, Session, SessionContext, Socket};
use crate::handle::CloseRequest;
use crate::registry::wait_subscribed;

/// Client events a connection may send per second, as Pusher allows.
const CLIENT_EVENTS_PER_SEC: u32 = 10;
/// The rate of client events: [`CLIENT_EVENTS_PER_SEC`], 10 in a burst
/// above that, and 20 refused for their rate, without backing off, before
/// the connection is closed with 4301.
const CLIENT_EVENTS: Rate = Rate { per_sec: CLIENT_EVENTS_PER_SEC, burst: 10, strikes: 20 };

/// The Pusher side of a session: the app it connected to and what it
/// subscribed.
#[derive(Debug)]
pub(crate) struct PusherSession {
    /// The app whose key the connection named.
    pub app: Arc<App>,
    /// The connection id in Pusher's spelling, which signatures cover.
    pub socket_id: SocketId,
    /// Subscribed channels, by name.
    channels: HashMap<Box<str>, Joined>,
    /// Bounds client events; made at the first one.
    client_events: Option<RateLimiter>,
}

/// One subscribed channel.
#[derive(Debug)]
pub(crate) struct Joined {
    pub kind: ChannelKind,
    /// On a presence channel, the member's user id (from the signed
    /// `channel_data`): it marks this connection's client events there.
    pub member: Option<Box<str>>,
}

/// What a Pusher frame asks of the session, once read.
enum Answer {
    /// Nothing to send.
    Nothing,
    /// Send this frame.
    Frame(String),
}

impl PusherSession {
    pub fn new(app: Arc<App>, socket_id: SocketId) -> PusherSession {
        PusherSession { app, socket_id, channels: HashMap::new(), client_events: None }
    }

    /// Leaves every channel as the session ends (the registry forgets the
    /// session's groups on its own).
    pub async fn leave_all(&self, ctx: &SessionContext, local: u64) {
        for (channel, joined) in &self.channels {
            left(ctx, &self.app, channel, joined.kind, local).await;
        }
    }
}

/// What a connection leaving `channel` changes beyond its group: the
/// channel's occupancy for webhooks, and its presence members.
async fn left(ctx: &SessionContext, app: &Arc<App>, channel: &str, kind: ChannelKind, local: u64) {
    if kind == ChannelKind::User {
        return;
    }
    ctx.pusher_webhooks.exit(app, channel);
    if kind == ChannelKind::Presence {
        ctx.pusher_presence.leave(&app.group(channel), local).await;
    }
}

impl Session {
    /// Serves one text frame from a Pusher client. Bad input is answered
    /// with `pusher:error` or `pusher:subscription_error`, and the
    /// connection stays open.
    pub(super) async fn pusher_text(&mut self, socket: &mut Socket, text: &str) -> Result<(), Ending> {
        let answer = match ClientMessage::parse(text) {
            Ok(message) => self.pusher_message(message).await?,
            Err(e) => self.pusher_refusal(None, &e.0),
        };
        match answer {
            Answer::Nothing => Ok(()),
            Answer::Frame(frame) => self.send(socket, frame).await,
        }
    }

    async fn pusher_message(&mut self, message: ClientMessage) -> Result<Answer, Ending> {
        Ok(match message {
            ClientMessage::Ping => Answer::Frame(frame::pong()),
            ClientMessage::Pong => Answer::Nothing,
            ClientMessage::Subscribe { channel, auth, channel_data } => {
                self.subscribe(channel, auth.as_deref(), channel_data.as_deref()).await
            }
            ClientMessage::Unsubscribe { channel } => {
                self.unsubscribe(&channel).await;
                Answer::Nothing
            }
            ClientMessage::SignIn { auth, user_data } => self.sign_in(&auth, &user_data).await?,
            ClientMessage::ClientEvent { event, channel, data } => {
                self.client_event(&event, &channel, data.get()).await?
            }
        })
    }

    /// `pusher:error` for input that was refused; the connection stays.
    fn pusher_refusal(&self, code: Option<u16>, message: &str) -> Answer {
        self.ctx.metrics.bad_frames.inc();
        Answer::Frame(frame::error(code, message))
    }

    fn pusher(&self) -> &PusherSession {
        match &self.protocol {
            super::Protocol::Pusher(pusher) => pusher,
            _ => unreachable!("Pusher frames come only from Pusher sessions"),
        }
    }

    fn pusher_mut(&mut self) -> &mut PusherSession {
        match &mut self.protocol {
            super::Protocol::Pusher(pusher) => pusher,
            _ => unreachable!("Pusher frames come only from Pusher sessions"),
        }
    }

    async fn subscribe(&mut self, channel: String, auth: Option<&str>, channel_data: Option<&str>) -> Answer {
        let refused = |status: u16, message: &str| {
            self.ctx.metrics.bad_frames.inc();
            Answer::Frame(frame::subscription_error(&channel, status, message))
        };
        let kind = match ChannelKind::of(&channel) {
            Ok(kind) => kind,
            Err(e) => return refused(400, &e.to_string()),
        };
        let pusher = self.pusher();
        if kind.needs_auth() {
            let socket_id = &pusher.socket_id.to_string();
            let signed = match (kind, channel_data) {
                (ChannelKind::Presence, Some(channel_data)) => {
                    Signed::Presence { socket_id, channel: &channel, channel_data }
                }
                (ChannelKind::Presence, None) => return refused(400, "a presence channel needs channel_data"),
                _ => Signed::Channel { socket_id, channel: &channel },
            };
            if !auth.is_some_and(|auth| signed.verify(&pusher.app.key, &pusher.app.secret, auth)) {
                return refused(401, "invalid signature: auth must be <key>:<HMAC-SHA256 of the channel's string>");
            }
        }
        match kind {
            ChannelKind::User => {
                // pusher-js subscribes to its own user channel after
                // `pusher:signin`; deliveries come through the user topic.
                if self.identity.user.as_deref().map(user_channel).as_deref() != Some(channel.as_str()) {
                    return refused(403, "the user channel is for the connection signed in as that user");
                }
            }
            ChannelKind::Presence => {
                let member = match Member::parse(channel_data.unwrap_or_default(), pusher.app.max_user_info_bytes) {
                    Ok(member) => member,
                    Err(e) => return refused(400, &e.0),
                };
                return self.join_presence(channel, member).await;
            }
            _ => {
                let group = pusher.app.group(&channel);
                wait_subscribed(self.ctx.registry.join(self.local, &group)).await;
            }
        }
        self.subscribed(&channel, Joined { kind, member: None });
        Answer::Frame(frame::subscription_succeeded(&channel, None))
    }

    /// Joins a presence channel as `member`: the group for deliveries, and
    /// the channel's members on every edge for the member list
    /// (`crate::pusher::presence`).
    async fn join_presence(&mut self, channel: String, member: Member) -> Answer {
        let group = self.pusher().app.group(&channel);
        wait_subscribed(self.ctx.registry.join(self.local, &group)).await;
        let user = member.user_id.as_str().into();
        let app = self.pusher().app.clone();
        let members = match self.ctx.pusher_presence.join(&app, &channel, self.local, member).await {
            Ok(members) => members,
            Err(refused) => {
                self.ctx.registry.leave(self.local, &group);
                self.ctx.metrics.bad_frames.inc();
                return Answer::Frame(frame::subscription_error(&channel, codes::OVER_CAPACITY, &refused.0));
            }
        };
        self.subscribed(&channel, Joined { kind: ChannelKind::Presence, member: Some(user) });
        Answer::Frame(frame::subscription_succeeded(&channel, Some(&members)))
    }

    /// Notes a subscription; a new one (not the user channel) may make the
    /// channel occupied.
    fn subscribed(&mut self, channel: &str, joined: Joined) {
        let kind = joined.kind;
        let pusher = self.pusher_mut();
        if pusher.channels.insert(channel.into(), joined).is_none() && kind != ChannelKind::User {
            let app = pusher.app.clone();
            self.ctx.pusher_webhooks.enter(&app, channel);
        }
    }

    async fn unsubscribe(&mut self, channel: &str) {
        let pusher = self.pusher_mut();
        let Some(joined) = pusher.channels.remove(channel) else { return };
        let app = pusher.app.clone();
        self.ctx.registry.leave(self.local, &app.group(channel));
        left(&self.ctx, &app, channel, joined.kind, self.local).await;
    }

    /// `pusher:signin`: the signed user id becomes the session's Herald
    /// user. A bad signature closes the connection with 4009, as Pusher
    /// does.
    async fn sign_in(&mut self, auth: &str, user_data: &str) -> Result<Answer, Ending> {
        let pusher = self.pusher();
        let signed = Signed::SignIn { socket_id: &pusher.socket_id.to_string(), user_data };
        if !signed.verify(&pusher.app.key, &pusher.app.secret, auth) {
            self.ctx.metrics.bad_frames.inc();
            return Err(Ending::ByEdge(CloseRequest::new(codes::UNAUTHORIZED, "invalid sign-in signature")));
        }
        let user = match signed_in_user(user_data) {
            Ok(user) => user,
            Err(e) => return Ok(self.pusher_refusal(None, &e.0)),
        };
        let user = Arc::from(user);
        wait_subscribed(self.ctx.registry.set_user(self.local, Some(&user))).await;
        self.identity.user = Some(user);
        Ok(Answer::Frame(frame::signin_success(user_data)))
    }

    /// A `client-` event: to the channel's other subscribers, everywhere,
    /// never back to the sender.
    async fn client_event(&mut self, event: &str, channel: &str, data: &str) -> Result<Answer, Ending> {
        let pusher = self.pusher();
        let app = pusher.app.clone();
        let joined = pusher.channels.get(channel);
        let refusal = match joined {
            _ if !app.client_events => Some("client events are disabled for this app"),
            None => Some("client events need a subscription to the channel"),
            Some(joined) if !joined.kind.allows_client_events() => {
                Some("client events are only for private and presence channels")
            }
            Some(_) if data.len() > app.max_event_data_bytes => Some("client event data is over the app's limit"),
            Some(_) => None,
        };
        if let Some(message) = refusal {
            return Ok(self.pusher_refusal(None, message));
        }
        let sender = joined.and_then(|joined| joined.member.clone());
        let now = self.ctx.clock.now();
        let limiter = self.pusher_mut().client_events.get_or_insert_with(|| RateLimiter::new(&CLIENT_EVENTS, now));
        match limiter.check(&CLIENT_EVENTS, now) {
            Verdict::Allowed => {}
            Verdict::Refused => {
                self.ctx.metrics.dropped.rate_limit.inc();
                let message = format!("client event rate limit is {CLIENT_EVENTS_PER_SEC} per second");
                return Ok(Answer::Frame(frame::error(Some(codes::CLIENT_EVENT_RATE), &message)));
            }
            Verdict::Abuse => {
                self.ctx.metrics.dropped.rate_limit.inc();
                return Err(Ending::ByEdge(CloseRequest::new(close::POLICY_VIOLATION, "client event rate limit")));
            }
        }
        let subject = self.ctx.subjects.group(&app.group(channel));
        let payload = Bytes::from(herald_from_event(event, data));
        let stamp = published_at::stamp_now();
        let conn = self.conn().to_string();
        let mut headers = vec![(EXCLUDE_CONN_HEADER, conn.as_str()), (PUBLISHED_AT_HEADER, &stamp)];
        if let Some(user) = &sender {
            headers.push((CLIENT_EVENT_USER_HEADER, user));
        }
        if let Err(e) = self.ctx.bus.publish_with_headers(subject, &headers, payload).await {
            tracing::warn!(conn = %self.conn(), error = %e, "client event not published");
        }
        Ok(Answer::Nothing)
    }
}
