//! The handle the rest of the edge holds to reach one session: a bounded
//! mailbox for frames, and a close request that bypasses the mailbox.
//!
//! The mailbox is a queue behind a mutex rather than a tokio mpsc channel:
//! a channel allocates a cache-padded header and a first block of 32 slots
//! up front, about 1.8 KiB per session, while most sessions are idle most
//! of the time. This queue holds its first frame in place and allocates
//! only for frames waiting behind it.
//!
//! A frame offered to a session whose task has nothing in hand is *corked*:
//! it waits in the mailbox without waking the session, and one of the
//! edge's [`flush`] tasks writes everything corked for the session in one
//! `send`, the frames gathered into one buffer (ADR 0035). A broadcast to
//! 10,000 idle sessions is 10,000 writes by the flushers, not 10,000 task
//! wake-ups; under load, the frames that arrive while a flusher works wait
//! for its next round and go out together. Only what the socket cannot
//! take at once is left for the session's task (ADR 0017).
//!
//! What a delivery touches is laid out together at the front of the
//! handle's shared part, the first queued frame included ([`queue`]): a
//! broadcast to many sessions is one cold cache line or two per receiver,
//! which is what it costs beyond the socket's own (ADR 0021), and a
//! fan-out asks for them a few receivers ahead
//! ([`SessionHandle::prefetch`], ADR 0034).

mod alarm;
pub(crate) mod flush;
mod queue;
mod socket;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use herald_proto::pusher::app::App;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use self::alarm::Alarm;
pub(crate) use self::alarm::Alarms;
use self::queue::Queue;
use self::socket::SessionIo;
use self::socket::Unfinished;
pub(crate) use self::websocket::{ReadError, Socket};

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

/// What an idle session wakes for.
#[derive(Debug)]
pub(crate) enum Woken {
    /// Something was queued for it.
    Queued(Outbound),
    /// Its alarm rang: its timer may be due.
    Alarm,
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

/// The `Arc`'s two counts, before [`Shared`] in its allocation.
#[cfg(target_arch = "x86_64")]
const ARC_COUNTS: usize = 2 * size_of::<usize>();

/// The front of [`Shared`]'s allocation, counts included, that a delivery
/// touches: [`SessionHandle::prefetch`] asks for it.
#[cfg(target_arch = "x86_64")]
const FRONT: usize = 104;

/// The part of a session other tasks may touch. Every session keeps one,
/// so it is kept small: what is rare (a close request, a frame written in
/// part) is boxed, and each wait is an [`AtomicWaker`] (the session's task
/// is its only waiter) rather than a `Notify` and its waiters' list.
///
/// Laid out as written (`repr(C)`), what a delivery touches first: behind
/// the `Arc`'s counts (a corked session's handle is cloned for the
/// flusher), the protocol, then the lock, the flags and the first queued
/// frame ([`State`]). A broadcast to 10,000 sessions finds them cold, and
/// this way they are the first 104 bytes of the allocation, where they
/// were spread over its 192 and a deque's buffer (ADR 0021). The whole is
/// 200 bytes, in an allocation of 216 with the counts: jemalloc's 224-byte
/// class, where 224 bytes of it took a 256-byte chunk (ADR 0028).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// The protocol the session speaks, for deliveries to encode for.
    wire: Wire,
    state: Mutex<State>,
    /// The connection's TCP stream, set once the upgrade is done: the
    /// session reads and writes it through [`SessionIo`], the flusher
    /// writes corked frames to it.
    socket: OnceLock<TcpStream>,
    /// Wakes the session's task waiting on its mailbox when something is
    /// queued for it.
    queued: AtomicWaker,
    /// Wakes the session's task when `close` is set.
    close_requested: AtomicWaker,
    /// The tick its timer is set for on the edge's [`Alarms`], which wake
    /// the task through `queued` (ADR 0025).
    alarm: Alarm,
}

/// What the lock guards, laid out as written (`repr(C)`): what every
/// delivery reads or writes (the flags, the bound, the clock, the first
/// entry of the queue) before what it rarely touches.
#[derive(Debug)]
#[repr(C)]
struct State {
    /// Frames the mailbox may hold. Bounded: a full mailbox means a slow
    /// consumer. (Here rather than beside the lock, where it would take a
    /// word of its own: it fits the bytes the flags leave.)
    capacity: u32,
    /// Set when the session stops reading its mailbox.
    gone: bool,
    /// The session has greeted its client and holds nothing it took from
    /// the mailbox: a delivery may be corked without overtaking anything.
    idle: bool,
    /// The frames queued are the flusher's to write: the session was not
    /// woken for them (it takes them all the same if it wakes first).
    corked: bool,
    /// The session's last write stopped inside a frame (the rest is still
    /// its WebSocket's to write): nothing else may be written before it.
    mid_frame: bool,
    /// A corked frame written only in part: the session writes its rest
    /// before anything else.
    unfinished: Option<Box<Unfinished>>,
    /// Milliseconds on the edge's delivery clock when the mailbox was first
    /// found full; 0 while it is not full. Lets deliveries tell a brief burst
    /// from a client that stopped reading.
    full_since: u64,
    queue: Queue,
    /// The first close asked for; later ones are ignored.
    close: Option<Box<CloseRequest>>,
}

impl State {
    /// Whether the flusher may write to the socket: nothing the session
    /// took or began would be overtaken or cut.
    fn socket_free(&self) -> bool {
        // (A frame left unfinished keeps its marker in the queue until the
        // session takes it, and the session is busy until it is written.)
        self.idle && self.between_frames()
    }

    /// Whether a frame written to the socket now would start on a frame
    /// boundary, after everything begun before it.
    fn between_frames(&self) -> bool {
        !self.gone && !self.mid_frame && self.unfinished.is_none()
    }

    /// Whether a delivery may be corked: the socket is free, and whatever
    /// is queued is corked too. (An idle session has its socket: it says
    /// it is idle only once it has greeted its client.)
    fn corkable(&self) -> bool {
        self.socket_free() && (self.corked || self.queue.is_empty())
    }

    /// Queues `outbound` within the bound.
    fn enqueue(&mut self, outbound: Outbound) -> Result<(), Refused> {
        if self.gone {
            return Err(Refused::Gone);
        }
        if self.queue.len() >= self.capacity as usize {
            return Err(Refused::Full(outbound));
        }
        self.queue.push_back(outbound);
        self.full_since = 0;
        Ok(())
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
    /// (A bound past `u32::MAX` frames is `u32::MAX`.)
    pub fn new(capacity: usize, wire: Wire) -> (SessionHandle, Mailbox) {
        let state = State {
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            gone: false,
            idle: false,
            corked: false,
            mid_frame: false,
            unfinished: None,
            full_since: 0,
            queue: Queue::default(),
            close: None,
        };
        let shared = Arc::new(Shared {
            wire,
            state: Mutex::new(state),
            socket: OnceLock::new(),
            queued: AtomicWaker::new(),
            close_requested: AtomicWaker::new(),
            alarm: Alarm::default(),
        });
        (SessionHandle { shared: shared.clone() }, Mailbox { shared })
    }

    /// Asks the CPU for what a delivery to this session touches, the
    /// front of the allocation of [`Shared`], without waiting for it: a
    /// fan-out asks a few receivers ahead of the one it delivers to, so
    /// that their cold lines arrive meanwhile (ADR 0034). A hint, which
    /// does nothing but on x86-64.
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let front = Arc::as_ptr(&self.shared).cast::<i8>().wrapping_sub(ARC_COUNTS);
            // Wherever the front starts in a line, these are in each of
            // the (at most three) lines it spans.
            for offset in [0, 64, FRONT - 1] {
                #[allow(unsafe_code, reason = "a prefetch has no safe wrapper in std")]
                // SAFETY: a prefetch is a hint; it never faults, whatever the address.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T0>(front.wrapping_add(offset));
                }
            }
        }
    }

    /// The protocol the session speaks.
    pub fn wire(&self) -> &Wire {
        &self.shared.wire
    }

    /// Corks a frame if the session is idle, or else queues it for the
    /// session, without ever waiting. `now_ms` reads the delivery clock
    /// (never 0), only when the mailbox is full.
    pub fn offer(&self, frame: Utf8Bytes, now_ms: impl FnOnce() -> u64) -> Offer {
        self.shared.deliver(frame, now_ms)
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
    /// A handle to this mailbox's session, for the rest of the edge.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle { shared: self.shared.clone() }
    }

    /// Resolves with the close request once there is one. For the
    /// session's task only: a second waiter at once would take the first
    /// one's wake-up. It keeps its own reference to the session's shared
    /// part, so the task may wait on it while it uses its mailbox.
    pub fn close_requested(&self) -> Wait<CloseRequested> {
        Wait(CloseRequested(self.shared.clone()))
    }

    /// The next thing queued, waiting for it. Cancel-safe: nothing is taken
    /// from the queue until it is returned.
    #[cfg(test)]
    pub fn recv(&mut self) -> Wait<&mut Mailbox> {
        Wait(self)
    }

    /// What the session waits for when idle: the next thing queued, or its
    /// alarm (looked at first, so that a stream of frames does not hold
    /// back a ping or a pong deadline). Cancel-safe: nothing is taken from
    /// the queue until it is returned. Polled in place, not a `Wait`: the
    /// session's loop polls its mailbox, its actions and its socket in one
    /// future of its own and so keeps no `Wait` in its task (ADR 0027).
    /// The waker it leaves stays until [`Mailbox::stop_waiting`], which
    /// that future calls where a `Wait` would be dropped.
    pub fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Woken> {
        poll_signal(&mut Idle(self), cx)
    }

    /// Takes back the waker [`Mailbox::poll_wait`] left, as a `Wait` does
    /// when dropped: what is queued later does not wake a session busy
    /// with something else (it finds it when it waits again).
    pub fn stop_waiting(&self) {
        self.shared.queued.take();
    }

    /// Sets the session's alarm for `at` on the edge's `alarms`, unless it
    /// is set earlier already (it then rings early). Cheap when it is: a
    /// busy session calls it after every step.
    pub fn set_alarm(&self, alarms: &Alarms, at: Instant) {
        alarms.set(&self.shared, at);
    }

    /// The next thing queued, if there is one. The session holds it until
    /// it says it has [`written`](Mailbox::written) what it took.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut state = self.shared.lock();
        let outbound = state.queue.pop_front();
        if outbound.is_some() {
            state.idle = false;
        }
        state.queue.give_back();
        outbound
    }

    /// Writes the session's first frame to the socket the way the flusher
    /// writes corked ones, ahead of anything queued meanwhile (and that
    /// too, as far as the socket takes it now), in one `send`. What the
    /// socket does not take is left queued, for the session to write
    /// first. The frames written.
    pub fn greet(&mut self, greeting: Utf8Bytes) -> usize {
        let mut state = self.shared.lock();
        state.queue.push_front(Outbound::Frame(greeting));
        match self.shared.socket.get() {
            Some(tcp) if state.between_frames() => socket::write_queued(tcp, &mut state),
            _ => 0,
        }
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
        state.queue = Queue::default();
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

    /// Corks `frame` when the session is idle; queues it for the session
    /// (and wakes it) otherwise.
    fn deliver(&self, frame: Utf8Bytes, now_ms: impl FnOnce() -> u64) -> Offer {
        let mut state = self.lock();
        let cork = state.corkable();
        // (A corkable mailbox is not gone, and empty unless already corked:
        // marking it before queueing never marks a frame that is refused.)
        let first = cork && !std::mem::replace(&mut state.corked, true);
        match state.enqueue(Outbound::Frame(frame)) {
            Ok(()) => {}
            Err(Refused::Full(_)) => {
                if state.full_since == 0 {
                    state.full_since = now_ms();
                }
                return Offer::Full { since_ms: state.full_since };
            }
            Err(Refused::Gone) => return Offer::Gone,
        }
        drop(state);
        if cork {
            return if first { Offer::Corked } else { Offer::Queued };
        }
        self.queued.wake();
        Offer::Queued
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
            self.queued.wake();
        }
        written
    }

    /// Queues `outbound` for the session and wakes it.
    fn push(&self, outbound: Outbound) -> Result<(), Refused> {
        self.lock().enqueue(outbound)?;
        self.queued.wake();
        Ok(())
    }

    fn request_close(&self, request: CloseRequest) -> bool {
        let first = {
            let mut state = self.lock();
            let first = state.close.is_none();
            if first {
                state.close = Some(Box::new(request));
            }
            first
        };
        if first {
            self.close_requested.wake();
        }
        first
    }
}

/// Something the session's task waits for that other tasks make ready,
/// waking it through an [`AtomicWaker`]: a session has one waiter per wait,
/// its own task, so a waker in its [`Shared`] part does what a `Notify`
/// did, without a waiters' list there or a `Notified` in its task.
pub(crate) trait Signal {
    type Output;
    /// Where the task waiting leaves its waker.
    fn waker(&self) -> &AtomicWaker;
    /// What is ready now, taken.
    fn take_ready(&mut self) -> Option<Self::Output>;
}

/// Waits for a [`Signal`]. A wake-up is never lost: the waker is left
/// before the last look, so whatever is made ready after that look wakes
/// the task. Cancel-safe as far as its signal's `take_ready` is (nothing is
/// taken but what is returned). The waker is taken back when the wait ends
/// or is dropped, so what is made ready later does not wake a task busy
/// with something else.
#[derive(Debug)]
pub(crate) struct Wait<S: Signal>(S);

impl<S: Signal + Unpin> Future for Wait<S> {
    type Output = S::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<S::Output> {
        poll_signal(&mut self.get_mut().0, cx)
    }
}

/// Polls a [`Signal`] as [`Wait`] does, leaving the waker before the last
/// look; taking it back is the caller's.
fn poll_signal<S: Signal>(signal: &mut S, cx: &mut Context<'_>) -> Poll<S::Output> {
    if let Some(ready) = signal.take_ready() {
        return Poll::Ready(ready);
    }
    signal.waker().register(cx.waker());
    match signal.take_ready() {
        Some(ready) => Poll::Ready(ready),
        None => Poll::Pending,
    }
}

impl<S: Signal> Drop for Wait<S> {
    fn drop(&mut self) {
        self.0.waker().take();
    }
}

#[cfg(test)]
impl Signal for &mut Mailbox {
    type Output = Outbound;

    fn waker(&self) -> &AtomicWaker {
        &self.shared.queued
    }

    fn take_ready(&mut self) -> Option<Outbound> {
        self.try_recv()
    }
}

/// An idle session's wait, as a [`Signal`]: its mailbox and its alarm.
#[derive(Debug)]
struct Idle<'a>(&'a mut Mailbox);

impl Signal for Idle<'_> {
    type Output = Woken;

    fn waker(&self) -> &AtomicWaker {
        &self.0.shared.queued
    }

    fn take_ready(&mut self) -> Option<Woken> {
        if self.0.shared.alarm.rung() {
            return Some(Woken::Alarm);
        }
        self.0.try_recv().map(Woken::Queued)
    }
}

/// A session's close request, as a [`Signal`].
#[derive(Debug)]
pub(crate) struct CloseRequested(Arc<Shared>);

impl Signal for CloseRequested {
    type Output = CloseRequest;

    fn waker(&self) -> &AtomicWaker {
        &self.0.close_requested
    }

    fn take_ready(&mut self) -> Option<CloseRequest> {
        self.0.lock().close.as_deref().cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use futures_util::FutureExt;

    use super::*;

    fn frame() -> Utf8Bytes {
        Utf8Bytes::from_static("{}")
    }

    /// Every session keeps its shared part in an `Arc`: its two counts and
    /// the part. jemalloc's size classes go 192, 224, 256 here, so an
    /// allocation of up to 224 bytes costs 224 where one byte more costs 256
    /// per connection (ADR 0028; BENCHMARKS, "The session's own memory").
    /// (The optimized build lays the part out the same way: it is
    /// `repr(C)`.)
    #[test]
    fn the_shared_part_fits_in_224_bytes() {
        let counts = std::alloc::Layout::new::<[usize; 2]>();
        let (inner, _) = counts.extend(std::alloc::Layout::new::<Shared>()).unwrap();
        let size = inner.pad_to_align().size();
        assert!(size <= 224, "the shared part's Arc allocation is {size} bytes: past jemalloc's 224 class");
    }

    /// A fan-out prefetches the allocation's front ([`FRONT`]), so what a
    /// delivery reads and writes (the protocol; the lock's state up to the
    /// queue's first entry) must lie in it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn what_a_delivery_touches_lies_in_the_front_a_fan_out_prefetches() {
        let (handle, _mailbox) = SessionHandle::new(1, Wire::Herald);
        let allocation = Arc::as_ptr(&handle.shared).addr() - ARC_COUNTS;
        let state = handle.shared.lock();
        let end_of = |field: usize, size: usize| field + size - allocation;
        let queued = end_of(std::ptr::from_ref(&state.queue).addr(), size_of::<Option<Outbound>>());
        let wire = end_of(std::ptr::from_ref(&handle.shared.wire).addr(), size_of::<Wire>());
        assert!(queued.max(wire) <= FRONT, "a delivery touches {queued} bytes (its protocol {wire})");
    }

    #[test]
    fn a_full_mailbox_remembers_since_when() {
        let (handle, mut rx) = SessionHandle::new(1, Wire::Herald);
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
        let (handle, rx) = SessionHandle::new(1, Wire::Herald);
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(!handle.close_now(CloseRequest::new(1013, "later")));
        assert_eq!(rx.close_requested().await, CloseRequest::new(4000, "bye"));
    }

    #[tokio::test]
    async fn close_after_queued_goes_through_the_mailbox() {
        let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
        handle.offer(frame(), || 1);
        handle.close_after_queued(CloseRequest::new(4000, "bye"));
        assert!(matches!(rx.recv().await, Outbound::Frame(_)));
        assert!(matches!(rx.recv().await, Outbound::Close(r) if r.code == 4000));
    }

    #[tokio::test]
    async fn a_waiting_session_wakes_for_a_frame() {
        let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
        let receiving = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued);
        assert!(matches!(receiving.await.unwrap(), Outbound::Frame(_)));
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing() {
        let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
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

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicU64);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Wakes {
        /// A waker that counts on a new `Wakes`, and the count.
        fn counted() -> (std::task::Waker, Arc<Wakes>) {
            let wakes = Arc::new(Wakes::default());
            (std::task::Waker::from(wakes.clone()), wakes)
        }

        fn count(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    /// Made ready, with its wake-up, by the first look that finds it not
    /// ready: as when another task pushes between that look and the waker
    /// being left.
    struct ReadyAfterFirstLook {
        waker: AtomicWaker,
        looks: u32,
    }

    impl Signal for ReadyAfterFirstLook {
        type Output = u32;

        fn waker(&self) -> &AtomicWaker {
            &self.waker
        }

        fn take_ready(&mut self) -> Option<u32> {
            self.looks += 1;
            if self.looks == 1 {
                // Nobody is registered yet: this wake-up wakes no one.
                self.waker.wake();
                return None;
            }
            Some(self.looks)
        }
    }

    #[test]
    fn what_is_made_ready_between_the_look_and_the_wait_is_not_missed() {
        let signal = ReadyAfterFirstLook { waker: AtomicWaker::new(), looks: 0 };
        assert_eq!(Wait(signal).now_or_never(), Some(2), "the look after leaving the waker finds it");
    }

    #[test]
    fn a_waiting_mailbox_is_woken_once_and_a_dropped_wait_not_at_all() {
        let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
        let (waker, wakes) = Wakes::counted();
        let mut cx = Context::from_waker(&waker);
        {
            let mut waiting = rx.recv();
            assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
            handle.offer(frame(), || 1);
            handle.offer(frame(), || 1);
            assert_eq!(wakes.count(), 1);
            assert!(matches!(Pin::new(&mut waiting).poll(&mut cx), Poll::Ready(Outbound::Frame(_))));
        }
        {
            let mut waiting = rx.recv();
            assert!(matches!(Pin::new(&mut waiting).poll(&mut cx), Poll::Ready(Outbound::Frame(_))));
            assert!(Pin::new(&mut waiting).poll(&mut cx).is_pending());
        }
        // The session went on to something else: a frame queued now waits
        // for its next look without waking it.
        handle.offer(frame(), || 1);
        assert_eq!(wakes.count(), 1);
        assert!(matches!(rx.try_recv(), Some(Outbound::Frame(_))));
    }

    /// The session loop's wait polls in place and takes its waker back
    /// itself, where a dropped `Wait` does.
    #[tokio::test(start_paused = true)]
    async fn a_wait_polled_in_place_wakes_until_it_stops_waiting() {
        let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
        let (waker, wakes) = Wakes::counted();
        let mut cx = Context::from_waker(&waker);
        // An alarm never set has rung: set it, far off.
        let alarms = Alarms::start();
        rx.set_alarm(&alarms, Instant::now() + std::time::Duration::from_secs(60));
        assert!(rx.poll_wait(&mut cx).is_pending());
        handle.offer(frame(), || 1);
        assert_eq!(wakes.count(), 1);
        assert!(matches!(rx.poll_wait(&mut cx), Poll::Ready(Woken::Queued(Outbound::Frame(_)))));
        assert!(rx.poll_wait(&mut cx).is_pending());
        rx.stop_waiting();
        handle.offer(frame(), || 1);
        assert_eq!(wakes.count(), 1, "a session that stopped waiting is not woken");
        assert!(matches!(rx.poll_wait(&mut cx), Poll::Ready(Woken::Queued(Outbound::Frame(_)))));
    }

    #[test]
    fn a_close_request_wakes_a_session_busy_elsewhere() {
        let (handle, rx) = SessionHandle::new(4, Wire::Herald);
        let (waker, wakes) = Wakes::counted();
        let mut cx = Context::from_waker(&waker);
        let mut closing = rx.close_requested();
        assert!(Pin::new(&mut closing).poll(&mut cx).is_pending());
        // Frames queued for the session do not wake its close wait.
        handle.offer(frame(), || 1);
        assert_eq!(wakes.count(), 0);
        assert!(handle.close_now(CloseRequest::new(1013, "now")));
        assert_eq!(wakes.count(), 1);
        assert_eq!(Pin::new(&mut closing).poll(&mut cx), Poll::Ready(CloseRequest::new(1013, "now")));
    }

    /// Many rounds of a session waiting on one thread while frames and a
    /// close request come from another, at once: a lost wake-up would
    /// leave a round waiting for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wake_ups_racing_the_wait_are_never_lost() {
        const ROUNDS: u64 = 2_000;
        for round in 0..ROUNDS {
            let (handle, mut rx) = SessionHandle::new(4, Wire::Herald);
            let session = tokio::spawn(async move {
                let frame = rx.recv().await;
                let close = rx.close_requested().await;
                (frame, close)
            });
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            }
            handle.offer(frame(), || 1);
            handle.close_now(CloseRequest::new(4000, "bye"));
            let (frame, close) = tokio::time::timeout(std::time::Duration::from_secs(30), session)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a wake-up was lost"))
                .unwrap();
            assert!(matches!(frame, Outbound::Frame(_)));
            assert_eq!(close.code, 4000);
        }
    }
}
