//! The churn: connection slots that each open a connection, use it for a
//! while and close it, then open the next, for as long as the soak runs.
//!
//! A connection's life:
//!
//! 1. Opens with a fresh token (its user, the group `soak`, and the right
//!    to `$join` any `room:*`), and asks the echo handler who it is
//!    (`{"whoami": true}`): the identity must be the token's.
//! 2. Every couple of seconds, one request, answered before the next:
//!    `echo` (details back byte for byte), `$ping`, `$join` and `$leave` of
//!    a room, `chat/join`, `chat/send` (the reply, and the message itself
//!    through the room's group), `chat/who` (the user is listed), and
//!    `$auth` with a refreshed token. Meanwhile it checks the numbered
//!    broadcasts ([`super::streams`]) and that chat frames come only from
//!    rooms it joined.
//! 3. Closes one of three ways: a close frame (answered by the edge's), the
//!    socket dropped without one, or a `disconnect` control operation from
//!    the backend (a 4000 close frame). First it waits for every broadcast
//!    it is owed.
//!
//! Anything else (a wrong answer, an error reply, a missed, repeated or
//! stray frame, a timeout) is a failure: counted with what happened, the
//! connection dropped and the slot goes on with a new one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Rng;
use super::stats::{Outcome, Stats};
use super::streams::{Numbered, Numbers, Stream, Tracker};
use crate::conn::{Dialer, Ws};
use crate::protocol::Frame;
use crate::publish::unix_nanos;
use crate::token::Minter;

/// The group every soak token joins at connect.
pub const GROUP: &str = "soak";
/// Rooms the connections join and leave: `room:r0` ... (chat rooms `r0`...).
const ROOMS: u64 = 8;
/// How long a connection lives, at least and at most.
const LIFETIME: (Duration, Duration) = (Duration::from_secs(8), Duration::from_secs(40));
/// Time between a connection's requests, on average (from half to one and
/// a half of it).
const STEP_EVERY: Duration = Duration::from_secs(2);
/// How long an answer, a chat message, the broadcasts owed before closing
/// or the edge's close frame may take. Above the edge's action timeout
/// (10 s), so a handler that does not answer shows as the edge's 504.
const DEADLINE: Duration = Duration::from_secs(15);
/// Lifetime of the tokens; `$auth` replaces one with a fresh one.
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// The close code of the backend's `disconnect` control operation.
const BACKEND_CLOSE: u16 = 4000;

/// What every slot shares.
pub struct Context {
    pub dialer: Dialer,
    pub minter: Minter,
    pub nats: async_nats::Client,
    pub numbers: Arc<Numbers>,
    pub stats: Arc<Stats>,
    /// Users the slots share: slot `n` is user `n mod users`, so most users
    /// have two tabs now and then.
    pub users: usize,
    /// Becomes true when the soak ends.
    pub stop: watch::Receiver<bool>,
}

/// The user name of user number `n`.
pub fn user_name(n: usize) -> String {
    format!("soak-u{n}")
}

/// Runs slot `slot` until the soak ends.
pub async fn slot(ctx: Arc<Context>, slot: u64) {
    let mut rng = Rng::new(slot);
    let mut serial = 0u64;
    let slots_hint = 1 << 20;
    while !*ctx.stop.borrow() {
        // Connection numbers spread the slots' connections over the
        // source addresses.
        let number = serial * slots_hint + slot;
        serial += 1;
        match live(&ctx, slot, number, &mut rng).await {
            Ok(outcome) => ctx.stats.record(outcome),
            Err(failure) => {
                ctx.stats.fail(&format!("{failure:#}"));
                // Not a storm of reconnections if the edge is gone.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A request waiting for its answer.
#[derive(Debug)]
struct Pending {
    id: u64,
    action: &'static str,
    expect: Expect,
    deadline: Instant,
}

/// What answers a request.
#[derive(Debug)]
enum Expect {
    /// Who the connection is.
    WhoAmI,
    /// These details, byte for byte (`echo`, and `$ping`'s `$pong`).
    Same(String),
    /// `{"group": G}` (`$join`, `$leave`).
    Group(String),
    /// `{"user": U, "exp": E}` of the new token.
    Auth(u64),
    /// `{"room": R}` (`chat/join`).
    Room(String),
    /// `{"ok": true}`, and the message back through the room.
    Sent { text: String, replied: bool, delivered: bool },
    /// `{"room": R, "users": [...]}`, the user among them.
    Who(String),
}

/// How a connection ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    CloseFrame,
    Dropped,
    Backend,
}

/// One connection and what it is owed.
struct Connection<'a> {
    ctx: &'a Context,
    ws: Ws,
    user: String,
    /// Its id, as the echo handler was told.
    conn: String,
    streams: [(Stream, Tracker); 3],
    /// Rooms it is in now, as `room:R` groups.
    rooms: BTreeSet<String>,
    /// Rooms it was ever in: chat frames from these are expected.
    visited: BTreeSet<String>,
    next_id: u64,
    pending: Option<Pending>,
}

/// One connection's life; the outcome, or the failure that ended it.
async fn live(ctx: &Context, slot: u64, number: u64, rng: &mut Rng) -> Result<Outcome> {
    let user_index = (slot as usize) % ctx.users;
    let user = user_name(user_index);
    let token = mint(ctx, &user)?.0;
    let ws = ctx.dialer.open(number, 0, &token, &[]).await.map_err(|e| anyhow!("open: {}", e.kind()))?;
    // `$connected` came: the subscriptions are live from here on.
    let streams = [Stream::Group, Stream::All, Stream::User(user_index)]
        .map(|stream| (stream, Tracker::new(ctx.numbers.next(stream))));
    let mut c = Connection {
        ctx,
        ws,
        user,
        conn: String::new(),
        streams,
        rooms: BTreeSet::new(),
        visited: BTreeSet::new(),
        next_id: 0,
        pending: None,
    };
    c.request("echo", r#"{"whoami":true}"#.to_owned(), Expect::WhoAmI).await?;
    c.settle().await?;

    let ends_at = Instant::now() + rng.between(LIFETIME.0, LIFETIME.1);
    let mut stop = ctx.stop.clone();
    let mut requests = 1;
    let mut next_step = Instant::now() + rng.between(STEP_EVERY / 2, STEP_EVERY * 3 / 2);
    while next_step < ends_at && !*stop.borrow() {
        tokio::select! {
            _ = sleep_until(next_step.into()) => {
                c.step(rng).await?;
                c.settle().await?;
                requests += 1;
                next_step = Instant::now() + rng.between(STEP_EVERY / 2, STEP_EVERY * 3 / 2);
            }
            _ = stop.changed() => break,
            frame = c.ws.next() => c.inbound(frame)?,
        }
    }

    c.collect_owed().await?;
    let ending = match rng.below(3) {
        0 => Ending::CloseFrame,
        1 => Ending::Dropped,
        _ => Ending::Backend,
    };
    let broadcasts = c.streams.iter().map(|(_, t)| t.received).sum();
    c.close(ending).await?;
    Ok(Outcome { requests, broadcasts, ending: ending_name(ending) })
}

fn ending_name(ending: Ending) -> &'static str {
    match ending {
        Ending::CloseFrame => "close frame",
        Ending::Dropped => "dropped",
        Ending::Backend => "backend disconnect",
    }
}

/// A token for `user`, and its expiry.
fn mint(ctx: &Context, user: &str) -> Result<(String, u64)> {
    let expires_at = unix_nanos() / 1_000_000_000 + TOKEN_LIFETIME.as_secs();
    let token = ctx.minter.mint_until(user, &[GROUP.to_owned()], &["room:*".to_owned()], expires_at)?;
    Ok((token, expires_at))
}

/// `details` read as a `T`, if they are one.
fn read<T: serde::de::DeserializeOwned>(details: &str) -> Option<T> {
    serde_json::from_str(details).ok()
}

#[derive(Deserialize)]
struct WhoAmI {
    conn: String,
    user: Option<String>,
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct Group {
    group: String,
}

#[derive(Deserialize)]
struct AuthState {
    user: Option<String>,
    exp: Option<u64>,
}

#[derive(Deserialize)]
struct Room {
    room: String,
}

#[derive(Deserialize)]
struct Sent {
    ok: bool,
}

#[derive(Deserialize)]
struct Who {
    room: String,
    users: Vec<String>,
}

/// A chat frame from a room: `chat/message`, `chat/joined`, `chat/left`.
#[derive(Deserialize)]
struct ChatFrame {
    room: String,
    user: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDetails {
    code: u16,
    message: String,
}

impl Connection<'_> {
    /// Sends one request; its answer is awaited by [`settle`](Self::settle).
    async fn request(&mut self, action: &'static str, details: String, expect: Expect) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = format!(r#"{{"action":"{action}","details":{details},"id":{id}}}"#);
        self.ws.send(Message::text(frame)).await.with_context(|| format!("cannot send {action}"))?;
        self.pending = Some(Pending { id, action, expect, deadline: Instant::now() + DEADLINE });
        Ok(())
    }

    /// Reads frames until the pending request is answered.
    async fn settle(&mut self) -> Result<()> {
        while let Some(deadline) = self.pending.as_ref().map(|p| p.deadline) {
            tokio::select! {
                _ = sleep_until(deadline.into()) => {
                    let pending = self.pending.take().expect("checked above");
                    bail!("{}: no answer within {} s ({:?})", pending.action, DEADLINE.as_secs(), pending.expect);
                }
                frame = self.ws.next() => self.inbound(frame)?,
            }
        }
        Ok(())
    }

    /// One request, picked at random among those that make sense now.
    async fn step(&mut self, rng: &mut Rng) -> Result<()> {
        let room = format!("r{}", rng.below(ROOMS));
        let joined = self.rooms.iter().nth(rng.below(self.rooms.len().max(1) as u64) as usize).cloned();
        let joined_room = joined.as_deref().and_then(|g| g.strip_prefix("room:")).map(str::to_owned);
        match (rng.below(100), joined_room) {
            (0..30, _) => {
                let details = format!(r#"{{"n":{},"text":"soak \u00e9 \"quoted\""}}"#, self.next_id);
                self.request("echo", details.clone(), Expect::Same(details)).await
            }
            (30..38, _) => {
                let details = format!(r#"{{"n":{}}}"#, self.next_id);
                self.request("$ping", details.clone(), Expect::Same(details)).await
            }
            (38..48, _) => {
                let group = format!("room:{room}");
                self.request("$join", format!(r#"{{"group":"{group}"}}"#), Expect::Group(group)).await
            }
            (48..58, Some(room)) => {
                let group = format!("room:{room}");
                self.request("$leave", format!(r#"{{"group":"{group}"}}"#), Expect::Group(group)).await
            }
            (58..75, Some(room)) => {
                let text = format!("{} says {}", self.conn, self.next_id);
                let details = format!(r#"{{"room":"{room}","text":"{text}"}}"#);
                self.request("chat/send", details, Expect::Sent { text, replied: false, delivered: false }).await
            }
            (75..80, Some(room)) => {
                self.request("chat/who", format!(r#"{{"room":"{room}"}}"#), Expect::Who(room)).await
            }
            (80..90, _) => {
                let (token, exp) = mint(self.ctx, &self.user)?;
                self.request("$auth", format!(r#"{{"token":"{token}"}}"#), Expect::Auth(exp)).await
            }
            _ => self.request("chat/join", format!(r#"{{"room":"{room}"}}"#), Expect::Room(room)).await,
        }
    }

    /// Handles what the socket gave.
    fn inbound(&mut self, frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> Result<()> {
        match frame {
            Some(Ok(Message::Text(text))) => self.text(text.as_str()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
            Some(Ok(Message::Close(frame))) => bail!("closed by the edge: {frame:?}"),
            Some(Ok(other)) => bail!("unexpected {other:?}"),
            Some(Err(e)) => bail!("socket failed: {e}"),
            None => bail!("the edge ended the connection"),
        }
    }

    fn text(&mut self, text: &str) -> Result<()> {
        let frame: Frame<'_> = serde_json::from_str(text).with_context(|| format!("unreadable frame {text}"))?;
        let details = frame.details.map_or("null", RawValue::get);
        match frame.action.as_ref() {
            "soak/group" | "soak/all" | "soak/user" => {
                let Numbered { seq } =
                    serde_json::from_str(details).with_context(|| format!("bad broadcast {text}"))?;
                let tracker = self.streams.iter_mut().find(|(s, _)| s.action() == frame.action);
                tracker.expect("one tracker per stream action").1.receive(seq);
                Ok(())
            }
            "chat/message" | "chat/joined" | "chat/left" => self.chat(&frame.action, details, text),
            _ => self.answer(&frame, details, text),
        }
    }

    fn chat(&mut self, action: &str, details: &str, text: &str) -> Result<()> {
        let chat: ChatFrame = serde_json::from_str(details).with_context(|| format!("bad chat frame {text}"))?;
        if !self.visited.contains(&format!("room:{}", chat.room)) {
            bail!("{action} from room {:?}, never joined: {text}", chat.room);
        }
        if let Some(Pending { expect: Expect::Sent { text: sent, replied, delivered }, .. }) = &mut self.pending
            && action == "chat/message"
            && chat.text.as_deref() == Some(sent.as_str())
        {
            if chat.user != self.user {
                bail!("own message came back from {:?}: {text}", chat.user);
            }
            *delivered = true;
            if *replied {
                self.pending = None;
            }
        }
        Ok(())
    }

    /// A frame that should answer the pending request.
    fn answer(&mut self, frame: &Frame<'_>, details: &str, text: &str) -> Result<()> {
        let Some(pending) = &mut self.pending else { bail!("a frame no request asked for: {text}") };
        let id = frame.id.map(RawValue::get);
        if id != Some(pending.id.to_string().as_str()) {
            bail!("{} (id {}): got a frame with another id: {text}", pending.action, pending.id);
        }
        let reply_action = if pending.action == "$ping" { "$pong" } else { pending.action };
        if frame.action.strip_suffix(":error") == Some(pending.action) {
            let error: ErrorDetails = serde_json::from_str(details).with_context(|| format!("bad error {text}"))?;
            bail!("{}: error reply {} {:?}", pending.action, error.code, error.message);
        }
        if frame.action != reply_action {
            bail!("{}: answered by {:?}: {text}", pending.action, frame.action);
        }
        let wrong = || anyhow!("{}: wrong answer {text}", reply_action);
        let done = match &mut pending.expect {
            Expect::WhoAmI => match read::<WhoAmI>(details) {
                Some(who) if who.user.as_deref() == Some(self.user.as_str()) && who.groups == [GROUP] => {
                    self.conn = who.conn;
                    true
                }
                _ => return Err(wrong()),
            },
            Expect::Same(sent) if details == sent => true,
            Expect::Group(group) => match read::<Group>(details) {
                Some(answered) if answered.group == *group => {
                    if pending.action == "$join" {
                        self.visited.insert(group.clone());
                        self.rooms.insert(group.clone());
                    } else {
                        self.rooms.remove(group);
                    }
                    true
                }
                _ => return Err(wrong()),
            },
            Expect::Auth(exp) => match read::<AuthState>(details) {
                Some(state) if state.user.as_deref() == Some(self.user.as_str()) && state.exp == Some(*exp) => true,
                _ => return Err(wrong()),
            },
            Expect::Room(room) => match read::<Room>(details) {
                Some(answered) if answered.room == *room => {
                    let group = format!("room:{room}");
                    self.visited.insert(group.clone());
                    self.rooms.insert(group);
                    true
                }
                _ => return Err(wrong()),
            },
            Expect::Sent { replied, delivered, .. } => match read::<Sent>(details) {
                Some(Sent { ok: true }) => {
                    *replied = true;
                    *delivered
                }
                _ => return Err(wrong()),
            },
            Expect::Who(room) => match read::<Who>(details) {
                Some(who) if who.room == *room && who.users.contains(&self.user) => true,
                _ => return Err(wrong()),
            },
            Expect::Same(_) => return Err(wrong()),
        };
        if done {
            self.pending = None;
        }
        Ok(())
    }

    /// Waits for every broadcast taken so far, before closing.
    async fn collect_owed(&mut self) -> Result<()> {
        let last: Vec<Option<u64>> =
            self.streams.iter().map(|(stream, _)| self.ctx.numbers.next(*stream).checked_sub(1)).collect();
        let deadline = Instant::now() + DEADLINE;
        while !self.streams.iter().zip(&last).all(|((_, t), last)| t.reached(*last)) {
            tokio::select! {
                _ = sleep_until(deadline.into()) => break,
                frame = self.ws.next() => self.inbound(frame)?,
            }
        }
        for ((stream, tracker), last) in self.streams.iter().zip(last) {
            let outstanding = tracker.outstanding(last);
            if tracker.missed + tracker.repeated + outstanding > 0 {
                bail!(
                    "{}: {} missed, {} repeated or out of order, {} not arrived within {} s",
                    stream.action(),
                    tracker.missed,
                    tracker.repeated,
                    outstanding,
                    DEADLINE.as_secs()
                );
            }
        }
        Ok(())
    }

    async fn close(mut self, ending: Ending) -> Result<()> {
        match ending {
            Ending::Dropped => return Ok(()),
            Ending::CloseFrame => {
                let frame = CloseFrame { code: CloseCode::Normal, reason: "soak".into() };
                self.ws.send(Message::Close(Some(frame))).await.context("cannot send a close frame")?;
            }
            Ending::Backend => {
                let subject = format!("herald.ctl.conn.{}", self.conn);
                let op = format!(r#"{{"op":"disconnect","code":{BACKEND_CLOSE},"reason":"soak"}}"#);
                self.ctx.nats.publish(subject, op.into()).await.context("cannot publish a control operation")?;
            }
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let frame = tokio::select! {
                _ = sleep_until(deadline.into()) => bail!("no close frame from the edge within {} s", DEADLINE.as_secs()),
                frame = self.ws.next() => frame,
            };
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => {
                    let expected = match ending {
                        Ending::Backend => BACKEND_CLOSE,
                        _ => u16::from(CloseCode::Normal),
                    };
                    if u16::from(frame.code) != expected {
                        bail!("closed with {} {:?}, not {expected}", u16::from(frame.code), frame.reason);
                    }
                    return Ok(());
                }
                Some(Ok(Message::Close(None))) => bail!("closed without a code"),
                // Broadcasts still on their way; answered by nothing now.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => bail!("unexpected {other:?} while closing"),
                Some(Err(e)) => bail!("socket failed while closing: {e}"),
                None => bail!("connection ended without a close frame"),
            }
        }
    }
}
