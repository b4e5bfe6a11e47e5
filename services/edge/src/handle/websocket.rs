//! The session's WebSocket: tungstenite's protocol state, driven on the
//! session's [`SessionIo`] by the session's own task (ADR 0023).
//!
//! tokio-tungstenite's `WebSocketStream` would wrap the stream in a layer
//! (`AllowStd`) that gives its reads and writes wakers of their own, two
//! `Arc`s (128 bytes of heap per connection, and 16 in the task), so that a
//! WebSocket read on one task and written on another wakes both. A
//! session's socket is read and written by its task only: here each read
//! and write waits with the waker of the poll that makes it, and the socket
//! is tungstenite's context beside the stream. The `Stream` and `Sink` are
//! tokio-tungstenite's (0.30), less that layer.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::SessionIo;

/// A server's WebSocket on a session's connection.
#[derive(Debug)]
pub(crate) struct Socket {
    context: WebSocketContext,
    io: SessionIo,
    /// The client's frames have ended (closed, or failed): reads find
    /// nothing more.
    ended: bool,
    /// The last write was taken whole: the next may go ahead without a
    /// flush first.
    ready: bool,
}

impl Socket {
    /// The WebSocket of a connection whose handshake is done.
    pub(crate) fn new(io: SessionIo, config: WebSocketConfig) -> Socket {
        Socket { context: WebSocketContext::new(Role::Server, Some(config)), io, ended: false, ready: true }
    }

    /// Runs `f` on tungstenite's context with the stream, whose reads and
    /// writes that would wait leave `cx`'s waker with the connection.
    fn with<R>(&mut self, cx: &mut Context<'_>, f: impl FnOnce(&mut WebSocketContext, &mut Polled<'_, '_>) -> R) -> R {
        f(&mut self.context, &mut Polled { io: &mut self.io, cx })
    }
}

/// The stream as std's `Read` and `Write` for tungstenite, for one poll: an
/// operation that would wait leaves the poll's waker and is `WouldBlock`.
struct Polled<'a, 'b> {
    io: &'a mut SessionIo,
    cx: &'a mut Context<'b>,
}

impl Read for Polled<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Polled<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// A tungstenite result as a poll's: `WouldBlock` is waiting.
fn polled<T>(result: Result<T, WsError>) -> Poll<Result<T, WsError>> {
    match result {
        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        result => Poll::Ready(result),
    }
}

impl Stream for Socket {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match futures_util::ready!(polled(this.with(cx, |context, io| context.read(io)))) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(e) => {
                this.ended = true;
                match e {
                    WsError::AlreadyClosed | WsError::ConnectionClosed => Poll::Ready(None),
                    e => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

impl Sink<Message> for Socket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        if this.ready {
            return Poll::Ready(Ok(()));
        }
        let flushed = futures_util::ready!(polled(this.with(cx, |context, io| context.flush(io))));
        this.ready = true;
        Poll::Ready(flushed)
    }

    /// Writes to the socket only what tungstenite's buffer holds past its
    /// size; what the socket does not take now is flushed by the next
    /// `poll_ready` or `poll_flush`, which wait for it.
    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        let this = self.get_mut();
        // No waker: whoever waits for the rest registers one as it flushes.
        let mut cx = Context::from_waker(Waker::noop());
        match this.with(&mut cx, |context, io| context.write(io, message)) {
            Ok(()) => {
                this.ready = true;
                Ok(())
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                this.ready = false;
                Ok(())
            }
            Err(e) => {
                this.ready = true;
                Err(e)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        let flushed = futures_util::ready!(polled(this.with(cx, |context, io| context.flush(io))));
        this.ready = true;
        match flushed {
            Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            flushed => Poll::Ready(flushed),
        }
    }

    /// Closes without a code, flushing until the close frame is out. (A
    /// session closes with a code by sending a `Message::Close`.)
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = self.get_mut();
        this.ready = true;
        // tungstenite queues the close frame once; later calls flush it.
        match polled(this.with(cx, |context, io| context.close(io, None))) {
            Poll::Ready(Err(WsError::ConnectionClosed)) => Poll::Ready(Ok(())),
            closed => closed,
        }
    }
}
