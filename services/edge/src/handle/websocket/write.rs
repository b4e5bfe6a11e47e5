//! The session's own frames on their way to the socket: its replies, the
//! deliveries it writes itself, pongs and the close frame (ADR 0029).
//!
//! A frame is its header and the payload as the session has it, shared
//! with every other receiver of a delivery: frames are written header and
//! payload side by side in one vectored `send`, never copied into a buffer
//! of the connection's. They are kept, boxed, only until the socket has
//! taken them: an idle session keeps nothing.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use bytes::Bytes;

use super::super::SessionIo;
use crate::frames::{self, MAX_SERVER_HEADER};

/// Most frames in one vectored `send` (two slices each; Linux takes 1,024).
const FRAMES_PER_SEND: usize = 64;

/// Bytes waiting beyond which the session waits for the socket before it
/// adds more (`Sink::poll_ready`).
pub(super) const HIGH_WATER_BYTES: usize = 64 * 1024;

/// Frames the socket has not taken whole yet, first to last.
#[derive(Debug, Default)]
pub(super) struct Unsent {
    frames: VecDeque<Frame>,
    /// Bytes of the first frame already on the socket.
    written: usize,
    /// Bytes of all of them not yet on the socket.
    bytes: usize,
}

/// One frame: its header, and its payload as the session holds it.
#[derive(Debug)]
struct Frame {
    header: [u8; MAX_SERVER_HEADER],
    header_len: u8,
    payload: Bytes,
}

impl Frame {
    fn len(&self) -> usize {
        usize::from(self.header_len) + self.payload.len()
    }

    /// The frame from byte `from` on, as at most two slices.
    fn slices(&self, from: usize) -> [IoSlice<'_>; 2] {
        let header = &self.header[..usize::from(self.header_len)];
        match header.get(from..) {
            Some(rest) => [IoSlice::new(rest), IoSlice::new(&self.payload)],
            None => [IoSlice::new(&[]), IoSlice::new(&self.payload[from - header.len()..])],
        }
    }
}

impl Unsent {
    pub(super) fn push(&mut self, opcode: u8, payload: Bytes) {
        let (header, header_len) = frames::header(opcode, payload.len());
        let frame = Frame { header, header_len: header_len as u8, payload };
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Bytes not yet on the socket.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Writes everything, as the socket takes it.
    pub(super) fn poll_write(&mut self, io: &SessionIo, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(first) = self.frames.front() {
            // One frame, a reply's or a pong's, allocates nothing.
            let taken = if self.frames.len() == 1 {
                ready!(io.poll_write_vectored(cx, &first.slices(self.written)))?
            } else {
                let mut from = self.written;
                let mut slices = Vec::with_capacity(2 * self.frames.len().min(FRAMES_PER_SEND));
                for frame in self.frames.iter().take(FRAMES_PER_SEND) {
                    slices.extend(frame.slices(from));
                    from = 0;
                }
                ready!(io.poll_write_vectored(cx, &slices))?
            };
            if taken == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.taken(taken);
        }
        Poll::Ready(Ok(()))
    }

    /// Drops what the socket took: `taken` bytes from the first frame's
    /// unwritten part on.
    fn taken(&mut self, mut taken: usize) {
        self.bytes -= taken;
        while let Some(first) = self.frames.front() {
            let left = first.len() - self.written;
            if taken < left {
                self.written += taken;
                return;
            }
            taken -= left;
            self.written = 0;
            self.frames.pop_front();
        }
    }
}
