//! How a bus message reaches sessions: it is checked to be text once and
//! becomes one reference-counted frame, shared by every session it goes to
//! and queued without ever waiting, so a slow session cannot hold up the
//! others.
//!
//! Sessions of another protocol (Pusher, Socket.IO) get the message in
//! their encoding, made at most once per message (and, for Pusher, per app
//! group prefix, which names the channel) the first time one of them is
//! found among the receivers ([`Fanout`]); a message with no such receiver
//! costs nothing more. Where a topic keeps a history, Herald sessions get
//! the frame with its `offset` (made once per message, by `recovery`);
//! the others get none (their protocols cannot resume).

use std::time::{Duration, SystemTime};

use herald_bus::Delivered;
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::published_at::{PUBLISHED_AT_HEADER, lag};
use herald_proto::pusher::app::App;
use herald_proto::pusher::channel::user_channel;
use herald_proto::pusher::cluster::CLIENT_EVENT_USER_HEADER;
use herald_proto::pusher::frame::event_from_herald;
use herald_proto::socketio::packet as socketio_packet;
use herald_proto::subject::EXCLUDE_CONN_HEADER;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Registry;
use crate::handle::{CloseRequest, Offer, SessionHandle, Wire};

/// Whom a bus message was addressed to, which names its Pusher channel.
#[derive(Debug, Clone, Copy)]
pub(super) enum Addressee<'a> {
    /// A group: the channel is the group less the app's prefix.
    Group(&'a str),
    /// A user: the user channel of a signed-in Pusher connection.
    User(&'a str),
    /// One connection, or everyone: no channel (pusher-js's
    /// connection-wide bindings get it).
    Connection,
}

/// One message on its way to the sessions it is for, in each encoding they
/// need, each made once.
pub(super) struct Fanout<'a> {
    /// The frame as published: what the other encodings are made from.
    frame: Utf8Bytes,
    /// What Herald sessions get: the frame, or the frame with its offset.
    herald: Utf8Bytes,
    addressee: Addressee<'a>,
    /// The sender of a Pusher client event on a presence channel.
    sender: Option<&'a str>,
    /// The Pusher encodings made so far, by the app they were made for
    /// (its group prefix names the channel); `None` when the message has no
    /// Pusher form (it is not a Herald frame, or the group is not under that
    /// prefix). Nearly always one entry.
    pusher: Vec<(&'a App, Option<Utf8Bytes>)>,
    /// The Socket.IO event, once made; inside, `None` when the message has
    /// no Socket.IO form (it is not a Herald frame).
    socketio: Option<Option<Utf8Bytes>>,
}

impl<'a> Fanout<'a> {
    /// `message`'s frame (see [`Registry::frame_of`]) on its way to `addressee`.
    pub fn new(frame: Utf8Bytes, addressee: Addressee<'a>, message: &'a Delivered<'_>) -> Fanout<'a> {
        Fanout::with_sender(frame, addressee, message.header(CLIENT_EVENT_USER_HEADER))
    }

    fn with_sender(frame: Utf8Bytes, addressee: Addressee<'a>, sender: Option<&'a str>) -> Fanout<'a> {
        Fanout { herald: frame.clone(), frame, addressee, sender, pusher: Vec::new(), socketio: None }
    }

    /// Herald sessions get `herald` (the frame with its offset) instead.
    pub fn for_herald(mut self, herald: Utf8Bytes) -> Fanout<'a> {
        self.herald = herald;
        self
    }

    /// The frame for a session speaking `wire`, if it has one.
    pub fn frame_for(&mut self, wire: &'a Wire) -> Option<Utf8Bytes> {
        let app = match wire {
            Wire::Herald => return Some(self.herald.clone()),
            Wire::Pusher(app) => app,
            Wire::SocketIo => return self.socketio.get_or_insert_with(|| encode_socketio(&self.frame)).clone(),
        };
        // Every session of an app shares its `App`: telling it by address
        // keeps a string comparison off the per-session path; apps that
        // share a prefix share the encoding too.
        let made = self
            .pusher
            .iter()
            .find(|(made_for, _)| std::ptr::eq(*made_for, app.as_ref()) || made_for.group_prefix == app.group_prefix);
        if let Some((_, encoded)) = made {
            return encoded.clone();
        }
        let encoded = self.encode_pusher(&app.group_prefix);
        self.pusher.push((app, encoded.clone()));
        encoded
    }

    fn encode_pusher(&self, prefix: &str) -> Option<Utf8Bytes> {
        let user_channel_name;
        let channel = match self.addressee {
            Addressee::Group(group) => Some(group.strip_prefix(prefix)?),
            Addressee::User(user) => {
                user_channel_name = user_channel(user);
                Some(user_channel_name.as_str())
            }
            Addressee::Connection => None,
        };
        match event_from_herald(&self.frame, channel, self.sender) {
            Ok(event) => Some(Utf8Bytes::from(event)),
            Err(e) => {
                tracing::debug!(error = %e, "a message with no Pusher form is not delivered to Pusher clients");
                None
            }
        }
    }
}

/// A Herald frame as the Socket.IO event every Socket.IO receiver shares.
fn encode_socketio(frame: &str) -> Option<Utf8Bytes> {
    match socketio_packet::event_from_herald(frame) {
        Ok(event) => Some(Utf8Bytes::from(event)),
        Err(e) => {
            tracing::debug!(error = %e, "a message with no Socket.IO form is not delivered to Socket.IO clients");
            None
        }
    }
}

/// How many receivers ahead of the one it delivers to a fan-out asks for
/// their state: far enough for a line the other core wrote last to arrive
/// in time (4, 8 and 16 measured alike, ADR 0034).
const PREFETCH_AHEAD: usize = 8;

/// `receivers` in their order, each one's state asked for
/// [`PREFETCH_AHEAD`] receivers before the fan-out reaches it
/// ([`SessionHandle::prefetch`]): in a broadcast to many sessions every
/// one is cold, and the fan-out waited for each in turn.
pub(super) fn prefetched<T>(
    receivers: impl Iterator<Item = T> + Clone,
    handle_of: impl Fn(&T) -> &SessionHandle,
) -> impl Iterator<Item = T> {
    let mut ahead = receivers.clone().skip(PREFETCH_AHEAD);
    receivers.inspect(move |_| {
        if let Some(next) = ahead.next() {
            handle_of(&next).prefetch();
        }
    })
}

impl Registry {
    /// The frame a live bus message becomes (see [`Registry::text_of`]);
    /// its publish → delivery lag is observed here, once per message
    /// whatever the number of sessions it goes to.
    pub(super) fn frame_of(&self, message: &Delivered<'_>) -> Option<Utf8Bytes> {
        if let Some(lag) = message.header(PUBLISHED_AT_HEADER).and_then(|stamp| lag(stamp, SystemTime::now())) {
            self.metrics.publish_lag.observe(herald_metrics::seconds(lag));
        }
        self.text_of(message)
    }

    /// The frame a bus message becomes: its payload as it is, once checked to
    /// be text. A message replayed from the history comes here directly: its
    /// age is not a delivery lag.
    pub(super) fn text_of(&self, message: &Delivered<'_>) -> Option<Utf8Bytes> {
        self.metrics.bus_messages.inc();
        match Utf8Bytes::try_from(message.payload.clone()) {
            Ok(frame) => Some(frame),
            Err(_) => {
                tracing::warn!(subject = message.subject, "dropped a message that is not UTF-8 text");
                None
            }
        }
    }

    /// The local connection a message's `Herald-Exclude-Conn` names, if it is
    /// one of ours.
    pub(super) fn excluded_local(&self, message: &Delivered<'_>) -> Option<u64> {
        let excluded: ConnId = message.header(EXCLUDE_CONN_HEADER)?.trim().parse().ok()?;
        (excluded.edge() == self.edge_id()).then_some(excluded.local())
    }

    /// Hands a frame to a session (corked for the flusher if it is idle,
    /// queued for it otherwise); a session whose mailbox stayed full for
    /// longer than the grace is closed with 1013. Says what became of the
    /// frame.
    pub(crate) fn offer(&self, handle: &SessionHandle, frame: Utf8Bytes) -> Offer {
        // The clock starts at 1 so that 0 can mean "not full".
        let now_ms = || self.epoch.elapsed().as_millis() as u64 + 1;
        let offer = handle.offer(frame, now_ms);
        match offer {
            Offer::Corked => self.flusher.add(handle.clone()),
            Offer::Full { since_ms } => {
                if Duration::from_millis(now_ms() - since_ms) < self.slow_consumer_grace {
                    self.metrics.dropped.mailbox_full.inc();
                } else {
                    self.metrics.dropped.slow_consumer.inc();
                    if handle.close_now(CloseRequest::new(close::TRY_AGAIN_LATER, "slow consumer")) {
                        self.metrics.slow_consumers.inc();
                    }
                }
            }
            Offer::Queued | Offer::Gone => {}
        }
        offer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const FRAME: &str = r#"{"action":"msg","details":{"a":1}}"#;

    fn pusher(prefix: &str) -> Wire {
        Wire::Pusher(Arc::new(App { group_prefix: prefix.into(), ..App::new("1", "k", "s") }))
    }

    #[test]
    fn a_prefetched_fan_out_visits_every_receiver_once_in_order() {
        for receivers in [0, 1, PREFETCH_AHEAD as u64, PREFETCH_AHEAD as u64 + 1, 100] {
            let handles: Vec<(u64, SessionHandle)> =
                (0..receivers).map(|local| (local, SessionHandle::new(1, Wire::Herald).0)).collect();
            let visited: Vec<u64> = prefetched(handles.iter(), |(_, handle)| handle).map(|(local, _)| *local).collect();
            assert_eq!(visited, (0..receivers).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn each_protocol_gets_one_encoding_shared_by_its_sessions() {
        let (first, second) = (pusher(""), pusher(""));
        let mut fanout = Fanout::with_sender(Utf8Bytes::from_static(FRAME), Addressee::Group("chat"), None);
        assert_eq!(fanout.frame_for(&Wire::Herald).unwrap().as_str(), FRAME);
        let a = fanout.frame_for(&first).unwrap();
        let b = fanout.frame_for(&second).unwrap();
        assert_eq!(a.as_str(), r#"{"event":"msg","channel":"chat","data":"{\"a\":1}"}"#);
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "encoded once, shared");
        let same_app = first.clone();
        assert_eq!(fanout.frame_for(&same_app).unwrap().as_str().as_ptr(), a.as_str().as_ptr());
        assert_eq!(fanout.pusher.len(), 1);
    }

    #[test]
    fn the_channel_is_the_group_less_the_apps_prefix() {
        let mut fanout = Fanout::with_sender(Utf8Bytes::from_static(FRAME), Addressee::Group("two:chat"), None);
        let (two, one) = (pusher("two:"), pusher("one:"));
        assert!(fanout.frame_for(&two).unwrap().as_str().contains(r#""channel":"chat""#));
        assert!(fanout.frame_for(&one).is_none(), "not this app's group");
    }

    #[test]
    fn users_get_their_user_channel_connections_none_and_senders_are_named() {
        let mut to_user = Fanout::with_sender(Utf8Bytes::from_static(FRAME), Addressee::User("7"), None);
        assert!(to_user.frame_for(&pusher("")).unwrap().as_str().contains(r##""channel":"#server-to-user-7""##));
        let mut to_conn = Fanout::with_sender(Utf8Bytes::from_static(FRAME), Addressee::Connection, Some("u1"));
        let frame = to_conn.frame_for(&pusher("")).unwrap();
        assert!(!frame.as_str().contains("channel") && frame.as_str().contains(r#""user_id":"u1""#), "{frame}");
    }

    #[test]
    fn only_herald_sessions_get_the_offset() {
        let with_offset = r#"{"offset":{"of":"group:chat","at":"1.2.3"},"action":"msg","details":{"a":1}}"#;
        let fanout = Fanout::with_sender(Utf8Bytes::from_static(FRAME), Addressee::Group("chat"), None);
        let mut fanout = fanout.for_herald(Utf8Bytes::from_static(with_offset));
        assert_eq!(fanout.frame_for(&Wire::Herald).unwrap().as_str(), with_offset);
        let wire = pusher("");
        assert_eq!(fanout.frame_for(&wire).unwrap().as_str(), r#"{"event":"msg","channel":"chat","data":"{\"a\":1}"}"#);
        assert_eq!(fanout.frame_for(&Wire::SocketIo).unwrap().as_str(), r#"42["msg",{"a":1}]"#);
    }

    #[test]
    fn socketio_sessions_share_one_event_whoever_the_message_is_for() {
        for addressee in [Addressee::Group("chat"), Addressee::User("7"), Addressee::Connection] {
            let mut fanout = Fanout::with_sender(Utf8Bytes::from_static(FRAME), addressee, None);
            let a = fanout.frame_for(&Wire::SocketIo).unwrap();
            let b = fanout.frame_for(&Wire::SocketIo).unwrap();
            assert_eq!(a.as_str(), r#"42["msg",{"a":1}]"#);
            assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "encoded once, shared");
            assert_eq!(fanout.frame_for(&Wire::Herald).unwrap().as_str(), FRAME);
        }
    }

    #[test]
    fn a_message_that_is_no_herald_frame_reaches_herald_sessions_only() {
        let mut fanout = Fanout::with_sender(Utf8Bytes::from_static("[1,2]"), Addressee::Group("chat"), None);
        assert!(fanout.frame_for(&Wire::SocketIo).is_none());
        let wire = pusher("");
        assert!(fanout.frame_for(&wire).is_none());
        assert_eq!(fanout.frame_for(&Wire::Herald).unwrap().as_str(), "[1,2]");
    }
}
