//! Vectored writes to client sockets with `sendmsg` rather than the
//! `writev` a tokio `TcpStream` makes, and an upgrade's `101` held back
//! to leave with the first frame after it; and the wait for a socket's
//! readiness that its sessions' reads and writes go through.
//!
//! A stream's plain reads and writes are already the socket calls (`recv`,
//! `send`), but its vectored writes are `writev`, a file call, which
//! passes through the kernel's file layer (`vfs_writev`, `fdget_pos`)
//! before it reaches TCP; `sendmsg` goes to the socket directly. On the
//! kernel measured here one `writev` of a small frame costs 1.02–1.30× a
//! `sendmsg` of it (BENCHMARKS.md, "Socket calls"; ADR 0019). The
//! flushers write a client's frames gathered into one buffer, with `send`
//! (ADR 0035); only a frame larger than that buffer is a vectored write.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The status line hyper begins a `101 Switching Protocols` with.
const SWITCHING_PROTOCOLS: &[u8] = b"HTTP/1.1 101 ";

/// `send` flags that leave what is sent in the kernel until the next send
/// without them (see [`ClientSocket`]); Linux only, elsewhere nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MORE_TO_COME: libc::c_int = libc::MSG_MORE;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const MORE_TO_COME: libc::c_int = 0;

/// Writes what the socket takes of `slices` now, in one `sendmsg`, inside
/// tokio's readiness as its own writes are.
pub(crate) fn send_vectored(tcp: &TcpStream, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    send_vectored_with_flags(tcp, slices, 0)
}

/// [`send_vectored`] with `send` flags.
fn send_vectored_with_flags(tcp: &TcpStream, slices: &[IoSlice<'_>], flags: libc::c_int) -> io::Result<usize> {
    tcp.try_io(Interest::WRITABLE, || SockRef::from(tcp).send_vectored_with_flags(slices, flags))
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

/// [`send_vectored_direct`] of one buffer: a `send`.
pub(crate) fn send_direct(tcp: &TcpStream, buffer: &[u8]) -> io::Result<usize> {
    SockRef::from(tcp).send(buffer)
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

/// Runs `read` once the socket is readable, and again each time it would
/// block, until it reads something, finds the end or fails.
pub(crate) fn poll_reading(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    mut read: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        match read() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}

/// A client's connection as the HTTP server reads and writes it, until the
/// upgrade hands the stream to its session: hyper writes its responses
/// (the `101` among them) as vectored writes.
///
/// A `101` is sent with `MSG_MORE`: the kernel keeps it until the next send
/// on the socket, and both leave in one TCP segment, as uWebSockets.js
/// corks its `101` with its greeting. Every upgrade's `101` is followed by
/// a write of the edge's (Herald's `$connected`, Pusher's
/// `connection_established`, Engine.IO's open packet, a Pusher refusal), so
/// the client reads its handshake and its first frame at once, and each
/// connect costs a segment and a wake-up of the client fewer (BENCHMARKS.md,
/// "Connect rate"; ADR 0020). Should that write not come (a session that
/// fails before it greets), the kernel sends what it holds by itself after
/// at most its probe timer (200 ms or the connection's RTO).
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
        let switching = slices.first().is_some_and(|head| head.starts_with(SWITCHING_PROTOCOLS));
        let flags = if switching { MORE_TO_COME } else { 0 };
        poll_writing(&self.0, cx, || send_vectored_with_flags(&self.0, slices, flags))
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

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::{Duration, Instant};

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n";

    /// The edge's side of a connection as the HTTP server has it, and the
    /// client's side, blocking, as a test reads it.
    async fn connected() -> (ClientSocket, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (edge, _) = listener.accept().await.unwrap();
        edge.set_nodelay(true).unwrap();
        (ClientSocket(edge), client)
    }

    /// Writes a response as hyper does, in one vectored write.
    async fn respond(edge: &mut ClientSocket, response: &[u8]) {
        assert_eq!(edge.write_vectored(&[IoSlice::new(response)]).await.unwrap(), response.len());
    }

    /// What the client can read now, without waiting.
    fn read_now(client: &mut std::net::TcpStream) -> Vec<u8> {
        client.set_nonblocking(true).unwrap();
        let mut bytes = vec![0; 1024];
        let n = match client.read(&mut bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("{e}"),
        };
        bytes.truncate(n);
        bytes
    }

    /// Reads until `len` bytes have come, waiting at most `limit`.
    fn read_within(client: &mut std::net::TcpStream, len: usize, limit: Duration) -> Vec<u8> {
        client.set_nonblocking(false).unwrap();
        client.set_read_timeout(Some(limit)).unwrap();
        let mut bytes = vec![0; len];
        client.read_exact(&mut bytes).unwrap();
        bytes
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn a_101_waits_in_the_kernel_for_the_first_frame_and_leaves_with_it() {
        let (mut edge, mut client) = connected().await;
        let started = Instant::now();
        respond(&mut edge, SWITCHING).await;
        let early = read_now(&mut client);
        // The kernel sends it by itself after its probe timer (200 ms at
        // least): only a test that got here sooner can see it held.
        if started.elapsed() < Duration::from_millis(100) {
            assert!(early.is_empty(), "the 101 left alone");
        }
        edge.write_all(b"\x81\x02{}").await.unwrap();
        let rest = read_within(&mut client, SWITCHING.len() + 4 - early.len(), Duration::from_secs(5));
        assert_eq!([early, rest].concat(), [SWITCHING, b"\x81\x02{}"].concat());
    }

    #[tokio::test]
    async fn a_101_with_nothing_after_it_still_leaves() {
        let (mut edge, mut client) = connected().await;
        respond(&mut edge, SWITCHING).await;
        assert_eq!(read_within(&mut client, SWITCHING.len(), Duration::from_secs(5)), SWITCHING);
    }

    #[tokio::test]
    async fn other_responses_leave_at_once() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        // A held response cannot arrive before the kernel's probe timer
        // (200 ms at least), so it fails every try; three tries let a
        // machine that stalls the test once still pass a response that
        // was sent at once.
        let mut waits = Vec::new();
        for _ in 0..3 {
            let (mut edge, mut client) = connected().await;
            let started = Instant::now();
            respond(&mut edge, ok).await;
            assert_eq!(read_within(&mut client, ok.len(), Duration::from_secs(5)), ok);
            waits.push(started.elapsed());
            if waits.last() < Some(&Duration::from_millis(150)) {
                return;
            }
        }
        panic!("the response was held every time: {waits:?}");
    }
}
