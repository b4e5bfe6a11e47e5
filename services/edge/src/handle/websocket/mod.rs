//! The session's WebSocket: its client's frames read and its own written
//! by the session's task, with Herald's own framing ([`crate::frames`],
//! ADR 0029).
//!
//! tungstenite's context kept 256 bytes in every session's task and a read
//! buffer of its own on the heap, and copied each frame the session wrote
//! into a write buffer it then kept. Here an idle session's socket is its
//! connection's handle and two empty boxes: reads go through a buffer the
//! thread shares ([`read`]), writes are the frames' own bytes ([`write`]).
//!
//! The socket answers what the protocol asks of it: a ping with a pong, a
//! close with a close (and then reads no more), bytes that are not frames
//! with a close frame of the code for them (1002, or 1007 for text that is
//! not UTF-8). A message over the limit is the session's to refuse (1009):
//! the socket only reads past the rest of it, so the client's answer to
//! that close can still be read.

mod read;
mod write;

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use hyper::upgrade::Upgraded;
use socket2::SockRef;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use self::read::{Kept, Read};
use self::write::{HIGH_WATER_BYTES, Unsent};
use super::{Mailbox, SessionIo};
use crate::frames::{self, FrameError, opcode};

/// A server's WebSocket on a session's connection.
#[derive(Debug)]
pub(crate) struct Socket {
    io: SessionIo,
    /// What the reads keep between two of them, while they keep anything.
    kept: Option<Box<Kept>>,
    /// Frames the socket has not taken yet, while there are any.
    unsent: Option<Box<Unsent>>,
    /// The longest message the client may send (a `u32`, which keeps the
    /// socket in 32 bytes: 4 GiB is far past anything NATS carries).
    max_message: u32,
    /// Nothing more is read: the client's close came, its bytes were not
    /// frames, or the connection ended.
    ended: bool,
    /// The close frame has been queued: nothing is written after it.
    closing: bool,
    /// The write side is shut: the client has been sent everything.
    shut: bool,
}

/// Why the client's frames could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("a message of {size} bytes, more than the {max} allowed")]
    TooLarge { size: u64, max: u32 },
    #[error("{0}")]
    NotFrames(#[from] FrameError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Socket {
    /// Takes the connection of a finished upgrade for its session, whose
    /// client may send messages of up to `max_message` bytes. The upgrade
    /// comes back if it is not over TCP (the edge serves nothing else).
    pub(crate) fn attach(mailbox: &Mailbox, upgraded: Upgraded, max_message: usize) -> Result<Socket, Upgraded> {
        let (io, early) = SessionIo::attach(mailbox, upgraded)?;
        let mut socket = Socket::new(io, max_message);
        // A copy: the bytes hyper hands over are a view of its whole read
        // buffer, kilobytes a session would otherwise keep for its life.
        socket.kept = Kept::of(&early);
        Ok(socket)
    }

    pub(super) fn new(io: SessionIo, max_message: usize) -> Socket {
        let max_message = u32::try_from(max_message).unwrap_or(u32::MAX);
        Socket { io, kept: None, unsent: None, max_message, ended: false, closing: false, shut: false }
    }

    fn queue(&mut self, opcode: u8, payload: Bytes) {
        self.unsent.get_or_insert_default().push(opcode, payload);
    }

    /// Writes what is queued, as the socket takes it; the queue's box goes
    /// once it is empty.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(unsent) = &mut self.unsent {
            ready!(unsent.poll_write(&self.io, cx))?;
            self.unsent = None;
        }
        Poll::Ready(Ok(()))
    }

    /// Answers a ping, a close, or bytes that are not frames; the answer
    /// goes now as far as the socket takes it, and the rest with the next
    /// read or write.
    fn answer(&mut self, read: &Read, cx: &mut Context<'_>) {
        match read {
            Read::Message(Message::Ping(payload)) if !self.closing => self.queue(opcode::PONG, payload.clone()),
            // The client's code and reason, echoed.
            Read::Message(Message::Close(frame)) if !self.closing => {
                self.closing = true;
                self.queue(opcode::CLOSE, frame.as_ref().map(frames::close_payload).unwrap_or_default());
            }
            Read::Failed(e) if !self.closing => {
                self.closing = true;
                let frame = CloseFrame { code: e.close_code().into(), reason: e.to_string().into() };
                self.queue(opcode::CLOSE, frames::close_payload(&frame));
            }
            _ => return,
        }
        // Nothing waits on it: a write the socket cannot take now is
        // finished by the next read or write, or the session's flush.
        let _ = self.poll_write(cx);
    }
}

impl Stream for Socket {
    type Item = Result<Message, ReadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        // An answer the socket did not take whole goes on as the client is
        // read, as it may never be followed by a write of the session's.
        if let Poll::Ready(Err(e)) = this.poll_write(cx) {
            this.ended = true;
            return Poll::Ready(Some(Err(e.into())));
        }
        let tcp = match this.io.tcp() {
            Ok(tcp) => tcp,
            Err(e) => return Poll::Ready(Some(Err(e.into()))),
        };
        let read = match ready!(read::poll_next(tcp, &mut this.kept, this.max_message as usize, cx)) {
            Ok(read) => read,
            Err(e) => {
                this.ended = true;
                return Poll::Ready(Some(Err(e.into())));
            }
        };
        this.answer(&read, cx);
        Poll::Ready(match read {
            Read::Message(message) => {
                this.ended = matches!(message, Message::Close(_));
                Some(Ok(message))
            }
            Read::TooLarge { size } => Some(Err(ReadError::TooLarge { size, max: this.max_message })),
            Read::Failed(e) => {
                this.ended = true;
                this.kept = None;
                Some(Err(e.into()))
            }
            Read::Ended => {
                this.ended = true;
                None
            }
        })
    }
}

impl Sink<Message> for Socket {
    type Error = io::Error;

    /// Ready while little waits for the socket; past that, once the socket
    /// has taken it all.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &this.unsent {
            Some(unsent) if unsent.bytes() >= HIGH_WATER_BYTES => this.poll_write(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Queues the frame; `poll_flush` writes it.
    fn start_send(self: Pin<&mut Self>, message: Message) -> io::Result<()> {
        let this = self.get_mut();
        if this.closing {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket's close frame has been sent"));
        }
        let (opcode, payload) = match message {
            Message::Text(text) => (opcode::TEXT, Bytes::from(text)),
            Message::Binary(bytes) => (opcode::BINARY, bytes),
            Message::Ping(bytes) => (opcode::PING, bytes),
            Message::Pong(bytes) => (opcode::PONG, bytes),
            Message::Close(frame) => {
                this.closing = true;
                (opcode::CLOSE, frame.as_ref().map(frames::close_payload).unwrap_or_default())
            }
            Message::Frame(_) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "a session writes messages, not raw frames"));
            }
        };
        this.queue(opcode, payload);
        Ok(())
    }

    /// Writes everything queued, and the rest of a delivery the flusher
    /// left unfinished.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write(cx))?;
        this.io.poll_flush(cx)
    }

    /// Ends the connection once the client has been sent everything
    /// queued (a close frame among it): shuts the write side, then reads
    /// past whatever the client still sends until it closes its own.
    /// Dropped with bytes unread, a socket is reset, and the reset can
    /// overtake the close frame, so the client would see 1006, not the
    /// code sent.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write(cx))?;
        ready!(this.io.poll_flush(cx))?;
        let tcp = this.io.tcp()?;
        if !this.shut {
            this.shut = true;
            this.kept = None;
            SockRef::from(tcp).shutdown(Shutdown::Write)?;
        }
        read::poll_past_the_end(tcp, cx)
    }
}
