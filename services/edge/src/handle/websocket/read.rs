//! Reading a client's frames through a buffer the runtime thread shares
//! (ADR 0018, ADR 0029).
//!
//! A session keeps no read buffer: it reads its socket into a buffer every
//! session on the thread shares and decodes the frame there. Only what one
//! read leaves over (the start of a frame whose end has not come, frames
//! after the message handed on, a fragmented message) is kept, in a box,
//! until it is decoded: an idle session keeps nothing.

use std::cell::RefCell;
use std::io;
use std::task::{Context, Poll, ready};

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::frames::{self, Decoded, Fragments, FrameError};
use crate::tcp;

/// Bytes read from a socket at once.
const SHARED_READ_BYTES: usize = 16 * 1024;

thread_local! {
    /// Where sessions on this thread read their sockets into.
    static SHARED_READ: RefCell<Box<[u8]>> = RefCell::new(vec![0; SHARED_READ_BYTES].into_boxed_slice());
}

/// What one read of the client's frames found.
#[derive(Debug)]
pub(super) enum Read {
    Message(Message),
    /// A message longer than the limit, refused from its frame's header;
    /// the frame's payload is read past as it comes.
    TooLarge {
        size: u64,
    },
    /// Bytes that are not WebSocket frames.
    Failed(FrameError),
    /// The connection ended.
    Ended,
}

/// What a session's reads keep between two reads, and only while there is
/// any: an idle session keeps none.
#[derive(Debug, Default)]
pub(super) struct Kept {
    /// Bytes read and not yet decoded, from `taken` on: the start of a
    /// frame, or frames after the message last handed on.
    bytes: Vec<u8>,
    taken: usize,
    /// A message whose final fragment has not come.
    fragments: Option<Box<Fragments>>,
    /// Bytes of a refused frame still to come, read past rather than kept.
    skip: u64,
}

impl Kept {
    /// What a connection read before its session began (what the client
    /// sent right after its upgrade request), if anything.
    pub(super) fn of(bytes: &[u8]) -> Option<Box<Kept>> {
        (!bytes.is_empty()).then(|| Box::new(Kept { bytes: bytes.to_vec(), ..Kept::default() }))
    }

    fn is_empty(&self) -> bool {
        self.taken == self.bytes.len() && self.fragments.is_none() && self.skip == 0
    }

    /// Reads past what is left of a refused frame among the bytes kept.
    fn skip_kept(&mut self) {
        let kept = self.bytes.len() - self.taken;
        let skipped = kept.min(usize::try_from(self.skip).unwrap_or(usize::MAX));
        self.taken += skipped;
        self.skip -= skipped as u64;
    }

    /// Reads more of the socket after the bytes kept, towards a frame of
    /// `needed` bytes: straight into their spare room when more than the
    /// thread's buffer is still missing (reserved once, never zeroed: a
    /// large frame arriving in many reads is not cleared again for each),
    /// through the thread's buffer otherwise. Zero at the end of the
    /// connection.
    fn fill(&mut self, tcp: &TcpStream, cx: &mut Context<'_>, needed: usize) -> Poll<io::Result<usize>> {
        if self.taken > 0 {
            self.bytes.drain(..self.taken);
            self.taken = 0;
        }
        let kept = self.bytes.len();
        let missing = needed.saturating_sub(kept);
        if missing < SHARED_READ_BYTES {
            return SHARED_READ.with_borrow_mut(|shared| {
                let n = ready!(poll_read(tcp, cx, shared))?;
                // Skipping the rest of a refused frame keeps none of it.
                let skipped = n.min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.skip -= skipped as u64;
                self.bytes.extend_from_slice(&shared[skipped..n]);
                Poll::Ready(Ok(n))
            });
        }
        self.bytes.reserve_exact(missing);
        tcp::poll_reading(tcp, cx, || tcp.try_read_buf(&mut self.bytes))
    }
}

/// Reads the client's next message, answering none of its frames (its
/// pings and close are the socket's to answer).
pub(super) fn poll_next(
    tcp: &TcpStream,
    kept: &mut Option<Box<Kept>>,
    max_message: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Read>> {
    loop {
        let Some(state) = kept.as_deref_mut() else {
            if let Some(read) = ready!(read_in_place(tcp, kept, max_message, cx))? {
                return Poll::Ready(Ok(read));
            }
            continue;
        };
        state.skip_kept();
        if state.skip > 0 {
            if ready!(state.fill(tcp, cx, 0))? == 0 {
                return Poll::Ready(Ok(Read::Ended));
            }
            continue;
        }
        let read = match frames::decode(&state.bytes[state.taken..], &mut state.fragments, max_message) {
            Ok(Decoded::Frame { used, message }) => {
                state.taken += used;
                message.map(Read::Message)
            }
            Ok(Decoded::TooLarge { used, payload, size }) => {
                state.taken += used;
                state.skip = payload;
                Some(Read::TooLarge { size })
            }
            Ok(Decoded::Incomplete { needed }) => {
                if ready!(state.fill(tcp, cx, needed))? == 0 {
                    return Poll::Ready(Ok(Read::Ended));
                }
                None
            }
            Err(e) => Some(Read::Failed(e)),
        };
        if state.is_empty() {
            *kept = None;
        }
        if let Some(read) = read {
            return Poll::Ready(Ok(read));
        }
    }
}

/// With nothing kept, reads the socket into the thread's buffer and hands
/// on the message of its first frame, keeping what follows it. Anything
/// but a whole message first (the start of a frame, a fragment, bytes
/// that are not frames) is kept whole, to be decoded from there: `None`.
fn read_in_place(
    tcp: &TcpStream,
    kept: &mut Option<Box<Kept>>,
    max_message: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<Read>>> {
    SHARED_READ.with_borrow_mut(|shared| {
        let n = ready!(poll_read(tcp, cx, shared))?;
        if n == 0 {
            return Poll::Ready(Ok(Some(Read::Ended)));
        }
        let read = &shared[..n];
        let mut bytes = Vec::new();
        match frames::decode(read, &mut None, max_message) {
            Ok(Decoded::Frame { used, message: Some(message) }) => {
                *kept = Kept::of(&read[used..]);
                return Poll::Ready(Ok(Some(Read::Message(message))));
            }
            // A frame cut short is kept with room for the rest of it.
            Ok(Decoded::Incomplete { needed }) => bytes.reserve_exact(needed),
            _ => {}
        }
        bytes.extend_from_slice(read);
        *kept = Some(Box::new(Kept { bytes, ..Kept::default() }));
        Poll::Ready(Ok(None))
    })
}

/// Reads what the client sends, keeping none of it, until it ends.
pub(super) fn poll_past_the_end(tcp: &TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    SHARED_READ.with_borrow_mut(|shared| {
        while ready!(poll_read(tcp, cx, shared))? > 0 {}
        Poll::Ready(Ok(()))
    })
}

/// Reads what `tcp` has into `buf`, or waits for it to have something.
fn poll_read(tcp: &TcpStream, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    tcp::poll_reading(tcp, cx, || tcp.try_read(buf))
}
