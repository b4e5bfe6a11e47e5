//! What the handles and the connection task share: the subscriptions, the
//! commands waiting to be written, and how far the server has answered.
//!
//! The subscriptions are the truth. While connected, every change to them
//! is also queued as a command for the server; on every (re)connect the
//! queue starts empty and the commands are written again from the
//! subscriptions, so nothing is lost or sent twice across an outage.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::config::{Event, EventHandler};
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
    /// Every live subscription by its id (`sid`).
    subscriptions: HashMap<u64, Entry<D>>,
    /// Source of subscription ids; never reused, so a late message for a
    /// dropped subscription finds nothing.
    next_sid: u64,
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
}

/// One subscription.
struct Entry<D: ?Sized> {
    /// To subscribe again after a reconnect.
    subject: Box<str>,
    /// Handed every message, on the reader.
    deliver: Arc<D>,
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
}

impl<D: ?Sized + Deliver> Shared<D> {
    pub fn new(max_pending: usize, on_event: Option<EventHandler>) -> Shared<D> {
        Shared {
            state: Mutex::new(State {
                subscriptions: HashMap::new(),
                next_sid: 1,
                commands: BytesMut::new(),
                pings: 0,
                pongs: 0,
                epoch: 0,
                connected: false,
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

    /// Adds a subscription, and sends `SUB` if connected.
    pub fn subscribe(&self, subject: &str, deliver: Arc<D>) -> Result<u64, Error> {
        let mut state = self.lock();
        if state.connected && state.commands.len() + subject.len() + 32 > self.max_pending {
            return Err(Error::Backlog { pending: state.commands.len() });
        }
        let sid = state.next_sid;
        state.next_sid += 1;
        if state.connected {
            write_sub(&mut state.commands, subject, sid);
            self.commands_queued.notify_one();
        }
        state.subscriptions.insert(sid, Entry { subject: subject.into(), deliver });
        Ok(sid)
    }

    /// Removes a subscription, and sends `UNSUB` if connected.
    pub fn unsubscribe(&self, sid: u64) {
        let mut state = self.lock();
        if state.subscriptions.remove(&sid).is_some() && state.connected {
            state.commands.extend_from_slice(b"UNSUB ");
            write_number(&mut state.commands, sid);
            state.commands.extend_from_slice(b"\r\n");
            self.commands_queued.notify_one();
        }
    }

    pub fn subscriptions(&self) -> usize {
        self.lock().subscriptions.len()
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Where a waiter for "everything sent so far has been handled" waits:
    /// a ping sent now, or, while disconnected, the ping that follows the
    /// subscriptions when the next connection sends them again.
    pub fn sync_target(&self) -> SyncTarget {
        let mut state = self.lock();
        if !state.connected {
            return SyncTarget { epoch: state.epoch + 1, pong: 1 };
        }
        state.pings += 1;
        state.commands.extend_from_slice(b"PING\r\n");
        self.commands_queued.notify_one();
        SyncTarget { epoch: state.epoch, pong: state.pings }
    }

    /// A new connection is up: queue `SUB` for every subscription, then a
    /// ping whose pong says they are all live.
    pub fn connected(&self) {
        let mut state = self.lock();
        let State { subscriptions, commands, .. } = &mut *state;
        commands.clear();
        for (sid, entry) in subscriptions.iter() {
            write_sub(commands, &entry.subject, *sid);
        }
        commands.extend_from_slice(b"PING\r\n");
        state.pings = 1;
        state.pongs = 0;
        state.epoch += 1;
        state.connected = true;
        self.publish(&state);
        self.commands_queued.notify_one();
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
        let mut state = self.lock();
        state.pings += 1;
        state.commands.extend_from_slice(b"PING\r\n");
        self.commands_queued.notify_one();
    }

    /// Hands a message to its subscription's handler, on the caller (the
    /// reader). A message for a subscription that is gone is dropped; one
    /// that cannot be read is dropped and reported, the connection lives.
    pub fn dispatch(&self, msg: &Msg<'_>) {
        let Some(deliver) = self.lock().subscriptions.get(&msg.sid).map(|entry| entry.deliver.clone()) else {
            return;
        };
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

fn write_sub(commands: &mut BytesMut, subject: &str, sid: u64) {
    commands.reserve(subject.len() + 26);
    commands.put_slice(b"SUB ");
    commands.put_slice(subject.as_bytes());
    commands.put_u8(b' ');
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
    use super::*;
    use crate::subscriber::Deliver;

    type Handler = dyn Deliver;

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
        let a = shared.subscribe("a", nothing()).unwrap();
        assert_eq!(queued(&shared), "");
        shared.connected();
        assert_eq!(queued(&shared), format!("SUB a {a}\r\nPING\r\n"));
        let b = shared.subscribe("b.*", nothing()).unwrap();
        shared.unsubscribe(a);
        assert_eq!(queued(&shared), format!("SUB b.* {b}\r\nUNSUB {a}\r\n"));
        shared.disconnected();
        shared.subscribe("c", nothing()).unwrap();
        assert_eq!(queued(&shared), "");
        shared.connected();
        let mut lines: Vec<String> = queued(&shared).lines().map(str::to_owned).collect();
        lines.sort();
        assert_eq!(lines, ["PING", format!("SUB b.* {b}").as_str(), "SUB c 3"]);
    }

    #[test]
    fn pending_commands_have_a_bound() {
        let shared = shared();
        shared.connected();
        let long = "x".repeat(60);
        let mut refused = None;
        for _ in 0..10 {
            if let Err(e) = shared.subscribe(&long, nothing()) {
                refused = Some(e);
                break;
            }
        }
        assert!(matches!(refused, Some(Error::Backlog { .. })), "{refused:?}");
        // Writing them makes room again.
        shared.take_commands();
        assert!(shared.subscribe(&long, nothing()).is_ok());
    }

    #[test]
    fn a_sync_waits_for_its_own_pong_or_for_the_next_connection() {
        let shared = shared();
        let before_connecting = shared.sync_target();
        shared.connected();
        let progress = || *shared.progress().borrow();
        assert!(!before_connecting.reached(&progress()));
        shared.pong();
        assert!(before_connecting.reached(&progress()));
        let now = shared.sync_target();
        assert!(!now.reached(&progress()));
        // The connection drops before the pong: the next connection's first
        // pong (after every SUB) answers it.
        shared.disconnected();
        shared.connected();
        assert!(!now.reached(&progress()));
        shared.pong();
        assert!(now.reached(&progress()));
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
