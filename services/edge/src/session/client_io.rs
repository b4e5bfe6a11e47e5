//! A session's TCP stream, read through a buffer its runtime thread shares
//! ([ADR 0017](../../../../docs/adr/0017-sessions-read-through-a-shared-buffer.md)).
//!
//! tungstenite keeps a read buffer per connection for the connection's
//! whole life, and reads into it at most its size at a time. Given a small
//! one (`READ_BUFFER_BYTES` in `edge.rs`), an idle session keeps little,
//! and a frame larger than it takes several reads: this stream answers
//! them from one read of the socket into a buffer shared by every session
//! on the thread, keeping what the WebSocket has not taken yet, and only
//! until it takes it. A frame that fits in tungstenite's buffer costs no
//! allocation here.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes read from the socket at once when the WebSocket asks for fewer.
const SHARED_READ_BYTES: usize = 16 * 1024;

thread_local! {
    /// Where sessions on this thread read their sockets into.
    static SHARED_READ: RefCell<Box<[u8]>> = RefCell::new(vec![0; SHARED_READ_BYTES].into_boxed_slice());
}

/// The client's side of a session: its TCP stream, taken out of hyper's
/// upgrade.
#[derive(Debug)]
pub(crate) struct ClientIo {
    tcp: TcpStream,
    /// Read from the socket and not yet taken by the WebSocket: what the
    /// HTTP server read past the upgrade request (usually nothing), or the
    /// rest of a read larger than the WebSocket asked for. `None` once
    /// taken; boxed, as it is there only briefly and this stream is part of
    /// every idle session's task.
    unread: Option<Box<Unread>>,
}

/// Bytes read and not yet taken.
#[derive(Debug)]
struct Unread {
    bytes: Box<[u8]>,
    /// How many of them have been taken.
    taken: usize,
}

impl Unread {
    fn of(bytes: &[u8]) -> Option<Box<Unread>> {
        (!bytes.is_empty()).then(|| Box::new(Unread { bytes: bytes.into(), taken: 0 }))
    }
}

impl ClientIo {
    /// Takes the TCP stream out of a finished upgrade. The upgrade comes
    /// back if it is not over TCP (the edge serves nothing else).
    pub(crate) fn from_upgrade(upgraded: Upgraded) -> Result<ClientIo, Upgraded> {
        let parts = upgraded.downcast::<TokioIo<TcpStream>>()?;
        // A copy: the bytes hyper hands over are a view of its whole read
        // buffer, kilobytes a session would otherwise keep for its life.
        Ok(ClientIo { tcp: parts.io.into_inner(), unread: Unread::of(&parts.read_buf) })
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(unread) = &mut this.unread {
            let rest = &unread.bytes[unread.taken..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            unread.taken += n;
            if unread.taken == unread.bytes.len() {
                this.unread = None;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SHARED_READ_BYTES {
            return Pin::new(&mut this.tcp).poll_read(cx, buf);
        }
        SHARED_READ.with_borrow_mut(|shared| {
            let mut read = ReadBuf::new(shared);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut read))?;
            let got = read.filled();
            let n = got.len().min(buf.remaining());
            buf.put_slice(&got[..n]);
            this.unread = Unread::of(&got[n..]);
            Poll::Ready(Ok(()))
        })
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair: the client end and a [`ClientIo`] over the server
    /// end, which holds `unread` as if the HTTP server had read it.
    async fn pair(unread: &[u8]) -> (TcpStream, ClientIo) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        (client, ClientIo { tcp, unread: Unread::of(unread) })
    }

    /// Reads `len` bytes from `io` in reads of at most `step` bytes.
    async fn read_in_steps(io: &mut ClientIo, len: usize, step: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            let mut buf = vec![0; step];
            let n = io.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_keep_nothing_after() {
        let (mut client, mut io) = pair(b"early ").await;
        let sent: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).await.unwrap();
        let got = read_in_steps(&mut io, 6 + sent.len(), 100).await;
        assert_eq!(&got[..6], b"early ");
        assert_eq!(&got[6..], &sent[..]);
        assert!(io.unread.is_none(), "nothing is kept once taken");
    }

    #[tokio::test]
    async fn large_reads_go_to_the_socket_directly_and_writes_pass_through() {
        let (mut client, mut io) = pair(b"").await;
        client.write_all(b"hello").await.unwrap();
        let mut buf = vec![0; SHARED_READ_BYTES];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        io.write_all(b"back").await.unwrap();
        let mut back = [0; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        drop(client);
        assert_eq!(io.read(&mut [0; 8]).await.unwrap(), 0, "the end of the stream reads as 0");
    }
}
