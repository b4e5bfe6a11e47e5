//! Reads and writes on client sockets with the socket calls (`recv`,
//! `send`, `sendmsg`) rather than the file calls (`read`, `write`,
//! `writev`) a tokio `TcpStream` makes.
//!
//! Both reach the same TCP code, but the file calls pass through the
//! kernel's file layer first, and on the kernels measured here that costs
//! more than the socket does: 1.3× per `writev` against `sendmsg` of one
//! small frame, and 1.25× per `read` against `recv` (BENCHMARKS.md, "Socket
//! calls"). A broadcast is one write per receiving client, a connect a read
//! and two writes, so the edge makes every client-socket call here (ADR
//! 0019). Readiness stays tokio's: each call runs inside
//! [`TcpStream::try_io`], which clears the readiness it used when the
//! socket would block.

use std::io::{self, IoSlice, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Writes what the socket takes of `bytes` now.
pub(crate) fn send(tcp: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    tcp.try_io(Interest::WRITABLE, || SockRef::from(tcp).send(bytes))
}

/// Writes what the socket takes of `slices` now, in one `sendmsg`.
pub(crate) fn send_vectored(tcp: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    tcp.try_io(Interest::WRITABLE, || SockRef::from(tcp).send_vectored(slices))
}

/// Writes what the socket takes of `slices` now, without asking tokio first
/// whether it is writable: for the flusher, whose broadcast would otherwise
/// read one more cold cache line per socket (tokio's readiness of it).
/// tokio's readiness is left as it was, which is safe either way: the
/// flusher writes only to a socket its session last left writable, and
/// when this would block, the session takes over and learns it through
/// tokio with its first write.
pub(crate) fn send_vectored_direct(tcp: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    SockRef::from(tcp).send_vectored(slices)
}

/// Writes `bytes`, or as much as fits, waiting for the socket to take any.
pub(crate) fn poll_send(tcp: &TcpStream, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
    poll_writing(tcp, cx, || send(tcp, bytes))
}

/// Reads what the socket has into `buf`, waiting for it to have something.
pub(crate) fn poll_recv(tcp: &TcpStream, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        // (`Read` on a socket is `recv`.)
        let read = tcp.try_io(Interest::READABLE, || (&*SockRef::from(tcp)).read(buf.initialize_unfilled()));
        match read {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Runs `write` once the socket is writable, again each time it would block.
fn poll_writing(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    mut write: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(tcp.poll_write_ready(cx))?;
        match write() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// A client's connection as the HTTP server reads and writes it, until the
/// upgrade hands the stream to its session.
#[derive(Debug)]
pub(crate) struct ClientSocket(pub TcpStream);

impl AsyncRead for ClientSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        poll_recv(&self.0, cx, buf)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        poll_send(&self.0, cx, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_writing(&self.0, cx, || send_vectored(&self.0, slices))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Nothing to flush: the stream has no buffer.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(SockRef::from(&self.0).shutdown(std::net::Shutdown::Write))
    }
}
