//! Reading a session's socket through a buffer its runtime thread shares
//! ([ADR 0018](../../../../docs/adr/0018-sessions-read-through-a-shared-buffer.md)).
//!
//! tungstenite keeps a read buffer per connection for the connection's
//! whole life, and reads into it at most its size at a time. Given a small
//! one (`READ_BUFFER_BYTES` in `edge.rs`), an idle session keeps little,
//! and a frame larger than it takes several reads: they are answered from
//! one read of the socket into a buffer shared by every session on the
//! thread, and what the WebSocket has not taken yet is kept only until it
//! takes it. A read that fits in tungstenite's buffer allocates nothing.

use std::cell::RefCell;
use std::io;
use std::task::{Context, Poll, ready};

use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// Bytes read from the socket at once when the WebSocket asks for fewer.
const SHARED_READ_BYTES: usize = 16 * 1024;

thread_local! {
    /// Where sessions on this thread read their sockets into.
    static SHARED_READ: RefCell<Box<[u8]>> = RefCell::new(vec![0; SHARED_READ_BYTES].into_boxed_slice());
}

/// Bytes read from a socket and not yet taken by its WebSocket.
#[derive(Debug)]
pub(super) struct Unread {
    bytes: Box<[u8]>,
    /// How many of them have been taken.
    taken: usize,
}

impl Unread {
    /// `None` for nothing: a session keeps no allocation once it has taken
    /// everything (boxed, as it is there only briefly and the stream that
    /// holds it is part of every idle session's task).
    pub(super) fn of(bytes: &[u8]) -> Option<Box<Unread>> {
        (!bytes.is_empty()).then(|| Box::new(Unread { bytes: bytes.into(), taken: 0 }))
    }
}

/// Reads into `buf`: first what is `unread`, then from `tcp`, through the
/// thread's buffer when `buf` is smaller than it.
pub(super) fn poll_read(
    tcp: &TcpStream,
    unread: &mut Option<Box<Unread>>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if let Some(rest) = unread {
        let left = &rest.bytes[rest.taken..];
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        rest.taken += n;
        if rest.taken == rest.bytes.len() {
            *unread = None;
        }
        return Poll::Ready(Ok(()));
    }
    if buf.remaining() >= SHARED_READ_BYTES {
        return poll_read_socket(tcp, cx, buf);
    }
    SHARED_READ.with_borrow_mut(|shared| {
        let mut read = ReadBuf::new(shared);
        ready!(poll_read_socket(tcp, cx, &mut read))?;
        let got = read.filled();
        let n = got.len().min(buf.remaining());
        buf.put_slice(&got[..n]);
        *unread = Unread::of(&got[n..]);
        Poll::Ready(Ok(()))
    })
}

/// Reads what `tcp` has into `buf`, or waits for it to have something.
fn poll_read_socket(tcp: &TcpStream, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        match tcp.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair: the client end and the server end.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// One read of at most `len` bytes.
    async fn read(tcp: &TcpStream, unread: &mut Option<Box<Unread>>, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        let mut buf = ReadBuf::new(&mut bytes);
        poll_fn(|cx| poll_read(tcp, unread, cx, &mut buf)).await.unwrap();
        let n = buf.filled().len();
        bytes.truncate(n);
        bytes
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_keep_nothing_after() {
        let (mut client, server) = pair().await;
        let mut unread = Unread::of(b"early ");
        let sent: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 6 + sent.len() {
            let bytes = read(&server, &mut unread, 100).await;
            assert!(!bytes.is_empty(), "the stream ended early");
            got.extend_from_slice(&bytes);
        }
        assert_eq!(&got[..6], b"early ");
        assert_eq!(&got[6..], &sent[..]);
        assert!(unread.is_none(), "nothing is kept once taken");
    }

    #[tokio::test]
    async fn large_reads_go_to_the_socket_and_the_end_reads_as_nothing() {
        let (mut client, server) = pair().await;
        let mut unread = None;
        client.write_all(b"hello").await.unwrap();
        assert_eq!(read(&server, &mut unread, SHARED_READ_BYTES).await, b"hello");
        assert!(unread.is_none());
        drop(client);
        assert!(read(&server, &mut unread, 8).await.is_empty());
    }
}
