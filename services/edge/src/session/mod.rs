//! One WebSocket session: a tokio task that owns its socket (an actor).
//!
//! Everyone else reaches a session through its [`SessionHandle`]: a bounded
//! mailbox for frames and a close request that bypasses the mailbox.
//! What sessions need from the edge is their [`SessionContext`].
//! The task reads client frames, writes what its mailbox holds, keeps the
//! client's token and liveness in check, and waits on the client's actions,
//! all in one `select!` loop, so a session costs one task and no locks.
//!
//! The protocol a client speaks is decided at the upgrade and kept in one
//! place, the session's [`Protocol`]: it reads client frames (`system` and
//! `actions` for Herald's own, `pusher` for Pusher's, `socketio` for
//! Socket.IO's, whose emits are actions too) and writes the session's own
//! frames; the loop, mailbox, limits, liveness and drain are the same for
//! every protocol.

mod actions;
mod clock;
mod context;
mod pusher;
mod rate;
mod socketio;
mod system;

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::{self, Either};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use herald_proto::client::{self, ConnectedDetails, FrameId, action};
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::event::CloseInfo;
use herald_proto::handler::Claims;
use herald_proto::history::Resume;
use herald_proto::pusher::{codes, frame as pusher_frame};
use herald_proto::socketio::{engine as socketio_engine, packet as socketio_packet};
use herald_proto::status;
use hyper::upgrade::OnUpgrade;
use serde::Serialize;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use self::actions::{ActionCall, ActionOutcome};
pub(crate) use self::clock::Clock;
use self::clock::Stamp;
pub(crate) use self::context::SessionContext;
pub(crate) use self::pusher::PusherSession;
use self::rate::{Rate, RateLimiter, Verdict};
pub(crate) use self::socketio::SocketIoUpgrade;
use crate::auth::Identity;
use crate::config::Limits;
use crate::drain::restart;
use crate::events::Subject;
use crate::handle::{CloseRequest, Mailbox, Outbound, ReadError, SessionHandle, Socket, Wire, Woken};
use crate::metrics::ClientProtocol;
use crate::registry::wait_subscribed;

/// Most frames written before one flush when several are waiting.
const WRITE_BATCH: usize = 64;
/// How long the closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest close reason RFC 6455 allows, in bytes.
const MAX_CLOSE_REASON: usize = 123;

/// The protocol a session speaks, chosen at its upgrade.
#[derive(Debug)]
pub(crate) enum Protocol {
    /// Herald's own, on `/ws`, with where a reconnecting client says it
    /// was (recovery), kept until the session registers: here rather than
    /// beside the session, where it would keep its place in the task for
    /// the session's life (ADR 0027).
    Herald(Option<Box<Resume>>),
    /// Pusher protocol 7, on `/app/<key>` (boxed: a Herald session does not
    /// pay for its state).
    Pusher(Box<PusherSession>),
    /// Socket.IO 5 over Engine.IO 4, on `/socket.io/`; what the upgrade
    /// said is kept (boxed) until the CONNECT packet has used it.
    SocketIo(Option<Box<SocketIoUpgrade>>),
}

impl Protocol {
    /// What deliveries are encoded for.
    fn wire(&self) -> Wire {
        match self {
            Protocol::Herald(_) => Wire::Herald,
            Protocol::Pusher(pusher) => Wire::Pusher(pusher.app.clone()),
            Protocol::SocketIo(_) => Wire::SocketIo,
        }
    }

    /// Its name in metrics.
    fn metric(&self) -> ClientProtocol {
        match self {
            Protocol::Herald(_) => ClientProtocol::Herald,
            Protocol::Pusher(_) => ClientProtocol::Pusher,
            Protocol::SocketIo(_) => ClientProtocol::SocketIo,
        }
    }

    /// The close code this protocol's clients understand for `code`.
    fn close_code(&self, code: u16) -> u16 {
        match self {
            Protocol::Herald(_) | Protocol::SocketIo(_) => code,
            Protocol::Pusher(_) => codes::for_close(code),
        }
    }

    /// The reply to the client's `action` (sent with `id`), if it gets one.
    fn reply<D: Serialize + ?Sized>(&self, action: &str, details: &D, id: Option<&FrameId>) -> Option<String> {
        match self {
            Protocol::Herald(_) | Protocol::Pusher(_) => Some(client::encode(action, details, id)),
            Protocol::SocketIo(_) => socketio::reply(details, id),
        }
    }

    /// A frame the edge sends of its own accord (`$reauth`).
    fn push<D: Serialize + ?Sized>(&self, action: &str, details: &D) -> String {
        match self {
            Protocol::Herald(_) | Protocol::Pusher(_) => client::encode(action, details, None),
            Protocol::SocketIo(_) => socketio::event(action, details),
        }
    }

    /// The error answering the client's `action`, or a frame that could not
    /// be read (`None`).
    fn error(&self, action: Option<&str>, code: u16, message: &str, id: Option<&FrameId>) -> String {
        match self {
            Protocol::Herald(_) => client::encode_error(action, code, message, id),
            Protocol::Pusher(_) => pusher_frame::error(None, message),
            Protocol::SocketIo(_) => socketio::error(action, code, message, id),
        }
    }

    /// The frame that says the client's frame `text` was refused for its rate.
    fn rate_refusal(&self, text: Option<&str>, message: &str) -> String {
        let code = status::TOO_MANY_REQUESTS;
        match (self, text) {
            (Protocol::Pusher(_), _) => pusher_frame::error(Some(codes::CLIENT_EVENT_RATE), message),
            (Protocol::Herald(_), Some(text)) => match client::ClientFrame::parse(text) {
                Ok(frame) => client::encode_error(Some(&frame.action), code, message, frame.id.as_ref()),
                Err(_) => client::encode_error(None, code, message, None),
            },
            (Protocol::SocketIo(_), Some(text)) => socketio::refusal_of(text, code, message),
            (_, None) => self.error(None, code, message, None),
        }
    }

    /// The ping that keeps the client's liveness in check: a WebSocket ping
    /// (browsers answer by themselves), or Engine.IO's, which its clients
    /// wait for.
    fn ping(&self) -> Message {
        match self {
            Protocol::Herald(_) | Protocol::Pusher(_) => Message::Ping(Bytes::new()),
            Protocol::SocketIo(_) => Message::text(socketio_engine::PING),
        }
    }
}

/// How a session ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The edge closes it with this code.
    ByEdge(CloseRequest),
    /// The client sent a close frame.
    ByPeer(CloseRequest),
    /// The connection is gone without a closing handshake.
    Lost(String),
}

/// Starts the session of an accepted upgrade, to run once the upgrade is
/// done.
pub(crate) fn start(
    ctx: &Arc<SessionContext>,
    on_upgrade: OnUpgrade,
    conn: ConnId,
    identity: Identity,
    protocol: Protocol,
) {
    let (_, mailbox) = SessionHandle::new(ctx.limits.mailbox_capacity, protocol.wire());
    let session = Session::new(ctx.clone(), conn, identity, protocol, mailbox);
    ctx.drain.spawn_session(run(session, on_upgrade));
}

/// Completes a Pusher upgrade only to say why the connection is refused
/// (`pusher:error` with `code`, then a close with it), which is how Pusher
/// clients learn not to retry. Tracked like a session, so a drain waits
/// for it.
pub(crate) fn refuse_pusher(ctx: &Arc<SessionContext>, on_upgrade: OnUpgrade, code: u16, message: String) {
    let max_message = ctx.limits.max_message_bytes;
    ctx.drain.spawn_session(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        // A socket is a session's, with a mailbox, though nothing is
        // delivered to this one.
        let (_, mailbox) = SessionHandle::new(1, Wire::Herald);
        let Ok(mut socket) = Socket::attach(&mailbox, upgraded, max_message) else { return };
        say_and_close(&mut socket, Some(pusher_frame::error(Some(code), &message)), code, &message).await;
    });
}

/// Sends `last` (if any), then closes with `code` and `reason`, waiting at
/// most [`CLOSE_TIMEOUT`] for the client: for connections refused after
/// their upgrade, which never became sessions (a refused Pusher upgrade's
/// WebSocket, or a session's that Socket.IO's handshake refused).
async fn say_and_close(socket: &mut Socket, last: Option<String>, code: u16, reason: &str) {
    let refusal = async {
        if let Some(last) = last {
            socket.send(Message::text(last)).await?;
        }
        close_and_read_the_answer(socket, CloseFrame { code: code.into(), reason: truncate_reason(reason).into() })
            .await
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, refusal).await;
}

/// Sends `frame`, then reads until the client answers it, and ends the
/// connection ([`Socket`]'s `close`).
async fn close_and_read_the_answer(socket: &mut Socket, frame: CloseFrame) -> io::Result<()> {
    socket.send(Message::Close(Some(frame))).await?;
    while let Some(Ok(_)) = socket.next().await {}
    socket.close().await
}

/// Runs a session from its upgrade to its end.
///
/// The session comes in whole, and what runs once (waiting for the
/// subscriptions, the ending) is boxed, so that none of it adds to the task
/// every idle session keeps (see [`Session::serve`]); for the same reason
/// it takes only what it cannot reach through the session (handles are
/// made from its mailbox, the context is the session's): what it captures
/// stays in its state to the end. Not an `async fn`: one would move its
/// arguments into a second place in its state, where an `async move` block
/// uses what it captured in place.
#[allow(clippy::manual_async_fn, reason = "an async fn would hold a second copy of the session")]
fn run(mut session: Session, on_upgrade: OnUpgrade) -> impl Future<Output = ()> + Send {
    async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::debug!(error = %e, "upgrade failed"),
        };
        let Ok(mut socket) = Socket::attach(&session.mailbox, upgraded, session.ctx.limits.max_message_bytes) else {
            return tracing::error!("an upgraded connection is not a TCP stream");
        };
        // A Socket.IO client says who it is in its CONNECT packet, after
        // the upgrade; it becomes a session only once that is decided.
        if let Protocol::SocketIo(upgrade) = &mut session.protocol {
            let upgrade = upgrade.take().expect("a Socket.IO session starts with its upgrade");
            match Box::pin(socketio::handshake(&session.ctx, &mut socket, &session.conn(), *upgrade)).await {
                Some(identity) => session.admit(identity),
                None => return,
            }
        }
        // In a block, so that what registering returned is not kept in the
        // task for the whole session.
        let subscribed = {
            let resume = match &mut session.protocol {
                Protocol::Herald(resume) => resume.take(),
                Protocol::Pusher(_) | Protocol::SocketIo(_) => None,
            };
            let (ctx, identity) = (&session.ctx, &session.identity);
            let (subscribed, recovery) = ctx.registry.register(
                session.local,
                session.mailbox.handle(),
                identity.user.as_ref(),
                &identity.groups,
                resume.as_deref(),
            );
            drop(resume);
            // Where subjects keep a history, `$recovered` follows the frames
            // recovered for the client.
            if !recovery.is_empty() {
                tokio::spawn(recovery.report(ctx.registry.clone(), session.mailbox.handle()));
            }
            subscribed
        };
        let series = session.ctx.metrics.sessions(session.protocol.metric());
        series.opened.inc();
        series.open.inc();
        // A drain that began before this session was registered did not
        // see it: it closes itself.
        let ending = if session.ctx.drain.is_draining() {
            Ending::ByEdge(restart())
        } else {
            Box::pin(wait_subscribed(subscribed)).await;
            // A close request is looked for first, and ends the session
            // whatever it is doing. (Not a `select!`, whose state is 24
            // bytes larger.)
            match future::select(session.mailbox.close_requested(), pin!(session.serve(&mut socket))).await {
                Either::Left((request, _)) => Ending::ByEdge(request),
                Either::Right((ending, _)) => ending,
            }
        };
        // From here only the ending writes to the socket.
        session.mailbox.stop();
        let who = Ended { conn: session.conn(), claims: session.identity.claims() };
        Box::pin(end(&session.ctx, who, &session.protocol, &mut socket, ending)).await;
    }
}

/// The session that ended, for its disconnect event.
struct Ended<'a> {
    conn: ConnId,
    claims: &'a Claims,
}

/// Takes a session that has ended out of the edge and closes its socket.
async fn end(ctx: &SessionContext, who: Ended<'_>, protocol: &Protocol, socket: &mut Socket, ending: Ending) {
    let conn = &who.conn;
    let membership = ctx.registry.unregister(conn.local());
    ctx.metrics.sessions(protocol.metric()).open.dec();
    if let Protocol::Pusher(pusher) = protocol {
        pusher.leave_all(ctx, conn.local()).await;
    }
    let (code, reason, close_frame) = match ending {
        Ending::ByEdge(mut request) => {
            if !close::is_sendable(request.code) {
                tracing::warn!(code = request.code, "close code cannot be sent; using 4000");
                request.code = close::BACKEND_DISCONNECT;
            }
            let code = protocol.close_code(request.code);
            match protocol {
                // Pusher servers say why before they close.
                Protocol::Pusher(_) => {
                    let _ = socket.send(Message::text(pusher_frame::error(Some(code), &request.reason))).await;
                }
                // A client told to go for good is told so, or it would
                // reconnect by itself.
                Protocol::SocketIo(_) if socketio_packet::disconnects_for_good(code) => {
                    let _ = socket.send(Message::text(socketio_packet::DISCONNECT)).await;
                }
                Protocol::Herald(_) | Protocol::SocketIo(_) => {}
            }
            let frame = CloseFrame { code: code.into(), reason: truncate_reason(&request.reason).into() };
            (request.code, request.reason, Some(frame))
        }
        Ending::ByPeer(request) => (request.code, request.reason, None),
        Ending::Lost(reason) => (close::ABNORMAL, reason, None),
    };
    ctx.metrics.session_closed(protocol.metric(), code);
    tracing::debug!(conn = %conn, code, reason, "session ended");
    // The session is over for the edge as soon as it is decided; the closing
    // handshake below may wait on a client that is slow to read.
    ctx.events.disconnected(&conn.to_string(), membership, who.claims, CloseInfo { code, reason }).await;
    let handshake = async {
        match close_frame {
            Some(frame) => close_and_read_the_answer(socket, frame).await,
            // Writes the close frame the socket queued in answer to the
            // client's or to bytes that were not frames (or nothing, for a
            // lost connection), and ends the connection.
            None => SinkExt::close(socket).await,
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, handshake).await;
}

/// The state of one session, owned by its task.
struct Session {
    ctx: Arc<SessionContext>,
    /// The local part of the connection's id: the edge's part is the
    /// registry's ([`Session::conn`]), and the id is made (and into text, as
    /// clients, handlers and events see it) only when one of them needs it,
    /// rather than kept by every idle session.
    local: u64,
    identity: Identity,
    /// How the client's frames are read and the session's own written.
    protocol: Protocol,
    mailbox: Mailbox,
    limiter: RateLimiter,
    /// When the client last sent anything (pings are sent after silence);
    /// for Socket.IO, when the last ping was sent (see `on_timer`).
    last_heard: Stamp,
    /// When an unanswered ping was sent.
    ping_sent: Option<Stamp>,
    /// When `$reauth` was sent for the expired token.
    reauth_sent: Option<Stamp>,
    /// Client actions waiting on routers; made at the first action, as an
    /// empty `FuturesUnordered` already holds an allocation, and boxed, as
    /// most sessions never send one.
    actions: Option<Box<FuturesUnordered<ActionCall>>>,
}

impl Session {
    fn new(
        ctx: Arc<SessionContext>,
        conn: ConnId,
        identity: Identity,
        protocol: Protocol,
        mailbox: Mailbox,
    ) -> Session {
        let now = ctx.clock.now();
        Session {
            limiter: RateLimiter::new(&client_rate(&ctx.limits), now),
            local: conn.local(),
            identity,
            protocol,
            mailbox,
            last_heard: now,
            ping_sent: None,
            reauth_sent: None,
            actions: None,
            ctx,
        }
    }

    /// The connection's id.
    fn conn(&self) -> ConnId {
        self.ctx.registry.conn_id(self.local)
    }

    /// The client's user, as frames, handlers and events carry it.
    fn user(&self) -> Option<String> {
        self.identity.user.as_deref().map(str::to_owned)
    }

    /// Takes the identity a handshake after the upgrade decided (Socket.IO's).
    fn admit(&mut self, identity: Identity) {
        self.identity = identity;
    }

    /// Serves the session until it ends, and says how.
    ///
    /// The task of every idle session is as large as the largest state any
    /// of its `await`s can be in, so every step the loop takes is boxed: its
    /// state is allocated while it runs, not for the whole session. (For
    /// deliveries that is one allocation per batch of up to 64 frames, next
    /// to at least one write to the socket.) The wait ([`NextEvent`]) only
    /// picks the step, which runs after it: what it returned is moved into
    /// the step, where awaiting the step inside the wait would also keep the
    /// place the wait returned it in for as long as the step runs. Not an
    /// `async fn`, for the reason given at [`run`].
    #[allow(clippy::manual_async_fn, reason = "an async fn would hold its arguments twice")]
    fn serve<'a>(&'a mut self, socket: &'a mut Socket) -> impl Future<Output = Ending> + Send + 'a {
        async move {
            // The session was made before the upgrade finished.
            self.last_heard = self.ctx.clock.now();
            Box::pin(self.greet()).await;
            // Deliveries may now be corked for the flusher.
            self.mailbox.written();
            // The alarm is set again only when it rang or a deadline moved
            // earlier: a busy session does not touch the edge's wheel per
            // frame, and an alarm that rings early just finds nothing due.
            self.set_alarm();
            let mut first = 0;
            loop {
                // Matched as it comes, not kept in a variable, which the
                // task would keep (56 bytes) while the step runs.
                let step: Step<'_> = match (NextEvent { session: self, socket, first }).await {
                    Next::Woken(Woken::Queued(outbound)) => Box::pin(self.write_queued(socket, outbound)),
                    Next::Woken(Woken::Alarm) => {
                        self.mailbox.hold();
                        Box::pin(self.on_timer(socket))
                    }
                    // Deliveries that arrive during any other step are held
                    // back and follow what it writes, as when every frame
                    // went through this loop (a reply before what its
                    // effects published: PROTOCOL 5.17; Pusher's
                    // subscription_succeeded before the channel's events).
                    Next::Answered(outcome) => {
                        self.mailbox.hold();
                        Box::pin(self.finish_action(socket, outcome))
                    }
                    Next::Incoming(incoming) => {
                        self.mailbox.hold();
                        Box::pin(self.on_incoming(socket, incoming))
                    }
                };
                first = (first + 1) % NextEvent::WAITS;
                if let Err(ending) = step.await {
                    return ending;
                }
                self.mailbox.written();
                self.set_alarm();
            }
        }
    }

    /// Sets the session's alarm for its next deadline, at most a ping
    /// interval ahead: with a pong timeout longer than the interval, every
    /// answered ping would otherwise leave an entry on the wheel until its
    /// pong deadline (the alarm, set earlier, no longer rings for it).
    fn set_alarm(&self) {
        let clock = &self.ctx.clock;
        let at = self.next_deadline().min(clock.now().after(self.ctx.timing.ping_interval));
        self.mailbox.set_alarm(&self.ctx.alarms, clock.instant(at));
    }

    /// Greets the client (straight to the socket: [`Mailbox::greet`]) and
    /// says it is connected.
    async fn greet(&mut self) {
        let groups = self.ctx.registry.groups_of(self.local);
        let conn = self.conn().to_string();
        let first = match &self.protocol {
            Protocol::Herald(_) => {
                let details = ConnectedDetails { conn: conn.clone(), user: self.user(), groups };
                client::encode(action::CONNECTED, &details, None)
            }
            Protocol::Pusher(pusher) => {
                let activity_timeout = self.ctx.timing.ping_interval.as_secs().max(1);
                pusher_frame::connection_established(pusher.socket_id, activity_timeout)
            }
            Protocol::SocketIo(_) => socketio_packet::connected(&conn),
        };
        let written = self.mailbox.greet(Utf8Bytes::from(first));
        self.ctx.metrics.frames_sent.inc_by(written as u64);
        let who = Subject {
            conn: &conn,
            user: self.user(),
            groups: self.ctx.registry.groups_of(self.local),
            claims: self.identity.claims(),
        };
        self.ctx.events.connected(who).await;
    }

    /// Writes everything the mailbox holds now.
    async fn write_all_queued(&mut self, socket: &mut Socket) -> Result<(), Ending> {
        while let Some(outbound) = self.mailbox.try_recv() {
            Box::pin(self.write_queued(socket, outbound)).await?;
        }
        Ok(())
    }

    /// Writes what the mailbox holds, in batches, with one flush per batch.
    async fn write_queued(&mut self, socket: &mut Socket, first: Outbound) -> Result<(), Ending> {
        let mut next = first;
        let mut written = 0;
        let ending = loop {
            match next {
                Outbound::Frame(frame) => {
                    write(&self.ctx, socket.feed(Message::Text(frame))).await?;
                    written += 1;
                }
                // The flush below finishes it.
                Outbound::Unfinished => {}
                Outbound::Close(request) => break Some(Ending::ByEdge(request)),
            }
            if written >= WRITE_BATCH {
                break None;
            }
            match self.mailbox.try_recv() {
                Some(outbound) => next = outbound,
                None => break None,
            }
        };
        write(&self.ctx, socket.flush()).await?;
        self.ctx.metrics.frames_sent.inc_by(written as u64);
        ending.map_or(Ok(()), Err)
    }

    async fn on_incoming(
        &mut self,
        socket: &mut Socket,
        incoming: Option<Result<Message, ReadError>>,
    ) -> Result<(), Ending> {
        let message = match incoming {
            None => return Err(Ending::Lost("connection closed without a close frame".into())),
            Some(Err(e @ ReadError::TooLarge { .. })) => {
                self.ctx.metrics.dropped.too_large.inc();
                return Err(Ending::ByEdge(CloseRequest::new(close::MESSAGE_TOO_BIG, e.to_string())));
            }
            Some(Err(e)) => return Err(Ending::Lost(e.to_string())),
            Some(Ok(message)) => message,
        };
        let now = self.ctx.clock.now();
        if !matches!(self.protocol, Protocol::SocketIo(_)) {
            self.last_heard = now;
        }
        self.ping_sent = None;
        let counted = matches!(message, Message::Text(_) | Message::Binary(_) | Message::Ping(_));
        if !counted {
            return match message {
                Message::Close(frame) => Err(Ending::ByPeer(match frame {
                    Some(frame) => CloseRequest::new(frame.code.into(), frame.reason.as_str()),
                    None => CloseRequest::new(1005, ""),
                })),
                _ => Ok(()),
            };
        }
        self.ctx.metrics.frames_received.inc();
        let rate = client_rate(&self.ctx.limits);
        match self.limiter.check(&rate, now) {
            Verdict::Allowed => match message {
                Message::Text(text) => self.on_text(socket, &text).await,
                Message::Binary(_) => {
                    let message = "binary frames are not supported: send JSON text";
                    self.bad_frame(socket, status::BAD_REQUEST, message, None).await
                }
                _ => Ok(()),
            },
            Verdict::Refused => {
                self.ctx.metrics.dropped.rate_limit.inc();
                let message_text =
                    format!("rate limit exceeded: retry in {} ms", self.limiter.retry_after(&rate).as_millis());
                match message {
                    Message::Text(text) => {
                        self.send(socket, self.protocol.rate_refusal(Some(&text), &message_text)).await
                    }
                    Message::Binary(_) => self.send(socket, self.protocol.rate_refusal(None, &message_text)).await,
                    _ => Ok(()),
                }
            }
            Verdict::Abuse => {
                self.ctx.metrics.dropped.rate_limit.inc();
                Err(Ending::ByEdge(CloseRequest::new(close::POLICY_VIOLATION, "rate limit exceeded")))
            }
        }
    }

    async fn on_text(&mut self, socket: &mut Socket, text: &str) -> Result<(), Ending> {
        match self.protocol {
            Protocol::Pusher(_) => return self.pusher_text(socket, text).await,
            Protocol::SocketIo(_) => return self.socketio_text(socket, text).await,
            Protocol::Herald(_) => {}
        }
        match client::ClientFrame::parse(text) {
            Err(e) => self.bad_frame(socket, status::BAD_REQUEST, &e.message, e.id.as_ref()).await,
            Ok(frame) if action::is_system(&frame.action) => self.system_action(socket, frame).await,
            Ok(frame) => self.ask_routers(socket, frame, actions::Purpose::Action).await,
        }
    }

    /// Answers a frame that could not be read at all with `$error`.
    async fn bad_frame(
        &mut self,
        socket: &mut Socket,
        code: u16,
        message: &str,
        id: Option<&FrameId>,
    ) -> Result<(), Ending> {
        self.ctx.metrics.bad_frames.inc();
        self.send(socket, self.protocol.error(None, code, message, id)).await
    }

    /// Sends `<action>:error`.
    async fn reply_error(
        &mut self,
        socket: &mut Socket,
        action: &str,
        code: u16,
        message: &str,
        id: Option<&FrameId>,
    ) -> Result<(), Ending> {
        if code == status::BAD_REQUEST {
            self.ctx.metrics.bad_frames.inc();
        }
        self.send(socket, self.protocol.error(Some(action), code, message, id)).await
    }

    /// Sends the reply to the client's `action`, if its protocol sends one.
    async fn reply<D: Serialize + ?Sized>(
        &mut self,
        socket: &mut Socket,
        action: &str,
        details: &D,
        id: Option<&FrameId>,
    ) -> Result<(), Ending> {
        match self.protocol.reply(action, details, id) {
            Some(reply) => self.send(socket, reply).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, socket: &mut Socket, text: String) -> Result<(), Ending> {
        write(&self.ctx, socket.send(Message::text(text))).await?;
        self.ctx.metrics.frames_sent.inc();
        Ok(())
    }

    /// The next time a timer needs the session: a ping, a pong deadline, the
    /// token's expiry, or the end of the re-authentication grace.
    fn next_deadline(&self) -> Stamp {
        let timing = &self.ctx.timing;
        let liveness = match self.ping_sent {
            None => self.last_heard.after(timing.ping_interval),
            Some(sent) => sent.after(timing.pong_timeout),
        };
        let auth = match self.reauth_sent {
            Some(sent) => Some(sent.after(timing.reauth_grace)),
            None => self.token_left().map(|left| self.ctx.clock.now().after(left)),
        };
        auth.map_or(liveness, |auth| auth.min(liveness))
    }

    /// How long the client's token has left (zero once it has expired), or
    /// `None` for one that never expires. Read from its `exp` each time, as
    /// the session keeps it only there (in its identity, for the client's
    /// `$reauth` and `$auth` answers).
    fn token_left(&self) -> Option<Duration> {
        self.identity.expires_at().map(time_left)
    }

    async fn on_timer(&mut self, socket: &mut Socket) -> Result<(), Ending> {
        let now = self.ctx.clock.now();
        let timing = self.ctx.timing.clone();
        match (self.reauth_sent, self.token_left()) {
            (Some(sent), _) if now >= sent.after(timing.reauth_grace) => {
                return Err(Ending::ByEdge(CloseRequest::new(close::AUTH_EXPIRED, "token expired")));
            }
            (None, Some(left)) if left.is_zero() => {
                self.reauth_sent = Some(now);
                let state = client::AuthState { user: self.user(), exp: self.identity.expires_at() };
                self.send(socket, self.protocol.push(action::REAUTH, &state)).await?;
            }
            _ => {}
        }
        match self.ping_sent {
            Some(sent) if now >= sent.after(timing.pong_timeout) => {
                Err(Ending::Lost("no pong: the client stopped answering".into()))
            }
            None if now >= self.last_heard.after(timing.ping_interval) => {
                self.ping_sent = Some(now);
                if let Protocol::SocketIo(_) = self.protocol {
                    // Engine.IO clients want a ping every interval whatever
                    // else they receive: the next interval runs from this
                    // ping, not from the client's last frame.
                    self.last_heard = now;
                }
                write(&self.ctx, socket.send(self.protocol.ping())).await
            }
            _ => Ok(()),
        }
    }
}

/// The rate the edge allows each client's frames.
fn client_rate(limits: &Limits) -> Rate {
    Rate { per_sec: limits.rate_per_sec, burst: limits.rate_burst, strikes: limits.rate_strikes }
}

/// A step of the session loop, chosen by its wait ([`NextEvent`]) and run
/// after it.
type Step<'a> = Pin<Box<dyn Future<Output = Result<(), Ending>> + Send + 'a>>;

/// What the session loop's wait found.
enum Next {
    /// Something queued in its mailbox, or its alarm.
    Woken(Woken),
    /// A client action was answered.
    Answered(Box<ActionOutcome>),
    /// The client's next frame (`None`: the connection is gone).
    Incoming(Option<Result<Message, ReadError>>),
}

/// The session loop's wait for its next step: its mailbox (and alarm), its
/// actions' answers and its socket, polled in turn, each in place (ADR
/// 0027). Where a `select!` kept a future for each, 40 bytes and its own
/// 24 in every idle session's task, this keeps only what it polls. It
/// starts where the last wait's turn ends, as a `select!` starts at random,
/// so that none of them starves the others: a stream of deliveries would
/// otherwise keep the client's frames (its pongs among them) unread.
struct NextEvent<'a> {
    /// Whose mailbox and actions it polls.
    session: &'a mut Session,
    /// Where the client's frames come from.
    socket: &'a mut Socket,
    /// Which of the [`NextEvent::WAITS`] it polls first.
    first: u8,
}

impl NextEvent<'_> {
    /// How many things the loop waits on.
    const WAITS: u8 = 3;
}

impl Future for NextEvent<'_> {
    type Output = Next;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        let this = self.get_mut();
        for turn in 0..Self::WAITS {
            let next = match (this.first + turn) % Self::WAITS {
                0 => this.session.mailbox.poll_wait(cx).map(Next::Woken),
                // Polled only while actions wait: an empty set is done, not
                // waiting.
                1 => match &mut this.session.actions {
                    Some(actions) if !actions.is_empty() => match actions.poll_next_unpin(cx) {
                        Poll::Ready(Some(outcome)) => Poll::Ready(Next::Answered(outcome)),
                        Poll::Ready(None) | Poll::Pending => Poll::Pending,
                    },
                    _ => Poll::Pending,
                },
                _ => this.socket.poll_next_unpin(cx).map(Next::Incoming),
            };
            if next.is_ready() {
                return next;
            }
        }
        Poll::Pending
    }
}

impl Drop for NextEvent<'_> {
    /// What is queued while the session works on a step does not wake it:
    /// it finds it once it waits again.
    fn drop(&mut self) {
        self.session.mailbox.stop_waiting();
    }
}

/// Runs one write to the socket. A write that cannot finish within the
/// slow-consumer grace means the client stopped reading: 1013.
async fn write(ctx: &SessionContext, write: impl Future<Output = io::Result<()>>) -> Result<(), Ending> {
    match tokio::time::timeout(ctx.timing.slow_consumer_grace, write).await {
        Ok(result) => result.map_err(lost),
        Err(_) => {
            ctx.metrics.slow_consumers.inc();
            Err(Ending::ByEdge(CloseRequest::new(close::TRY_AGAIN_LATER, "slow consumer")))
        }
    }
}

fn lost(e: io::Error) -> Ending {
    Ending::Lost(e.to_string())
}

/// The time until the wall clock reaches `exp` (Unix seconds, a token's
/// expiry); zero once it has.
fn time_left(exp: u64) -> Duration {
    match UNIX_EPOCH.checked_add(Duration::from_secs(exp)) {
        Some(at) => at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO),
        None => Duration::MAX,
    }
}

/// A close reason cut to the 123 bytes a close frame can carry, on a
/// character boundary.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle session keeps its task: tokio's cell around `run`'s
    /// future, a multiple of 128 bytes. Its header, trailer, scheduler, id
    /// and the drain tracker's token take 112 of them, so a future of up to
    /// 272 bytes keeps the cell at 384 (ADR 0027, ADR 0029; BENCHMARKS, "The
    /// session's own memory"); a session that grows past that costs 128
    /// more per connection. (The optimized build lays the future out the
    /// same way.)
    #[test]
    fn the_session_task_fits_in_384_bytes() {
        fn future_size<F: Future>(_: fn(Session, OnUpgrade) -> F) -> usize {
            size_of::<F>()
        }
        let size = future_size(run);
        assert!(size <= 272, "the session's future is {size} bytes: its task's cell is past 384");
    }

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON && cut.len() == 122);
    }

    #[test]
    fn a_past_expiry_is_now_and_a_far_one_is_never() {
        assert_eq!(time_left(1), Duration::ZERO);
        let in_an_hour = time_left(crate::auth::unix_now() + 3600);
        assert!(in_an_hour > Duration::from_secs(3598) && in_an_hour <= Duration::from_secs(3600));
        assert_eq!(time_left(u64::MAX), Duration::MAX);
    }
}
