//! Vectored writes to client sockets with `sendmsg` rather than the
//! `writev` a tokio `TcpStream` makes.
//!
//! A stream's plain reads and writes are already the socket calls (`recv`,
//! `send`), but its vectored writes are `writev`, a file call, which
//! passes through the kernel's file layer (`vfs_writev`, `fdget_pos`)
//! before it reaches TCP; `sendmsg` goes to the socket directly. On the
//! kernel measured here one `writev` of a small frame costs 1.02–1.30× a
//! `sendmsg` of it (BENCHMARKS.md, "Socket calls"), and a broadcast is
//! one vectored write per receiving client (ADR 0019).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Writes what the socket takes of `slices` now, in one `sendmsg`, inside
/// tokio's readiness as its own writes are.
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

/// Runs `write` once the socket is writable, and again each time it would
/// block, until it takes something or fails.
pub(crate) fn poll_writing(
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
/// upgrade hands the stream to its session: hyper writes its responses
/// (the `101` among them) as vectored writes.
#[derive(Debug)]
pub(crate) struct ClientSocket(pub TcpStream);

impl AsyncRead for ClientSocket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, bytes)
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

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
