//! Opening one load connection: TCP from a spread source address, the
//! WebSocket upgrade with a token, and the server's greeting (see
//! [`Protocol::enter`]).
//!
//! A TCP connection is named by (source address, source port, destination
//! address, destination port). From one source address to one edge there
//! are only as many connections as ephemeral ports (about 28k by default),
//! so connections are bound round-robin to the loopback addresses
//! 127.0.0.2, 127.0.0.3, ... before they connect, which multiplies that
//! bound by the number of addresses. `IP_BIND_ADDRESS_NO_PORT` defers the
//! choice of port to `connect`, where the kernel knows the destination and
//! can reuse a port towards another edge.
//!
//! What a held connection costs the tool is mostly its read buffer, so the
//! upgrade is done in a way that leaves it at the size asked for (see
//! [`Upgrading`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream, lookup_host};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::protocol::Protocol;

/// A load connection, past its greeting.
pub type Ws = WebSocketStream<TcpStream>;

/// Bytes read from the socket at a time, unless a scenario asks otherwise
/// ([`Dialer::read_buffer`]). tungstenite allocates the read buffer for
/// every connection up front (128 KiB by default) and keeps it; the frames
/// a load client gets are small, and bigger ones are read in several steps.
pub const READ_BUFFER_BYTES: usize = 2048;
/// How long TCP connect, upgrade and greeting may take together. Generous:
/// under a connection storm the edge's accept queue is the bottleneck, and a
/// slow connection is still a connection.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// First source address used; 127.0.0.1 is left to everything else.
const FIRST_SOURCE_OCTET: u8 = 2;
/// Largest count of source addresses: 127.0.0.2 ..= 127.0.0.254.
pub const MAX_SOURCE_IPS: u8 = 254 - FIRST_SOURCE_OCTET + 1;

/// The source address of connection `conn` when `count` addresses are used.
pub fn source_ip(conn: u64, count: u8) -> Ipv4Addr {
    let offset = (conn % u64::from(count.clamp(1, MAX_SOURCE_IPS))) as u8;
    Ipv4Addr::new(127, 0, 0, FIRST_SOURCE_OCTET + offset)
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Tcp(io::Error),
    /// The edge answered the upgrade with this HTTP status.
    Refused(u16),
    Upgrade(WsError),
    /// The server did not greet the connection as its protocol says.
    Greeting(String),
    Timeout,
}

impl OpenError {
    /// A short description that groups alike failures, for error counts.
    pub fn kind(&self) -> String {
        match self {
            OpenError::Tcp(e) => format!("tcp: {e}"),
            OpenError::Refused(status) => format!("upgrade refused: HTTP {status}"),
            OpenError::Upgrade(e) => format!("upgrade: {e}"),
            OpenError::Greeting(what) => format!("no greeting: {what}"),
            OpenError::Timeout => format!("not connected within {}s", OPEN_TIMEOUT.as_secs()),
        }
    }
}

/// One edge to connect to.
#[derive(Debug)]
struct Edge {
    url: String,
    addr: SocketAddr,
}

/// Opens connections to a set of edges (or peers).
#[derive(Debug)]
pub struct Dialer {
    edges: Vec<Edge>,
    protocol: Protocol,
    source_ips: u8,
    /// What a Pusher receiver signs its private channels with.
    secret: String,
    /// Each connection's read buffer (see [`READ_BUFFER_BYTES`]).
    read_buffer_bytes: usize,
}

impl Dialer {
    /// Resolves every URL once, so opening a connection does no lookup.
    /// `secret` is the token secret (see [`Protocol::enter`]).
    pub async fn new(urls: &[String], protocol: Protocol, source_ips: u8, secret: &str) -> Result<Dialer> {
        let mut edges = Vec::with_capacity(urls.len());
        for url in urls {
            edges.push(Edge { url: url.clone(), addr: resolve(url).await? });
        }
        Ok(Dialer { edges, protocol, source_ips, secret: secret.to_owned(), read_buffer_bytes: READ_BUFFER_BYTES })
    }

    /// Gives each connection a read buffer of `bytes`: smaller holds more
    /// idle connections in the tool's memory, larger reads more frames per
    /// `read` when they pile up.
    pub fn read_buffer(mut self, bytes: usize) -> Dialer {
        self.read_buffer_bytes = bytes;
        self
    }

    /// Opens connection number `conn` to edge `edge` (an index into the
    /// URLs) with `token` and `groups`, and waits for its greeting.
    pub async fn open(&self, conn: u64, edge: usize, token: &str, groups: &[String]) -> Result<Ws, OpenError> {
        self.open_with_query(conn, edge, token, groups, "").await
    }

    /// [`Dialer::open`] with `query` (`name=value&...`, encoded) added to
    /// the URL: a Herald client's `resume`.
    pub async fn open_with_query(
        &self,
        conn: u64,
        edge: usize,
        token: &str,
        groups: &[String],
        query: &str,
    ) -> Result<Ws, OpenError> {
        let edge = &self.edges[edge];
        let open = async {
            let stream = self.connect_tcp(conn, edge.addr).await.map_err(OpenError::Tcp)?;
            let mut url = self.protocol.receiver_url(&edge.url, token, groups);
            if !query.is_empty() {
                url.push('&');
                url.push_str(query);
            }
            let mut ws = upgrade(url, stream, config(self.read_buffer_bytes)).await?;
            self.protocol.enter(&mut ws, &edge.url, &self.secret, groups).await?;
            Ok(ws)
        };
        tokio::time::timeout(OPEN_TIMEOUT, open).await.unwrap_or(Err(OpenError::Timeout))
    }

    /// A TCP connection to `addr`, bound to the connection's source address
    /// when the edge is on IPv4 loopback (elsewhere a 127.0.0.x source would
    /// not be routable).
    async fn connect_tcp(&self, conn: u64, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = match addr.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => {
                let socket = TcpSocket::new_v4()?;
                bind_address_no_port(&socket)?;
                socket.bind(SocketAddr::new(source_ip(conn, self.source_ips).into(), 0))?;
                socket
            }
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.connect(addr).await
    }
}

/// Sets `IP_BIND_ADDRESS_NO_PORT`: `bind` then fixes only the address, and
/// the port is picked at `connect` for the full four-tuple.
#[allow(unsafe_code, reason = "setsockopt(2) with an option std does not wrap")]
fn bind_address_no_port(socket: &TcpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is an open socket owned by `socket`, and the
    // option value is a live `c_int` whose size is passed along.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if status == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Opens a peer's publisher connection to `url` from 127.0.0.1; a
/// Socket.IO publisher is greeted like its receivers, a plain one is not
/// greeted at all.
pub async fn open_publisher(url: &str, protocol: Protocol) -> Result<Ws> {
    let stream = TcpStream::connect(resolve(url).await?).await.with_context(|| format!("cannot connect to {url}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config(READ_BUFFER_BYTES)))
        .await
        .with_context(|| format!("cannot open a publisher WebSocket to {url}"))?;
    if protocol == Protocol::SocketIo {
        protocol.greet(&mut ws).await.map_err(|e| anyhow::anyhow!("publisher at {url}: {}", e.kind()))?;
    }
    Ok(ws)
}

/// The WebSocket upgrade on `stream`, by tungstenite; then the socket,
/// which holds nothing past the `101` response, becomes a WebSocket with a
/// read buffer of the configured size.
async fn upgrade(url: String, stream: TcpStream, config: WebSocketConfig) -> Result<Ws, OpenError> {
    let (upgraded, _) = tokio_tungstenite::client_async_with_config(url, Upgrading::new(stream), Some(config))
        .await
        .map_err(|e| match e {
            WsError::Http(response) => OpenError::Refused(response.status().as_u16()),
            other => OpenError::Upgrade(other),
        })?;
    let stream = upgraded.into_inner().stream;
    Ok(WebSocketStream::from_raw_socket(stream, Role::Client, Some(config)).await)
}

fn config(read_buffer_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(read_buffer_bytes)
}

/// The line that ends an HTTP response's head.
const END_OF_HEAD: &[u8] = b"\r\n\r\n";

/// A TCP stream during the upgrade, which hands tungstenite's handshake the
/// HTTP response and not one byte past it (it peeks, then reads only up to
/// the end of the head). tungstenite reads the response into a 4 KiB
/// buffer and keeps that buffer, with whatever followed the response, as
/// the connection's read buffer for good; a server that sends its first
/// frame at once (a Herald edge's `$connected`) always leaves something
/// there. With nothing past the response read, the socket can be made a
/// WebSocket afresh, its read buffer the size asked for: most of what an
/// idle connection costs the tool.
struct Upgrading {
    stream: TcpStream,
    /// How much of [`END_OF_HEAD`] the bytes handed over so far end with.
    matched: usize,
}

impl Upgrading {
    fn new(stream: TcpStream) -> Upgrading {
        Upgrading { stream, matched: 0 }
    }
}

/// How much of [`END_OF_HEAD`] is matched after `byte`, from `matched`.
fn match_head_end(matched: usize, byte: u8) -> usize {
    if byte == END_OF_HEAD[matched] {
        matched + 1
    } else if byte == END_OF_HEAD[0] {
        1
    } else {
        0
    }
}

impl AsyncRead for Upgrading {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.matched == END_OF_HEAD.len() {
            // The response is whole: the handshake reads no further, and
            // what follows is the WebSocket's.
            return Poll::Ready(Ok(()));
        }
        let mut scratch = [0u8; 1024];
        let limit = buf.remaining().min(scratch.len());
        let mut peeked = ReadBuf::new(&mut scratch[..limit]);
        ready!(self.stream.poll_peek(cx, &mut peeked))?;
        let mut matched = self.matched;
        let head = peeked.filled().iter().position(|&byte| {
            matched = match_head_end(matched, byte);
            matched == END_OF_HEAD.len()
        });
        let take = head.map_or(peeked.filled().len(), |at| at + 1);
        let mut taken = ReadBuf::new(&mut scratch[..take]);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut taken))?;
        for &byte in taken.filled() {
            self.matched = match_head_end(self.matched, byte);
        }
        buf.put_slice(taken.filled());
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Upgrading {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The address of a `ws://` URL.
async fn resolve(url: &str) -> Result<SocketAddr> {
    let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    if uri.scheme_str() != Some("ws") {
        bail!("{url}: only ws:// URLs are supported");
    }
    let host = uri.host().with_context(|| format!("{url} has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {url}"))?
        .next()
        .with_context(|| format!("{url} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_go_round_robin_from_127_0_0_2() {
        let ips: Vec<Ipv4Addr> = (0..7).map(|conn| source_ip(conn, 3)).collect();
        let octets: Vec<u8> = ips.iter().map(|ip| ip.octets()[3]).collect();
        assert_eq!(octets, [2, 3, 4, 2, 3, 4, 2]);
        assert!(ips.iter().all(|ip| ip.is_loopback()));
    }

    #[tokio::test]
    async fn the_upgrade_hands_over_the_response_head_and_nothing_past_it() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let head: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let frame: &[u8] = b"\x81\x05hello";
        let mut upgrading = Upgrading::new(client);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];

        // The head's last line arrives in two parts, the second with the
        // first frame right behind it.
        let split = head.len() - 3;
        server.write_all(&head[..split]).await.unwrap();
        while got.len() < split {
            let read = upgrading.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..read]);
        }
        server.write_all(&[&head[split..], frame].concat()).await.unwrap();
        loop {
            let read = upgrading.read(&mut chunk).await.unwrap();
            if read == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(got, head);
        let mut rest = vec![0u8; frame.len()];
        upgrading.stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, frame);
    }

    #[test]
    fn a_head_ends_at_its_first_blank_line() {
        let end = |bytes: &[u8]| {
            let mut matched = 0;
            bytes.iter().position(|&byte| {
                matched = match_head_end(matched, byte);
                matched == END_OF_HEAD.len()
            })
        };
        assert_eq!(end(b"HTTP/1.1 101 OK\r\nA: b\r\n\r\n\r\n\r\n"), Some(24));
        assert_eq!(end(b"\r\r\n\r\n"), Some(4));
        assert_eq!(end(b"\r\n\r"), None);
        assert_eq!(end(b"\n\r\n\n\r\n"), None);
    }

    #[test]
    fn source_addresses_stay_in_127_0_0_x() {
        assert_eq!(source_ip(0, 0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_ip(u64::MAX, u8::MAX).octets()[..3], [127, 0, 0]);
        let last = (0..1000).map(|conn| source_ip(conn, MAX_SOURCE_IPS).octets()[3]).max();
        assert_eq!(last, Some(254));
    }
}
