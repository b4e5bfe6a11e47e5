//! What the handles and the connection task share: the subscriptions, the
//! commands waiting to be written, and how far the server has answered.
//!
//! The subscriptions are the truth: those kept here, and those of each
//! family, which its owner keeps (`family`). While connected, every change
//! to them is also queued as a command for the server; on every
//! (re)connect the queue starts empty and the commands are written again
//! from the subscriptions kept here and by asking each family's owner, so
//! nothing is lost across an outage. A family's subscription made while
//! its owner is asked may be sent twice, which the server ignores.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::config::{Event, EventHandler};
use crate::family::{Family, Owner, Resubscribing, family_of, sid};
use crate::headers::Headers;
use crate::parse::Msg;
use crate::subscriber::{Deliver, Delivery};

/// A pending-commands buffer that grew past this is given back once written.
const KEPT_COMMAND_CAPACITY: usize = 64 * 1024;

/// Shared by every handle, every [`crate::Subscription`] and the
/// connection task.
pub(crate) struct Shared<D: ?Sized> {
    state: Mutex<State<D>>,
    /// Wakes the writer when commands are queued.
    pub(crate) commands_queued: Notify,
    /// How far the server has answered, for [`Shared::sync_target`] waiters.
    progress: watch::Sender<Progress>,
    /// Bound on queued command bytes (`Config::max_pending_commands`).
    max_pending: usize,
    /// Told about messages that are dropped and handlers that panic.
    on_event: Option<EventHandler>,
}

struct State<D: ?Sized> {
    /// Every live subscription kept here, by its id (`sid`).
    subscriptions: HashMap<u64, Entry<D>>,
    /// The families registered, in the order of their tags.
    families: Vec<FamilyEntry<D>>,
    /// Source of subscription ids (`family::sid`); never reused.
    next_sequence: u64,
    /// Commands for the server not yet taken by the writer; empty while
    /// disconnected.
    commands: BytesMut,
    /// Pings sent and pongs received on this connection (the server answers
    /// in order, so pong `n` answers ping `n`).
    pings: u64,
    pongs: u64,
    /// Counts connections made; 0 until the first one.
    epoch: u64,
    connected: bool,
    /// The connected server's `max_payload`: a larger publish is refused
    /// here, as the server would close the connection for it.
    max_payload: usize,
    /// While the families' owners are asked for their subscriptions on a
    /// new connection: the ping that follows them is to come, and is the
    /// one a sync waits for.
    resubscribing: bool,
}

/// One subscription.
struct Entry<D: ?Sized> {
    /// To subscribe again after a reconnect.
    subject: Box<str>,
    /// Its queue group, if it is one member of a group.
    queue: Option<Box<str>>,
    /// Handed every message, on the reader.
    deliver: Arc<D>,
    /// Draining: `UNSUB` is sent, and the messages the server sent before
    /// it had it are still handed over; never sent again on a new
    /// connection (the server there never had it).
    draining: bool,
}

/// One family: its subscriptions are its owner's, and this is all that is
/// kept of them.
struct FamilyEntry<D: ?Sized> {
    /// Handed every message of the family's subscriptions, on the reader.
    deliver: Arc<D>,
    /// Says the family's subscriptions again at each connection.
    owner: Arc<dyn Owner>,
}

/// How far the server has answered, published to [`Shared::sync_target`]
/// waiters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    pub epoch: u64,
    pub pongs: u64,
    pub connected: bool,
}

/// A point a waiter waits for: pong `pong` of connection `epoch`, or the
/// first pong of any later connection (which answers a ping sent after
/// every subscription was sent again).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncTarget {
    epoch: u64,
    pong: u64,
}

impl SyncTarget {
    pub fn reached(&self, progress: &Progress) -> bool {
        (progress.epoch == self.epoch && progress.pongs >= self.pong)
            || (progress.epoch > self.epoch && progress.pongs >= 1)
    }

    /// Whether nothing the server sent before this target's ping can still
    /// arrive: the server answered the ping (it answers in order, after
    /// every message it sent before), or the connection it was sent on is
    /// gone.
    pub fn fenced(&self, progress: &Progress) -> bool {
        (progress.epoch == self.epoch && progress.pongs >= self.pong)
            || progress.epoch > self.epoch
            || !progress.connected
    }
}

impl<D: ?Sized + Deliver> Shared<D> {
    pub fn new(max_pending: usize, on_event: Option<EventHandler>) -> Shared<D> {
        Shared {
            state: Mutex::new(State {
                subscriptions: HashMap::new(),
                families: Vec::new(),
                next_sequence: 1,
                commands: BytesMut::new(),
                pings: 0,
                pongs: 0,
                epoch: 0,
                connected: false,
                max_payload: 0,
                resubscribing: false,
            }),
            commands_queued: Notify::new(),
            progress: watch::Sender::new(Progress::default()),
            max_pending,
            on_event,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<D>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a family (`family`).
    ///
    /// # Panics
    ///
    /// Past `family::MAX_FAMILIES`: they are a fixed few, registered at
    /// start-up.
    pub fn add_family(&self, deliver: Arc<D>, owner: Arc<dyn Owner>) -> Family {
        let mut state = self.lock();
        let family = Family::nth(state.families.len());
        state.families.push(FamilyEntry { deliver, owner });
        family
    }

    /// Adds a subscription kept here, in queue group `queue` if any, and
    /// sends `SUB` if connected.
    pub fn subscribe(&self, subject: &str, queue: Option<&str>, deliver: Arc<D>) -> Result<u64, Error> {
        let mut state = self.lock();
        let sid = self.new_sub(&mut state, subject, queue, None)?;
        let entry = Entry { subject: subject.into(), queue: queue.map(Into::into), deliver, draining: false };
        state.subscriptions.insert(sid, entry);
        Ok(sid)
    }

    /// Adds a subscription to `family`, whose owner keeps it, and sends
    /// `SUB` if connected.
    pub fn subscribe_in(&self, family: Family, subject: &str) -> Result<u64, Error> {
        self.new_sub(&mut self.lock(), subject, None, Some(family))
    }

    /// A new subscription's id, its `SUB` queued if connected.
    fn new_sub(
        &self,
        state: &mut State<D>,
        subject: &str,
        queue: Option<&str>,
        family: Option<Family>,
    ) -> Result<u64, Error> {
        let length = subject.len() + queue.map_or(0, str::len) + 32;
        if state.connected && state.commands.len() + length > self.max_pending {
            return Err(Error::Backlog { pending: state.commands.len() });
        }
        let sid = sid(state.next_sequence, family);
        state.next_sequence += 1;
        if state.connected {
            write_sub(&mut state.commands, subject, queue, sid);
            self.commands_queued.notify_one();
        }
        Ok(sid)
    }

    /// Removes a subscription, and sends `UNSUB` if connected. A family's
    /// is sent whether or not the server has it yet (its `SUB` may be on
    /// its way from the owner): the server ignores an `UNSUB` for an id it
    /// does not have.
    pub fn unsubscribe(&self, sid: u64) {
        let mut state = self.lock();
        let live = match family_of(sid) {
            None => state.subscriptions.remove(&sid).is_some(),
            Some(_) => true,
        };
        if live && state.connected {
            write_unsub(&mut state.commands, sid);
            self.commands_queued.notify_one();
        }
    }

    /// Starts draining a subscription kept here: `UNSUB`, then a ping,
    /// while the subscription stays, so that the messages the server sent
    /// before it had the `UNSUB` are still handed over. Returns the ping to
    /// wait for before [`Shared::forget`]; `None` when nothing can arrive
    /// any more (no connection, or no such subscription).
    pub fn drain(&self, sid: u64) -> Option<SyncTarget> {
        let mut state = self.lock();
        if !state.connected {
            return None;
        }
        let entry = state.subscriptions.get_mut(&sid)?;
        entry.draining = true;
        write_unsub(&mut state.commands, sid);
        Some(self.queue_ping(&mut state))
    }

    /// Removes a subscription without telling the server: a drained one,
    /// which the server no longer has.
    pub fn forget(&self, sid: u64) {
        self.lock().subscriptions.remove(&sid);
    }

    /// Queues a message for the server: `PUB`, or `HPUB` with `headers`.
    /// Only while connected (a message is not kept for the next
    /// connection), within the server's `max_payload` and the bound on
    /// pending commands.
    pub fn publish_message(&self, subject: &str, headers: &[(&str, &str)], payload: &[u8]) -> Result<(), Error> {
        let refused = |reason: String| Err(Error::Publish { subject: subject.to_owned(), reason });
        let mut block = Vec::new();
        if !headers.is_empty() {
            block.extend_from_slice(b"NATS/1.0\r\n");
            for (name, value) in headers {
                let bad = |c: char| c.is_control() || (c.is_whitespace() && c != ' ');
                if name.is_empty()
                    || name.contains(':')
                    || name.chars().any(|c| bad(c) || c == ' ')
                    || value.contains(bad)
                {
                    return refused(format!("header {name:?} cannot be sent as it is"));
                }
                block.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            block.extend_from_slice(b"\r\n");
        }
        let size = block.len() + payload.len();
        let mut state = self.lock();
        if !state.connected {
            return refused("not connected".to_owned());
        }
        if size > state.max_payload {
            return refused(format!("{size} bytes is over the server's max_payload of {}", state.max_payload));
        }
        if state.commands.len() + subject.len() + size + 64 > self.max_pending {
            return Err(Error::Backlog { pending: state.commands.len() });
        }
        let commands = &mut state.commands;
        if block.is_empty() {
            commands.put_slice(b"PUB ");
            commands.put_slice(subject.as_bytes());
            commands.put_u8(b' ');
        } else {
            commands.put_slice(b"HPUB ");
            commands.put_slice(subject.as_bytes());
            commands.put_u8(b' ');
            write_number(commands, block.len() as u64);
            commands.put_u8(b' ');
        }
        write_number(commands, size as u64);
        commands.put_slice(b"\r\n");
        commands.put_slice(&block);
        commands.put_slice(payload);
        commands.put_slice(b"\r\n");
        self.commands_queued.notify_one();
        Ok(())
    }

    /// Subscriptions kept here (a family's are its owner's to count).
    pub fn subscriptions(&self) -> usize {
        self.lock().subscriptions.len()
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Where a waiter for "everything sent so far has been handled" waits:
    /// a ping sent now, or the ping that follows the subscriptions when a
    /// connection sends them again: the next connection's while
    /// disconnected, this one's while its owners are being asked (a ping
    /// sent now could be answered before the `SUB`s they have yet to say).
    pub fn sync_target(&self) -> SyncTarget {
        let mut state = self.lock();
        if !state.connected {
            return SyncTarget { epoch: state.epoch + 1, pong: 1 };
        }
        if state.resubscribing {
            return SyncTarget { epoch: state.epoch, pong: 1 };
        }
        self.queue_ping(&mut state)
    }

    /// Queues a ping on the current connection; its pong is the target.
    fn queue_ping(&self, state: &mut State<D>) -> SyncTarget {
        state.pings += 1;
        state.commands.extend_from_slice(b"PING\r\n");
        self.commands_queued.notify_one();
        SyncTarget { epoch: state.epoch, pong: state.pings }
    }

    /// A new connection is up: queue `SUB` for every subscription kept
    /// here and, asking each family's owner, for theirs; then a ping whose
    /// pong says they are all live. Called on the connection's task, which
    /// is the only one to change the connection's state, so no other
    /// connection starts or ends while the owners are asked.
    ///
    /// The owners are asked without the subscriber's lock held: they take
    /// their own lock, under which they also subscribe (which takes the
    /// subscriber's). From the moment the connection is marked up, a new
    /// subscription queues its `SUB` itself: an owner that sees it too
    /// says it again, and the server ignores the second.
    pub fn connected(&self, max_payload: usize) {
        let owners: Vec<Arc<dyn Owner>> = {
            let mut state = self.lock();
            state.max_payload = max_payload;
            let State { subscriptions, commands, .. } = &mut *state;
            commands.clear();
            // A subscription that was draining has nothing more to come.
            subscriptions.retain(|_, entry| !entry.draining);
            for (sid, entry) in subscriptions.iter() {
                write_sub(commands, &entry.subject, entry.queue.as_deref(), *sid);
            }
            state.pings = 0;
            state.pongs = 0;
            state.epoch += 1;
            state.connected = true;
            state.resubscribing = true;
            self.publish(&state);
            state.families.iter().map(|family| family.owner.clone()).collect()
        };
        let sub = |subject: &str, sid: u64| write_sub(&mut self.lock().commands, subject, None, sid);
        let resubscribing = Resubscribing { sub: &sub };
        for owner in owners {
            // An owner that panics has said what it said; the others still
            // say theirs, and the connection lives.
            if std::panic::catch_unwind(AssertUnwindSafe(|| owner.resubscribe(&resubscribing))).is_err() {
                tracing::error!("a subscription family's owner panicked while subscribing again");
            }
        }
        let mut state = self.lock();
        state.commands.extend_from_slice(b"PING\r\n");
        state.pings = 1;
        state.resubscribing = false;
        self.commands_queued.notify_one();
    }

    /// The server's `INFO` update gave another `max_payload`: a publish
    /// past it would make the server close the connection.
    pub fn max_payload_changed(&self, max_payload: usize) {
        self.lock().max_payload = max_payload;
    }

    /// The connection is gone: what was queued for it is moot.
    pub fn disconnected(&self) {
        let mut state = self.lock();
        state.connected = false;
        state.commands = BytesMut::new();
        self.publish(&state);
    }

    /// The commands queued so far, for the writer.
    pub fn take_commands(&self) -> Option<BytesMut> {
        let mut state = self.lock();
        if state.commands.is_empty() {
            return None;
        }
        let taken = state.commands.split();
        if taken.capacity() > KEPT_COMMAND_CAPACITY {
            state.commands = BytesMut::new();
        }
        Some(taken)
    }

    /// The server pinged us.
    pub fn answer_ping(&self) {
        self.lock().commands.extend_from_slice(b"PONG\r\n");
        self.commands_queued.notify_one();
    }

    /// The server answered our oldest unanswered ping.
    pub fn pong(&self) {
        let mut state = self.lock();
        state.pongs = (state.pongs + 1).min(state.pings);
        self.publish(&state);
    }

    /// Sends a keep-alive ping (when the connection is stale is
    /// `keep_alive`'s to say, from anything heard).
    pub fn ping(&self) {
        self.queue_ping(&mut self.lock());
    }

    /// Hands a message to its subscription's handler, on the caller (the
    /// reader). A message for a subscription that is gone is dropped; one
    /// that cannot be read is dropped and reported, the connection lives.
    pub fn dispatch(&self, msg: &Msg<'_>) {
        let deliver = {
            let state = self.lock();
            match family_of(msg.sid) {
                None => state.subscriptions.get(&msg.sid).map(|entry| entry.deliver.clone()),
                Some(family) => state.families.get(family).map(|family| family.deliver.clone()),
            }
        };
        let Some(deliver) = deliver else { return };
        let (Ok(subject), Ok(reply)) =
            (std::str::from_utf8(msg.subject), msg.reply.map(std::str::from_utf8).transpose())
        else {
            return self.event(&Event::Dropped { reason: "subject or reply subject is not UTF-8".to_owned() });
        };
        let headers = match msg.headers.map(Headers::parse).transpose() {
            Ok(headers) => headers,
            Err(e) => return self.event(&Event::Dropped { reason: format!("message on {subject}: {e}") }),
        };
        // A copy, so that the read buffer is never shared and is reused as
        // it is; one allocation per message, not per receiver.
        let delivery = Delivery { sid: msg.sid, subject, reply, headers, payload: Bytes::copy_from_slice(msg.payload) };
        // A handler that panics loses its message, not the connection.
        if std::panic::catch_unwind(AssertUnwindSafe(|| deliver.deliver(delivery))).is_err() {
            self.event(&Event::Dropped { reason: format!("the handler of a message on {subject} panicked") });
        }
    }

    pub fn event(&self, event: &Event) {
        match event {
            Event::Connected { server } => tracing::info!(server, "NATS subscriber connected"),
            Event::Disconnected { reason } => tracing::warn!(reason, "NATS subscriber disconnected; reconnecting"),
            Event::ConnectFailed { server, reason } => tracing::warn!(server, reason, "NATS subscriber cannot connect"),
            Event::ServerError(text) => tracing::warn!(error = text, "NATS server error"),
            Event::LameDuck { server } => tracing::info!(server, "NATS server entering lame duck mode"),
            Event::Dropped { reason } => tracing::warn!(reason, "dropped a NATS message"),
        }
        if let Some(on_event) = &self.on_event {
            on_event(event);
        }
    }

    fn publish(&self, state: &State<D>) {
        self.progress.send_replace(Progress { epoch: state.epoch, pongs: state.pongs, connected: state.connected });
    }
}

fn write_sub(commands: &mut BytesMut, subject: &str, queue: Option<&str>, sid: u64) {
    commands.reserve(subject.len() + queue.map_or(0, |queue| queue.len() + 1) + 26);
    commands.put_slice(b"SUB ");
    commands.put_slice(subject.as_bytes());
    commands.put_u8(b' ');
    if let Some(queue) = queue {
        commands.put_slice(queue.as_bytes());
        commands.put_u8(b' ');
    }
    write_number(commands, sid);
    commands.put_slice(b"\r\n");
}

fn write_unsub(commands: &mut BytesMut, sid: u64) {
    commands.put_slice(b"UNSUB ");
    write_number(commands, sid);
    commands.put_slice(b"\r\n");
}

fn write_number(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::subscriber::Deliver;

    type Handler = dyn Deliver;

    /// The server's `max_payload` in these tests.
    const MAX_PAYLOAD: usize = 100;

    fn shared() -> Shared<Handler> {
        Shared::new(200, None)
    }

    fn queued(shared: &Shared<Handler>) -> String {
        shared.take_commands().map(|b| String::from_utf8(b.to_vec()).unwrap()).unwrap_or_default()
    }

    fn nothing() -> Arc<Handler> {
        Arc::new(|_: Delivery<'_>| {})
    }

    #[test]
    fn commands_are_queued_only_while_connected_and_all_sent_again_on_connect() {
        let shared = shared();
        let a = shared.subscribe("a", None, nothing()).unwrap();
        assert_eq!(queued(&shared), "");
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB a {a}\r\nPING\r\n"));
        let b = shared.subscribe("b.*", None, nothing()).unwrap();
        shared.unsubscribe(a);
        assert_eq!(queued(&shared), format!("SUB b.* {b}\r\nUNSUB {a}\r\n"));
        shared.disconnected();
        let c = shared.subscribe("c", None, nothing()).unwrap();
        assert_eq!(queued(&shared), "");
        shared.connected(MAX_PAYLOAD);
        let mut lines: Vec<String> = queued(&shared).lines().map(str::to_owned).collect();
        lines.sort();
        assert_eq!(lines, ["PING", format!("SUB b.* {b}").as_str(), format!("SUB c {c}").as_str()]);
    }

    #[test]
    fn a_queue_member_says_its_group_on_every_connection() {
        let shared = shared();
        shared.connected(MAX_PAYLOAD);
        queued(&shared);
        let member = shared.subscribe("work", Some("workers"), nothing()).unwrap();
        assert_eq!(queued(&shared), format!("SUB work workers {member}\r\n"));
        shared.disconnected();
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB work workers {member}\r\nPING\r\n"));
    }

    #[test]
    fn a_draining_subscription_hands_over_what_comes_until_its_ping_is_answered() {
        let seen = Arc::new(Mutex::new(0));
        let counting: Arc<Handler> = {
            let seen = seen.clone();
            Arc::new(move |_: Delivery<'_>| *seen.lock().unwrap() += 1)
        };
        let shared = shared();
        let member = shared.subscribe("work", Some("workers"), counting).unwrap();
        shared.connected(MAX_PAYLOAD);
        queued(&shared);
        shared.pong();
        let progress = || *shared.progress().borrow();
        let fence = shared.drain(member).expect("connected, so something may still come");
        assert_eq!(queued(&shared), format!("UNSUB {member}\r\nPING\r\n"));
        // What the server sent before it had the UNSUB still arrives.
        let message = Msg { subject: b"work", sid: member, reply: Some(b"inbox"), headers: None, payload: b"" };
        shared.dispatch(&message);
        assert!(!fence.fenced(&progress()));
        shared.pong();
        assert!(fence.fenced(&progress()));
        shared.forget(member);
        shared.dispatch(&message);
        assert_eq!(*seen.lock().unwrap(), 1);
        assert_eq!(shared.subscriptions(), 0);
    }

    #[test]
    fn a_drain_ends_with_its_connection_and_is_not_sent_again() {
        let shared = shared();
        let before = shared.subscribe("work", Some("workers"), nothing()).unwrap();
        assert!(shared.drain(before).is_none(), "not connected: nothing can come");
        shared.forget(before);
        let member = shared.subscribe("work", Some("workers"), nothing()).unwrap();
        let kept = shared.subscribe("kept", None, nothing()).unwrap();
        shared.connected(MAX_PAYLOAD);
        queued(&shared);
        let fence = shared.drain(member).unwrap();
        shared.disconnected();
        assert!(fence.fenced(&shared.progress().borrow()), "the connection it was on is gone");
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB kept {kept}\r\nPING\r\n"));
        assert_eq!(shared.subscriptions(), 1);
    }

    #[test]
    fn a_message_is_published_with_or_without_headers_and_only_when_it_can_be() {
        let shared = shared();
        let refused = shared.publish_message("inbox.1", &[], b"early").unwrap_err();
        assert_eq!(refused.to_string(), r#"cannot publish to "inbox.1": not connected"#);
        shared.connected(MAX_PAYLOAD);
        queued(&shared);
        shared.publish_message("inbox.1", &[], b"answer").unwrap();
        shared.publish_message("inbox.2", &[("traceparent", "00-ab-cd-01")], b"x").unwrap();
        assert_eq!(
            queued(&shared),
            "PUB inbox.1 6\r\nanswer\r\nHPUB inbox.2 38 39\r\nNATS/1.0\r\ntraceparent: 00-ab-cd-01\r\n\r\nx\r\n"
        );
        let too_large = shared.publish_message("inbox.3", &[], &[b'x'; MAX_PAYLOAD + 1]).unwrap_err();
        assert!(too_large.to_string().contains("over the server's max_payload of 100"), "{too_large}");
        shared.max_payload_changed(10);
        let past_update = shared.publish_message("inbox.3", &[], &[b'x'; 11]).unwrap_err();
        assert!(past_update.to_string().contains("over the server's max_payload of 10"), "{past_update}");
        shared.max_payload_changed(MAX_PAYLOAD);
        for (name, value) in [("a b", "v"), ("a:b", "v"), ("", "v"), ("n", "v\r\nX: injected")] {
            assert!(shared.publish_message("inbox.4", &[(name, value)], b"").is_err(), "{name:?}: {value:?}");
        }
        assert_eq!(queued(&shared), "", "nothing refused is queued");
    }

    #[test]
    fn pending_commands_have_a_bound() {
        let shared = shared();
        shared.connected(MAX_PAYLOAD);
        let long = "x".repeat(60);
        let mut refused = None;
        for _ in 0..10 {
            if let Err(e) = shared.subscribe(&long, None, nothing()) {
                refused = Some(e);
                break;
            }
        }
        assert!(matches!(refused, Some(Error::Backlog { .. })), "{refused:?}");
        // Writing them makes room again.
        shared.take_commands();
        assert!(shared.subscribe(&long, None, nothing()).is_ok());
    }

    #[test]
    fn a_sync_waits_for_its_own_pong_or_for_the_next_connection() {
        let shared = shared();
        let before_connecting = shared.sync_target();
        shared.connected(MAX_PAYLOAD);
        let progress = || *shared.progress().borrow();
        assert!(!before_connecting.reached(&progress()));
        shared.pong();
        assert!(before_connecting.reached(&progress()));
        let now = shared.sync_target();
        assert!(!now.reached(&progress()));
        // The connection drops before the pong: the next connection's first
        // pong (after every SUB) answers it.
        shared.disconnected();
        shared.connected(MAX_PAYLOAD);
        assert!(!now.reached(&progress()));
        shared.pong();
        assert!(now.reached(&progress()));
    }

    /// A family's owner as the edge's registry is one: its subscriptions
    /// under its own lock, and something another thread does between the
    /// connection being marked up and the owner being asked.
    #[derive(Default)]
    struct Owned {
        subjects: Mutex<BTreeMap<u64, String>>,
        meanwhile: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl Owner for Owned {
        fn resubscribe(&self, resubscribing: &Resubscribing<'_>) {
            if let Some(meanwhile) = self.meanwhile.lock().unwrap().take() {
                meanwhile();
            }
            for (sid, subject) in self.subjects.lock().unwrap().iter() {
                resubscribing.sub(subject, *sid);
            }
        }
    }

    /// A shared state with one family, whose owner is returned.
    fn with_family() -> (Arc<Shared<Handler>>, Family, Arc<Owned>) {
        let shared = Arc::new(shared());
        let owned = Arc::new(Owned::default());
        let family = shared.add_family(nothing(), owned.clone());
        (shared, family, owned)
    }

    fn subscribe_in(shared: &Shared<Handler>, family: Family, owned: &Owned, subject: &str) -> u64 {
        let mut subjects = owned.subjects.lock().unwrap();
        let sid = shared.subscribe_in(family, subject).unwrap();
        subjects.insert(sid, subject.to_owned());
        sid
    }

    fn unsubscribe_in(shared: &Shared<Handler>, owned: &Owned, sid: u64) {
        let mut subjects = owned.subjects.lock().unwrap();
        subjects.remove(&sid);
        shared.unsubscribe(sid);
    }

    #[test]
    fn a_familys_owner_says_its_live_subscriptions_on_each_connection() {
        let (shared, family, owned) = with_family();
        let kept = shared.subscribe("kept", None, nothing()).unwrap();
        let a = subscribe_in(&shared, family, &owned, "a");
        assert_eq!(queued(&shared), "");
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB kept {kept}\r\nSUB a {a}\r\nPING\r\n"));
        let b = subscribe_in(&shared, family, &owned, "b");
        unsubscribe_in(&shared, &owned, a);
        assert_eq!(queued(&shared), format!("SUB b {b}\r\nUNSUB {a}\r\n"));
        // While disconnected one goes and one comes: the next connection
        // has the one that came, not the one that went.
        shared.disconnected();
        unsubscribe_in(&shared, &owned, b);
        let c = subscribe_in(&shared, family, &owned, "c");
        assert_eq!(queued(&shared), "");
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB kept {kept}\r\nSUB c {c}\r\nPING\r\n"));
        assert_eq!(shared.subscriptions(), 1, "a family's subscriptions are not kept here");
    }

    #[test]
    fn a_subscription_made_while_the_owner_is_asked_is_sent_before_the_ping() {
        let (shared, family, owned) = with_family();
        let a = subscribe_in(&shared, family, &owned, "a");
        let late = Arc::new(Mutex::new(0));
        *owned.meanwhile.lock().unwrap() = Some(Box::new({
            let (shared, owned, late) = (Arc::downgrade(&shared), Arc::downgrade(&owned), late.clone());
            move || {
                let (shared, owned) = (shared.upgrade().unwrap(), owned.upgrade().unwrap());
                *late.lock().unwrap() = subscribe_in(&shared, family, &owned, "late");
            }
        }));
        shared.connected(MAX_PAYLOAD);
        let late = *late.lock().unwrap();
        // Queued by the subscribe itself, and said again by the owner, who
        // saw it: the server ignores the second (ADR 0026).
        assert_eq!(queued(&shared), format!("SUB late {late}\r\nSUB a {a}\r\nSUB late {late}\r\nPING\r\n"));
    }

    #[test]
    fn a_sync_while_the_owner_is_asked_waits_for_the_ping_after_it() {
        let (shared, family, owned) = with_family();
        subscribe_in(&shared, family, &owned, "a");
        let target = Arc::new(Mutex::new(None));
        *owned.meanwhile.lock().unwrap() = Some(Box::new({
            let (shared, target) = (Arc::downgrade(&shared), target.clone());
            move || *target.lock().unwrap() = Some(shared.upgrade().unwrap().sync_target())
        }));
        shared.connected(MAX_PAYLOAD);
        let target = target.lock().unwrap().unwrap();
        let progress = || *shared.progress().borrow();
        assert!(!target.reached(&progress()));
        let commands = queued(&shared);
        assert_eq!(commands.matches("PING").count(), 1, "{commands}");
        assert!(commands.ends_with("PING\r\n"), "{commands}");
        shared.pong();
        assert!(target.reached(&progress()));
    }

    #[test]
    fn an_owner_that_panics_loses_its_own_subscriptions_not_the_connection() {
        struct Panics;
        impl Owner for Panics {
            fn resubscribe(&self, _: &Resubscribing<'_>) {
                panic!("owner");
            }
        }
        let shared = shared();
        shared.add_family(nothing(), Arc::new(Panics));
        let kept = shared.subscribe("kept", None, nothing()).unwrap();
        shared.connected(MAX_PAYLOAD);
        assert_eq!(queued(&shared), format!("SUB kept {kept}\r\nPING\r\n"));
    }

    #[test]
    fn messages_go_to_their_familys_handler_or_their_own() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = |name: &'static str| -> Arc<Handler> {
            let seen = seen.clone();
            Arc::new(move |delivery: Delivery<'_>| seen.lock().unwrap().push((name, delivery.sid)))
        };
        let shared = shared();
        let users = shared.add_family(recorder("users"), Arc::new(Owned::default()));
        let groups = shared.add_family(recorder("groups"), Arc::new(Owned::default()));
        let kept = shared.subscribe("kept", None, recorder("kept")).unwrap();
        let user = shared.subscribe_in(users, "u").unwrap();
        let group = shared.subscribe_in(groups, "g").unwrap();
        let message = |sid| Msg { subject: b"s", sid, reply: None, headers: None, payload: b"" };
        for sid in [group, kept, user, kept + 16] {
            shared.dispatch(&message(sid));
        }
        assert_eq!(*seen.lock().unwrap(), [("groups", group), ("kept", kept), ("users", user)]);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut out = BytesMut::new();
            write_number(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }
}
