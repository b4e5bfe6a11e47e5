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
        ready!(Pin::new(&mut *this).poll_flush(cx))?;
        let tcp = this.io.tcp()?;
        if !this.shut {
            this.shut = true;
            this.kept = None;
            SockRef::from(tcp).shutdown(Shutdown::Write)?;
        }
        read::poll_past_the_end(tcp, cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::handle::{SessionHandle, Wire};

    /// A socket on one end of a connection (its message limit
    /// `max_message`), and the client's end.
    async fn connected(max_message: usize) -> (Socket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (edge, _) = listener.accept().await.unwrap();
        let (handle, _mailbox) = SessionHandle::new(4, Wire::Herald);
        handle.shared.socket.set(edge).unwrap();
        (Socket::new(SessionIo::new(handle.shared.clone()), max_message), client)
    }

    /// A client's frame, masked, its length in as many bytes as it needs.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [9, 8, 7, 6];
        let mut bytes = vec![0x80 | opcode];
        match payload.len() {
            len @ 0..=125 => bytes.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                bytes.push(0x80 | 126);
                bytes.extend((len as u16).to_be_bytes());
            }
            len => {
                bytes.push(0x80 | 127);
                bytes.extend((len as u64).to_be_bytes());
            }
        }
        bytes.extend(mask);
        bytes.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
        bytes
    }

    /// Reads what the edge sends until it ends, then ends the client's side.
    async fn read_to_the_end(client: &mut TcpStream, bytes: &mut Vec<u8>) {
        client.read_to_end(bytes).await.unwrap();
        client.shutdown().await.unwrap();
    }

    async fn next(socket: &mut Socket) -> Option<Result<Message, ReadError>> {
        tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a message")
    }

    /// What one read leaves over is kept only until it is decoded, a frame
    /// cut short until its end comes, and a pong only until it is written:
    /// between messages an idle socket keeps nothing.
    #[tokio::test]
    async fn an_idle_socket_keeps_nothing_between_messages() {
        let (mut socket, mut client) = connected(1 << 20).await;
        let hello = frame(opcode::TEXT, b"hello");
        let mut wire = frame(opcode::TEXT, b"a");
        wire.extend(frame(opcode::PING, b"p"));
        wire.extend(&hello[..4]);
        client.write_all(&wire).await.unwrap();
        assert!(matches!(next(&mut socket).await, Some(Ok(Message::Text(text))) if text.as_str() == "a"));
        assert!(socket.kept.is_some(), "the ping and half a frame are kept");
        assert!(matches!(next(&mut socket).await, Some(Ok(Message::Ping(ping))) if &ping[..] == b"p"));
        assert!(socket.unsent.is_none(), "the pong went at once");
        let mut pong = [0; 3];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"\x8a\x01p");
        client.write_all(&hello[4..]).await.unwrap();
        assert!(matches!(next(&mut socket).await, Some(Ok(Message::Text(text))) if text.as_str() == "hello"));
        assert!(socket.kept.is_none() && socket.unsent.is_none());
        socket.send(Message::text("bye")).await.unwrap();
        assert!(socket.unsent.is_none(), "written, and the queue's box gone");
    }

    /// A frame far larger than the thread's buffer, arriving a few
    /// kilobytes at a time, is read straight into the room kept for it and
    /// comes out whole; nothing is kept after it.
    #[tokio::test]
    async fn a_large_frame_in_many_pieces_comes_out_whole() {
        let (mut socket, mut client) = connected(1 << 20).await;
        let payload: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let wire = frame(opcode::TEXT, &payload);
        let writing = async {
            for piece in wire.chunks(3_000) {
                client.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        let (read, ()) = tokio::join!(next(&mut socket), writing);
        assert!(matches!(read, Some(Ok(Message::Text(text))) if text.as_bytes() == payload.as_slice()));
        assert!(socket.kept.is_none());
    }

    /// A message over the limit is the session's to refuse; the socket
    /// reads past the rest of its frame and on to the next one.
    #[tokio::test]
    async fn a_message_over_the_limit_is_read_past() {
        let (mut socket, mut client) = connected(10).await;
        let mut wire = frame(opcode::TEXT, &[b'x'; 100]);
        wire.extend(frame(opcode::CLOSE, &1000u16.to_be_bytes()));
        client.write_all(&wire[..50]).await.unwrap();
        assert!(matches!(next(&mut socket).await, Some(Err(ReadError::TooLarge { size: 100, max: 10 }))));
        client.write_all(&wire[50..]).await.unwrap();
        assert!(
            matches!(next(&mut socket).await, Some(Ok(Message::Close(Some(close)))) if u16::from(close.code) == 1000)
        );
        assert!(next(&mut socket).await.is_none(), "nothing is read after the close");
        let mut echo = Vec::new();
        let (closed, ()) = tokio::join!(socket.close(), read_to_the_end(&mut client, &mut echo));
        closed.unwrap();
        assert_eq!(echo, b"\x88\x02\x03\xe8", "the close echoed, then the end");
    }

    /// Bytes that are not frames get the close code for them, and then the
    /// connection ends, after what the client sent meanwhile is read.
    #[tokio::test]
    async fn bytes_that_are_not_frames_close_with_1002() {
        let (mut socket, mut client) = connected(1 << 20).await;
        let mut unmasked = frame(opcode::TEXT, b"hi");
        unmasked[1] &= 0x7F;
        client.write_all(&unmasked).await.unwrap();
        assert!(matches!(next(&mut socket).await, Some(Err(ReadError::NotFrames(FrameError::Unmasked)))));
        assert!(next(&mut socket).await.is_none());
        client.write_all(&frame(opcode::CLOSE, &1002u16.to_be_bytes())).await.unwrap();
        let mut close = Vec::new();
        let (closed, ()) = tokio::join!(socket.close(), read_to_the_end(&mut client, &mut close));
        closed.unwrap();
        let reason = FrameError::Unmasked.to_string();
        assert_eq!(&close[..4], [0x88, 2 + reason.len() as u8, 0x03, 0xea]);
        assert_eq!(&close[4..], reason.as_bytes());
    }
}
