//! The handle the rest of the edge holds to reach one session: a bounded
//! mailbox for frames, and a close request that bypasses the mailbox.
//!
//! The mailbox is a queue behind a mutex rather than a tokio mpsc channel:
//! a channel allocates a cache-padded header and a first block of 32 slots
//! up front, about 1.8 KiB per session, while most sessions are idle most
//! of the time. This queue holds memory only while frames wait in it.
//!
//! A frame offered to a session whose task has nothing in hand is *corked*:
//! it waits in the mailbox without waking the session, and one of the
//! edge's [`flush`] tasks writes everything corked for the session in one
//! vectored `send`, without copying. A broadcast to 10,000 idle sessions is
//! 10,000 writes by the flushers, not 10,000 task wake-ups; under load, the
//! frames that arrive while a flusher works wait for its next round and go
//! out together. Only what the socket cannot take at once is left for the
//! session's task (ADR 0017).

pub(crate) mod flush;
mod read_ahead;
mod socket;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use herald_proto::pusher::app::App;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub(crate) use self::socket::SessionIo;
use self::socket::Unfinished;

/// A mailbox that grew past this many frames gives the memory back once
/// it is empty again; a smaller one keeps it, so a steady trickle of
/// frames does not allocate every time.
const KEPT_CAPACITY: usize = 8;

/// What a session is asked to do by others.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this frame. The bytes are shared by every session it goes to.
    Frame(Utf8Bytes),
    /// Finish the frame the flusher began writing to the socket and could
    /// not finish (flushing the socket does it).
    Unfinished,
    /// Close after the frames queued before this one.
    Close(CloseRequest),
}

/// The protocol a session speaks, decided at its upgrade: deliveries pick
/// the encoding of a message made for it (once per message and protocol,
/// shared by every session speaking it).
#[derive(Debug, Clone)]
pub(crate) enum Wire {
    /// Herald's own protocol on `/ws`: frames as backends published them.
    Herald,
    /// Pusher protocol 7 on `/app/<key>`, for this app (whose group prefix
    /// turns a group back into the channel its clients know).
    Pusher(Arc<App>),
    /// Socket.IO 5 on `/socket.io/`: a frame becomes the event
    /// `42["<action>", <details>]`.
    SocketIo,
}

/// How and why a session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub code: u16,
    pub reason: String,
}

impl CloseRequest {
    pub fn new(code: u16, reason: impl Into<String>) -> CloseRequest {
        CloseRequest { code, reason: reason.into() }
    }
}

/// A cheap, cloneable handle to one session.
#[derive(Debug, Clone)]
pub(crate) struct SessionHandle {
    shared: Arc<Shared>,
}

/// The session's end of its mailbox; dropping it refuses further frames.
#[derive(Debug)]
pub(crate) struct Mailbox {
    shared: Arc<Shared>,
}

/// The part of a session other tasks may touch.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The protocol the session speaks, for deliveries to encode for.
    wire: Wire,
    /// Frames the mailbox may hold. Bounded: a full mailbox means a slow
    /// consumer.
    capacity: usize,
    /// Milliseconds on the edge's delivery clock when the mailbox was first
    /// found full; 0 while it is not full. Lets deliveries tell a brief burst
    /// from a client that stopped reading.
    full_since: AtomicU64,
    state: Mutex<State>,
    /// The connection's TCP stream, set once the upgrade is done: the
    /// session reads and writes it through [`SessionIo`], the flusher
    /// writes corked frames to it.
    socket: OnceLock<TcpStream>,
    /// Wakes the session when something is queued.
    queued: Notify,
    /// Wakes the session when `close` is set.
    close_requested: Notify,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outbound>,
    /// Set when the session stops reading its mailbox.
    gone: bool,
    /// The first close asked for; later ones are ignored.
    close: Option<CloseRequest>,
    /// The session has greeted its client and holds nothing it took from
    /// the mailbox: a delivery may be corked without overtaking anything.
    idle: bool,
    /// The frames queued are the flusher's to write: the session was not
    /// woken for them (it takes them all the same if it wakes first).
    corked: bool,
    /// The session's last write stopped inside a frame (the rest is in its
    /// WebSocket's buffer): nothing else may be written before it.
    mid_frame: bool,
    /// A corked frame written only in part: the session writes its rest
    /// before anything else.
    unfinished: Option<Unfinished>,
}

impl State {
    /// Whether the flusher may write to the socket: nothing the session
    /// took or began would be overtaken or cut.
    fn socket_free(&self) -> bool {
        // (A frame left unfinished keeps its marker in the queue until the
        // session takes it, and the session is busy until it is written.)
        self.idle && !self.gone && !self.mid_frame && self.unfinished.is_none()
    }

    /// Whether a delivery may be corked: the socket is free, and whatever
    /// is queued is corked too.
    fn corkable(&self) -> bool {
        self.socket_free() && (self.corked || self.queue.is_empty())
    }
}

/// What happened to a frame offered to a session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Corked, the first frame since the last flush: the flusher must be
    /// handed the session ([`flush::Flusher::add`]).
    Corked,
    /// Queued: corked behind another frame, or for the session to write.
    Queued,
    /// The mailbox is full and has been since this time on the delivery clock.
    Full { since_ms: u64 },
    /// The session is ending.
    Gone,
}

/// Why something was not queued.
enum Refused {
    Full(Outbound),
    Gone,
}

impl SessionHandle {
    /// A handle and the mailbox its session reads.
    pub fn new(capacity: usize, wire: Wire) -> (SessionHandle, Mailbox, Arc<Shared>) {
        let shared = Arc::new(Shared {
            wire,
            capacity,
            full_since: AtomicU64::new(0),
            state: Mutex::default(),
            socket: OnceLock::new(),
            queued: Notify::new(),
            close_requested: Notify::new(),
        });
        (SessionHandle { shared: shared.clone() }, Mailbox { shared: shared.clone() }, shared)
    }

    /// The protocol the session speaks.
    pub fn wire(&self) -> &Wire {
        &self.shared.wire
    }

    /// Corks a frame if the session is idle, or else queues it for the
    /// session, without ever waiting. `now_ms` reads the delivery clock
    /// (never 0), only when the mailbox is full.
    pub fn offer(&self, frame: Utf8Bytes, now_ms: impl FnOnce() -> u64) -> Offer {
        match self.shared.deliver(frame) {
            Ok(offer) => {
                if self.shared.full_since.load(Ordering::Relaxed) != 0 {
                    self.shared.full_since.store(0, Ordering::Relaxed);
                }
                offer
            }
            Err(Refused::Full(_)) => {
                let now_ms = now_ms();
                let since_ms =
                    match self.shared.full_since.compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed) {
                        Ok(_) => now_ms,
                        Err(earlier) => earlier,
                    };
                Offer::Full { since_ms }
            }
            Err(Refused::Gone) => Offer::Gone,
        }
    }

    /// Closes the session after what is already queued for it, or at once
    /// when its mailbox is full.
    pub fn close_after_queued(&self, request: CloseRequest) {
        if let Err(Refused::Full(Outbound::Close(request))) = self.shared.push(Outbound::Close(request)) {
            self.close_now(request);
        }
    }

    /// Closes the session at once, whatever it is doing. Whether this was
    /// the first close asked for.
    pub fn close_now(&self, request: CloseRequest) -> bool {
        self.shared.request_close(request)
    }
}

impl Mailbox {
    /// The next thing queued, waiting for it. Cancel-safe: nothing is taken
    /// from the queue until it is returned.
    pub async fn recv(&mut self) -> Outbound {
        loop {
            if let Some(outbound) = self.try_recv() {
                return outbound;
            }
            // A push between `try_recv` and here stores a permit, so this
            // returns at once rather than miss it.
            self.shared.queued.notified().await;
        }
    }

    /// The next thing queued, if there is one. The session holds it until
    /// it says it has [`written`](Mailbox::written) what it took.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut state = self.shared.lock();
        let outbound = state.queue.pop_front();
        if outbound.is_some() {
            state.idle = false;
        }
        if state.queue.is_empty() && state.queue.capacity() > KEPT_CAPACITY {
            state.queue = VecDeque::new();
        }
        outbound
    }

    /// Holds deliveries back while the session works on something else
    /// (a client's frame, an action's answer, its timer): until
    /// [`written`](Mailbox::written), they are queued for the session
    /// rather than corked, so they follow whatever it writes meanwhile
    /// (a reply before what its effects published, PROTOCOL 5.17).
    pub fn hold(&mut self) {
        self.shared.lock().idle = false;
    }

    /// Says that everything taken from the mailbox is written and flushed
    /// (or, the first time, that the client was greeted): deliveries may go
    /// to the socket directly again once the queue is empty.
    pub fn written(&mut self) {
        let mut state = self.shared.lock();
        if state.queue.is_empty() {
            state.idle = true;
        }
    }

    /// Stops taking frames, for a session that is ending: what is queued is
    /// dropped, and nothing is written to the socket but by the session.
    pub fn stop(&mut self) {
        let mut state = self.shared.lock();
        state.gone = true;
        state.idle = false;
        state.corked = false;
        state.queue = VecDeque::new();
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Corks `frame` when the session is idle and its socket attached;
    /// queues it for the session otherwise.
    fn deliver(&self, frame: Utf8Bytes) -> Result<Offer, Refused> {
        let mut state = self.lock();
        let cork = self.socket.get().is_some() && state.corkable();
        // (A corkable mailbox is not gone, and empty unless already corked:
        // marking it before queueing never marks a frame that is refused.)
        let first = cork && !std::mem::replace(&mut state.corked, true);
        self.queue(state, Outbound::Frame(frame), !cork)?;
        Ok(if first { Offer::Corked } else { Offer::Queued })
    }

    /// Writes what is corked, as much as the socket takes now; leaves the
    /// rest to the session, woken for it. The frames written.
    fn flush(&self) -> usize {
        let mut state = self.lock();
        if !std::mem::take(&mut state.corked) || state.queue.is_empty() {
            // Nothing corked, or the session took it.
            return 0;
        }
        let written = match self.socket.get() {
            Some(tcp) if state.socket_free() => socket::write_queued(tcp, &mut state),
            _ => 0,
        };
        let left = !state.queue.is_empty();
        drop(state);
        if left {
            // The socket is full or failed, a frame is half written, or the
            // session is busy: it takes over, waiting for the socket or
            // finding the failure itself.
            self.queued.notify_one();
        }
        written
    }

    fn push(&self, outbound: Outbound) -> Result<(), Refused> {
        self.queue(self.lock(), outbound, true)
    }

    /// Queues `outbound` within the bound, and wakes the session for it
    /// when `wake` (not for a corked frame, which the flusher writes).
    fn queue(&self, mut state: MutexGuard<'_, State>, outbound: Outbound, wake: bool) -> Result<(), Refused> {
        if state.gone {
            return Err(Refused::Gone);
        }
        if state.queue.len() >= self.capacity {
            return Err(Refused::Full(outbound));
        }
        state.queue.push_back(outbound);
        drop(state);
        if wake {
            self.queued.notify_one();
        }
        Ok(())
    }

    fn request_close(&self, request: CloseRequest) -> bool {
        let first = {
            let mut state = self.lock();
            let first = state.close.is_none();
            if first {
                state.close = Some(request);
            }
            first
        };
        if first {
            self.close_requested.notify_one();
        }
        first
    }

    /// Resolves with the close request once there is one.
    pub async fn close_requested(&self) -> CloseRequest {
        loop {
            if let Some(request) = self.lock().close.clone() {
                return request;
            }
            self.close_requested.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    fn frame() -> Utf8Bytes {
        Utf8Bytes::from_static("{}")
    }

    #[test]
    fn a_full_mailbox_remembers_since_when() {
        let (handle, mut rx, _) = SessionHandle::new(1, Wire::Herald);
        assert_eq!(handle.offer(frame(), || 10), Offer::Queued);
        assert_eq!(handle.offer(frame(), || 20), Offer::Full { since_ms: 20 });
        assert_eq!(handle.offer(frame(), || 30), Offer::Full { since_ms: 20 });
        assert!(rx.try_recv().is_some());
        assert_eq!(handle.offer(frame(), || 40), Offer::Queued);
        assert_eq!(handle.offer(frame(), || 50), Offer::Full { since_ms: 50 });
        drop(rx);
        assert_eq!(handle.offer(frame(), || 60), Offer::Gone);
    }

    #[tokio::test]
    async fn the_first_close_wins_and_a_full_mailbox_closes_at_once() {
        let (handle, _rx, shared) = SessionHandle::new(1, Wire::Herald);
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(!handle.close_now(CloseRequest::new(1013, "later")));
        assert_eq!(shared.close_requested().await, CloseRequest::new(4000, "bye"));
    }

    #[tokio::test]
    async fn close_after_queued_goes_through_the_mailbox() {
        let (handle, mut rx, _) = SessionHandle::new(4, Wire::Herald);
        handle.offer(frame(), || 1);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(matches!(rx.recv().await, Outbound::Frame(_)));
        assert!(matches!(rx.recv().await, Outbound::Close(r) if r.code == 4000));
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_for_a_frame() {
        let (handle, mut rx, _) = SessionHandle::new(4, Wire::Herald);
        let receiving = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued);
        assert!(matches!(receiving.await.unwrap(), Outbound::Frame(_)));
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing() {
        let (handle, mut rx, _) = SessionHandle::new(4, Wire::Herald);
        // The wait is dropped after the frame was queued (its wake-up
        // consumed): the frame is still there for the next one.
        {
            let waiting = rx.recv();
            tokio::pin!(waiting);
            assert!(waiting.as_mut().now_or_never().is_none());
            handle.offer(frame(), || 1);
        }
        assert!(matches!(rx.recv().await, Outbound::Frame(_)));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn an_emptied_mailbox_gives_back_what_a_burst_took() {
        let (handle, mut rx, _) = SessionHandle::new(256, Wire::Herald);
        for n in 1..=100 {
            assert_eq!(handle.offer(frame(), || n), Offer::Queued);
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.shared.lock().queue.capacity(), 0);
        handle.offer(frame(), || 1);
        rx.try_recv();
        assert!(rx.shared.lock().queue.capacity() <= KEPT_CAPACITY);
    }
}
