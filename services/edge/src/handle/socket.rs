//! A session's TCP stream, shared by the session's task and the flusher.
//!
//! A server's frames are not masked, so a delivery on the wire is a header
//! of 2 to 10 bytes and the payload every receiver shares: the flusher
//! gathers the headers and payloads of everything corked into one buffer
//! and writes it with one `send`, without waking the session. Copying a
//! frame into the buffer costs less than the kernel spent copying it as
//! two slices, one `rep movsb` each (ADR 0035); a frame too large for the
//! buffer goes out from its payload, uncopied.
//!
//! Frames never interleave. Every write, the session's through
//! [`SessionIo`] and the flusher's, happens under the mailbox's lock; the
//! flusher writes only when the session's last write ended on a frame
//! boundary (the session hands whole frames to every write, so a write
//! taken whole ends on one); and a frame the socket took only in part is
//! finished before anything else is written.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::queue::Queue;
use super::{Mailbox, Outbound, Shared, State};
use crate::frames::{self, opcode};
use crate::tcp::{self, ClientSocket};

/// Most bytes of frames gathered for one `send`: uWebSockets.js corks a
/// socket's writes into 16 KiB too.
const GATHER_BYTES: usize = 16 * 1024;

thread_local! {
    /// Where a `send` gathers its frames, kept from one to the next: one
    /// per thread, as every runtime thread writes and no write awaits.
    static GATHERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A corked frame the socket took only in part.
#[derive(Debug)]
pub(super) struct Unfinished {
    frame: Utf8Bytes,
    /// Bytes of the frame, header included, already on the socket.
    written: usize,
}

/// Writes the frames at the front of the queue, as many as the socket
/// takes without waiting, taking them out of it; a frame taken in part
/// becomes the state's unfinished frame, its marker first in the queue.
/// The frames written whole. Stops at anything but a frame (a close is the
/// session's), and when the socket is full or failed (the session finds
/// out when it takes over).
pub(super) fn write_queued(tcp: &TcpStream, state: &mut State) -> usize {
    let mut written = 0;
    loop {
        let Ok(Some((mut taken, all))) = send(tcp, &state.queue) else { return written };
        let whole = taken == all;
        while taken > 0 {
            let Some(Outbound::Frame(frame)) = state.queue.pop_front() else {
                unreachable!("only frames were written")
            };
            let size = on_wire(frame.len());
            if taken < size {
                state.unfinished = Some(Box::new(Unfinished { frame, written: taken }));
                state.queue.push_front(Outbound::Unfinished);
                return written;
            }
            taken -= size;
            written += 1;
        }
        if !whole {
            return written;
        }
    }
}

/// Writes the frames at the front of `queue`, up to [`GATHER_BYTES`] of
/// them and up to the first entry that is not a frame, in one `send`, as
/// much as the socket takes now: the bytes it took, and the bytes there
/// were; `None` when the queue does not begin with a frame. A first frame
/// larger than the buffer is written alone, from its payload.
fn send(tcp: &TcpStream, queue: &Queue) -> io::Result<Option<(usize, usize)>> {
    let mut frames = queue.iter().map_while(|outbound| match outbound {
        Outbound::Frame(frame) => Some(frame.as_bytes()),
        _ => None,
    });
    let Some(first) = frames.next() else { return Ok(None) };
    let (header, len) = header(first.len());
    if len + first.len() > GATHER_BYTES {
        let taken = tcp::send_vectored_direct(tcp, &[IoSlice::new(&header[..len]), IoSlice::new(first)])?;
        return Ok(Some((taken, len + first.len())));
    }
    GATHERED.with_borrow_mut(|gathered| {
        gathered.clear();
        gathered.reserve(GATHER_BYTES);
        // The first frame fits (checked above): the buffer is never empty.
        for frame in std::iter::once(first).chain(frames) {
            let (header, len) = self::header(frame.len());
            if gathered.len() + len + frame.len() > GATHER_BYTES {
                break;
            }
            gathered.extend_from_slice(&header[..len]);
            gathered.extend_from_slice(frame);
        }
        Ok(Some((tcp::send_direct(tcp, gathered)?, gathered.len())))
    })
}

impl Unfinished {
    fn is_done(&self) -> bool {
        self.written == on_wire(self.frame.len())
    }

    /// Writes as much of the rest as the socket takes without waiting.
    fn write_some(&mut self, tcp: &TcpStream) -> io::Result<()> {
        let payload = self.frame.as_bytes();
        let (header, header_len) = header(payload.len());
        let taken = match header.get(self.written..header_len) {
            Some(header) if !header.is_empty() => {
                tcp::send_vectored(tcp, &[IoSlice::new(header), IoSlice::new(payload)])?
            }
            _ => tcp.try_write(&payload[self.written - header_len..])?,
        };
        if taken == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.written += taken;
        Ok(())
    }
}

/// Bytes a text frame of `len` payload bytes takes on the wire.
fn on_wire(len: usize) -> usize {
    header(len).1 + len
}

/// The header of a delivery: a text frame of `len` bytes.
fn header(len: usize) -> ([u8; frames::MAX_SERVER_HEADER], usize) {
    frames::header(opcode::TEXT, len)
}

/// The session's side of its connection, which its WebSocket writes to
/// under the mailbox's lock, as the flusher does.
#[derive(Debug)]
pub(crate) struct SessionIo {
    shared: Arc<Shared>,
}

impl SessionIo {
    /// Takes the TCP stream out of a finished upgrade and shares it with
    /// the deliveries to `mailbox`'s session; with it, what the HTTP server
    /// read after the upgrade request (usually nothing). The upgrade comes
    /// back if it is not over TCP (the edge serves nothing else).
    pub(crate) fn attach(mailbox: &Mailbox, upgraded: Upgraded) -> Result<(SessionIo, Bytes), Upgraded> {
        let parts = upgraded.downcast::<TokioIo<ClientSocket>>()?;
        let shared = mailbox.shared.clone();
        match shared.socket.set(parts.io.into_inner().0) {
            Ok(()) => Ok((SessionIo::new(shared), parts.read_buf)),
            Err(_) => unreachable!("a session's handle is made for one upgrade"),
        }
    }

    /// The side of the connection `shared` holds (set once its upgrade is done).
    pub(super) fn new(shared: Arc<Shared>) -> SessionIo {
        SessionIo { shared }
    }

    pub(crate) fn tcp(&self) -> io::Result<&TcpStream> {
        self.shared.socket.get().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Writes what the socket takes of `slices` now, in one `send`, once
    /// any delivery the flusher left unfinished is out: the bytes taken.
    pub(crate) fn poll_write_vectored(&self, cx: &mut Context<'_>, slices: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let tcp = self.tcp()?;
        let mut state = self.shared.lock();
        ready!(poll_finish(&mut state, tcp, cx))?;
        let written = ready!(tcp::poll_writing(tcp, cx, || tcp::send_vectored(tcp, slices)))?;
        state.mid_frame = written < slices.iter().map(|slice| slice.len()).sum();
        Poll::Ready(Ok(written))
    }

    /// Finishes a delivery left unfinished.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let tcp = self.tcp()?;
        poll_finish(&mut self.shared.lock(), tcp, cx)
    }
}

/// Writes the rest of a delivery the socket took only in part, waiting for
/// the socket as the session's own writes do.
fn poll_finish(state: &mut State, tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    while let Some(unfinished) = &mut state.unfinished {
        ready!(tcp.poll_write_ready(cx))?;
        match unfinished.write_some(tcp) {
            Ok(()) if unfinished.is_done() => state.unfinished = None,
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Waker;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use prometheus_client::metrics::counter::Counter;

    use super::super::flush::Flusher;
    use super::super::websocket::Socket;
    use super::super::{CloseRequest, Offer, Outbound, SessionHandle, Wire};
    use super::*;

    /// A session's handle, mailbox and side of a connection, and the
    /// client's side.
    async fn connected(capacity: usize) -> (SessionHandle, Mailbox, SessionIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (edge, _) = listener.accept().await.unwrap();
        // As after the upgrade's `101`: the reactor has seen it writable.
        edge.writable().await.unwrap();
        let (handle, mailbox) = SessionHandle::new(capacity, Wire::Herald);
        handle.shared.socket.set(edge).unwrap();
        let io = SessionIo::new(handle.shared.clone());
        (handle, mailbox, io, client)
    }

    #[tokio::test]
    async fn deliveries_to_an_idle_session_are_corked_and_flushed_together() {
        let (handle, mut mailbox, _io, mut client) = connected(3).await;
        let frame = || Utf8Bytes::from_static("{}");
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued, "not greeted yet");
        assert!(mailbox.try_recv().is_some());
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued, "the session holds a frame");
        mailbox.written();
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued, "one is still queued");
        while mailbox.try_recv().is_some() {}
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from("x".repeat(300)), || 1), Offer::Corked);
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued, "corked behind the first");
        assert_eq!(handle.offer(frame(), || 1), Offer::Queued);
        assert_eq!(handle.offer(frame(), || 2), Offer::Full { since_ms: 2 }, "corked frames count");
        assert_eq!(handle.shared.flush(), 3);
        assert_eq!(handle.shared.flush(), 0, "flushed once");
        let mut wire = vec![0; 4 + 300 + 2 * 4];
        client.read_exact(&mut wire).await.unwrap();
        assert_eq!(&wire[..4], &[0x81, 126, 1, 44]);
        assert!(wire[4..304].iter().all(|&byte| byte == b'x'));
        assert_eq!(&wire[304..], b"\x81\x02{}\x81\x02{}");
        assert!(mailbox.try_recv().is_none(), "nothing left for the session");
        mailbox.stop();
        assert_eq!(handle.offer(frame(), || 1), Offer::Gone);
    }

    /// The greeting goes to the socket before the deliveries queued while
    /// the session started, and they follow it in the same write; the
    /// WebSocket is left without a write buffer to keep.
    #[tokio::test]
    async fn the_greeting_is_written_first_without_the_websocket() {
        let (handle, mut mailbox, _io, mut client) = connected(4).await;
        assert_eq!(handle.offer(Utf8Bytes::from_static("{}"), || 1), Offer::Queued);
        assert_eq!(mailbox.greet(Utf8Bytes::from_static("hello")), 2);
        let mut wire = [0; 11];
        client.read_exact(&mut wire).await.unwrap();
        assert_eq!(&wire, b"\x81\x05hello\x81\x02{}");
        assert!(mailbox.try_recv().is_none(), "nothing left for the session");
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from_static("{}"), || 1), Offer::Corked);
    }

    /// More frames than one send gathers ([`GATHER_BYTES`]), one of them
    /// larger than that alone, are all written, in order, each with the
    /// header its length takes, and the writing stops at the first entry
    /// that is not a frame: a close is the session's.
    #[tokio::test]
    async fn queued_frames_are_written_in_order_up_to_a_close() {
        let (handle, _mailbox, _io, mut client) = connected(300).await;
        let size = |i: usize| match i {
            100 => GATHER_BYTES + 1,
            _ if i.is_multiple_of(7) => 300,
            _ => i,
        };
        let texts: Vec<String> = (0..240).map(|i| "x".repeat(size(i))).collect();
        assert!(texts.iter().map(String::len).sum::<usize>() > 3 * GATHER_BYTES);
        let written = {
            let mut state = handle.shared.lock();
            for text in &texts {
                state.queue.push_back(Outbound::Frame(Utf8Bytes::from(text.clone())));
            }
            state.queue.push_back(Outbound::Close(CloseRequest::new(4000, "bye")));
            state.queue.push_back(Outbound::Frame(Utf8Bytes::from_static("after")));
            write_queued(handle.shared.socket.get().unwrap(), &mut state)
        };
        assert_eq!(written, texts.len());
        let expected: Vec<u8> = texts
            .iter()
            .flat_map(|text| {
                let (header, len) = header(text.len());
                [&header[..len], text.as_bytes()].concat()
            })
            .collect();
        let mut wire = vec![0; expected.len()];
        client.read_exact(&mut wire).await.unwrap();
        assert_eq!(wire, expected);
        let state = handle.shared.lock();
        assert!(matches!(state.queue.iter().next(), Some(Outbound::Close(_))), "the close is left first");
        assert_eq!(state.queue.len(), 2);
    }

    /// A delivery that arrives while the session holds deliveries back (it
    /// is applying a reply's effects) goes to the session, never to the
    /// flusher, and frames corked before are left to the session too: the
    /// session writes them after what it writes meanwhile.
    #[tokio::test]
    async fn deliveries_wait_for_the_session_while_it_holds_them_back() {
        let (handle, mut mailbox, _io, _client) = connected(4).await;
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from_static("a"), || 1), Offer::Corked);
        mailbox.hold();
        assert_eq!(handle.offer(Utf8Bytes::from_static("b"), || 1), Offer::Queued);
        assert_eq!(handle.shared.flush(), 0, "the flusher leaves them to the session");
        assert!(matches!(mailbox.try_recv(), Some(Outbound::Frame(frame)) if frame.as_str() == "a"));
        assert!(matches!(mailbox.try_recv(), Some(Outbound::Frame(frame)) if frame.as_str() == "b"));
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from_static("c"), || 1), Offer::Corked, "corked again once written");
    }

    #[tokio::test]
    async fn corked_frames_the_session_took_first_are_not_written_twice() {
        let (handle, mut mailbox, _io, mut client) = connected(4).await;
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from_static("a"), || 1), Offer::Corked);
        assert!(matches!(mailbox.try_recv(), Some(Outbound::Frame(frame)) if frame.as_str() == "a"));
        assert_eq!(handle.offer(Utf8Bytes::from_static("b"), || 1), Offer::Queued, "the session is busy");
        assert_eq!(handle.shared.flush(), 0);
        assert!(matches!(mailbox.try_recv(), Some(Outbound::Frame(frame)) if frame.as_str() == "b"));
        mailbox.written();
        assert_eq!(handle.offer(Utf8Bytes::from_static("c"), || 1), Offer::Corked, "idle again");
        assert_eq!(handle.shared.flush(), 1);
        let mut wire = [0; 3];
        client.read_exact(&mut wire).await.unwrap();
        assert_eq!(&wire, b"\x81\x01c");
    }

    /// Deliveries far larger than the socket's buffers, offered while the
    /// client is not reading, and the session's own frames written between
    /// them (answers to the client's): every frame arrives whole and in
    /// order (tungstenite would refuse a stream with frames interleaved).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deliveries_and_the_sessions_own_writes_never_interleave() {
        const FRAMES: usize = 120;
        const ECHOES: usize = 20;
        let (handle, mut mailbox, io, client) = connected(FRAMES).await;
        let session = tokio::spawn(async move {
            let mut socket = Socket::new(io, 1 << 20);
            mailbox.written();
            loop {
                tokio::select! {
                    outbound = mailbox.recv() => {
                        let mut next = Some(outbound);
                        while let Some(outbound) = next.take() {
                            if let Outbound::Frame(frame) = outbound {
                                socket.feed(Message::Text(frame)).await.unwrap();
                            }
                            next = mailbox.try_recv();
                        }
                        socket.flush().await.unwrap();
                        mailbox.written();
                    }
                    incoming = socket.next() => match incoming {
                        Some(Ok(Message::Text(text))) => socket.send(Message::Text(text)).await.unwrap(),
                        _ => return,
                    },
                }
            }
        });
        let (mut requests, mut client) = WebSocketStream::from_raw_socket(client, Role::Client, None).await.split();
        while !handle.shared.lock().idle {
            tokio::task::yield_now().await;
        }
        // Not read until all are offered: the flusher writes the first
        // deliveries whole, then one in part, then the session takes over.
        let flushed = Counter::default();
        let flusher = Flusher::start(1, flushed.clone(), Counter::default());
        let mut flusher_wrote = false;
        for n in 0..FRAMES {
            match handle.offer(delivery(n), || 1) {
                Offer::Corked => flusher.add(handle.clone()),
                Offer::Queued => {}
                other => panic!("frame {n}: {other:?}"),
            }
            if n == 0 {
                // The flusher's first round comes before anything the
                // client sends, which would wake the session to take the
                // frame itself.
                let first_round = async {
                    while handle.shared.lock().corked {
                        tokio::task::yield_now().await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(10), first_round).await.expect("the flusher's first round");
                // Taken whole or in part by the socket (only the session is
                // left to finish it): the frame is no longer queued whole.
                flusher_wrote = !matches!(handle.shared.lock().queue.iter().next(), Some(Outbound::Frame(_)));
            }
            if n % (FRAMES / ECHOES) == 0 {
                requests.send(Message::text(format!("e{:04}", n / (FRAMES / ECHOES)))).await.unwrap();
                tokio::task::yield_now().await;
            }
        }
        let (mut deliveries, mut echoes) = (0, 0);
        while deliveries < FRAMES || echoes < ECHOES {
            let text = next_text(&mut client).await;
            if text.starts_with('d') {
                assert_delivery(&text, deliveries);
                deliveries += 1;
            } else {
                assert_eq!(text.as_str(), format!("e{echoes:04}"), "in order");
                echoes += 1;
            }
        }
        let flushed = flushed.get() as usize;
        assert!(flusher_wrote && flushed < FRAMES, "both ways taken: {flushed} flushed whole of {FRAMES}");
        // The session ends when the client is gone.
        drop((requests, client));
        session.await.unwrap();
    }

    /// A delivery the socket took only in part is finished before anything
    /// else is written: the next delivery waits in the mailbox even once
    /// the client has read enough for the socket to take it.
    #[tokio::test]
    async fn a_delivery_taken_in_part_is_finished_first() {
        let (handle, mut mailbox, io, client) = connected(64).await;
        mailbox.written();
        let mut offered = 0;
        while handle.shared.lock().unfinished.is_none() {
            assert_eq!(handle.offer(delivery(offered), || 1), Offer::Corked);
            offered += 1;
            handle.shared.flush();
        }
        let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        assert_delivery(&next_text(&mut client).await, 0);
        assert_eq!(handle.offer(delivery(offered), || 1), Offer::Queued);
        offered += 1;
        // The session writes a frame of its own, then what is queued.
        let session = tokio::spawn(async move {
            let mut socket = Socket::new(io, 1 << 20);
            socket.send(Message::text("own")).await.unwrap();
            while let Some(outbound) = mailbox.try_recv() {
                if let Outbound::Frame(frame) = outbound {
                    socket.feed(Message::Text(frame)).await.unwrap();
                }
            }
            socket.flush().await.unwrap();
        });
        let mut texts = Vec::new();
        for _ in 1..=offered {
            texts.push(next_text(&mut client).await);
        }
        session.await.unwrap();
        let own = texts.iter().position(|text| text.as_str() == "own").expect("the session's own frame");
        texts.remove(own);
        for (n, text) in texts.iter().enumerate() {
            assert_delivery(text, n + 1);
        }
    }

    /// A delivery waits while the session's own frame is half written, even
    /// when the socket could take it.
    #[tokio::test]
    async fn a_delivery_waits_while_the_sessions_own_frame_is_half_written() {
        const OWN: usize = 32 << 20;
        let (handle, mut mailbox, io, mut client) = connected(4).await;
        mailbox.written();
        let mut socket = Socket::new(io, 1 << 20);
        // Polled by hand: the session's write is not resumed before the
        // delivery is offered.
        let mut own = socket.send(Message::text("o".repeat(OWN)));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut own).poll(&mut cx).is_pending());
        assert!(handle.shared.lock().mid_frame);
        // The client reads all the socket holds, so the socket has room.
        let mut wire = vec![0; 10 + OWN];
        let mut read = 0;
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), client.read(&mut wire[read..])).await {
            read += n;
        }
        let writable = handle.shared.socket.get().unwrap().writable();
        tokio::time::timeout(Duration::from_secs(10), writable).await.unwrap().unwrap();
        assert_eq!(handle.offer(Utf8Bytes::from_static("{}"), || 1), Offer::Queued);
        let (sent, rest) = tokio::join!(own, client.read_exact(&mut wire[read..]));
        sent.unwrap();
        rest.unwrap();
        assert_eq!(&wire[..2], &[0x81, 127]);
        assert!(wire[10..].iter().all(|&byte| byte == b'o'));
    }

    /// Delivery `n`: far larger than a socket's buffer takes at once.
    fn delivery(n: usize) -> Utf8Bytes {
        Utf8Bytes::from(format!("d{n:04}{}", "d".repeat(100_000)))
    }

    fn assert_delivery(text: &str, n: usize) {
        assert_eq!(&text[..5], format!("d{n:04}"), "in order");
        assert_eq!(text.len(), 100_005, "whole");
    }

    async fn next_text<S>(client: &mut S) -> Utf8Bytes
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        match client.next().await {
            Some(Ok(Message::Text(text))) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}
