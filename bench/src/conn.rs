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

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::net::{TcpSocket, TcpStream, lookup_host};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::protocol::Protocol;

/// A load connection, past its greeting.
pub type Ws = WebSocketStream<TcpStream>;

/// Bytes read from the socket at a time. tungstenite allocates the read
/// buffer for every connection up front (128 KiB by default); the frames a
/// load client gets are small, and bigger ones are read in several steps.
const READ_BUFFER_BYTES: usize = 2048;
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
}

impl Dialer {
    /// Resolves every URL once, so opening a connection does no lookup.
    /// `secret` is the token secret (see [`Protocol::enter`]).
    pub async fn new(urls: &[String], protocol: Protocol, source_ips: u8, secret: &str) -> Result<Dialer> {
        let mut edges = Vec::with_capacity(urls.len());
        for url in urls {
            edges.push(Edge { url: url.clone(), addr: resolve(url).await? });
        }
        Ok(Dialer { edges, protocol, source_ips, secret: secret.to_owned() })
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
            let mut ws = upgrade(url, stream).await?;
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
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config()))
        .await
        .with_context(|| format!("cannot open a publisher WebSocket to {url}"))?;
    if protocol == Protocol::SocketIo {
        protocol.greet(&mut ws).await.map_err(|e| anyhow::anyhow!("publisher at {url}: {}", e.kind()))?;
    }
    Ok(ws)
}

/// The WebSocket upgrade on `stream`.
async fn upgrade(url: String, stream: TcpStream) -> Result<Ws, OpenError> {
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config())).await.map_err(|e| match e {
            WsError::Http(response) => OpenError::Refused(response.status().as_u16()),
            other => OpenError::Upgrade(other),
        })?;
    Ok(ws)
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
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

    #[test]
    fn source_addresses_stay_in_127_0_0_x() {
        assert_eq!(source_ip(0, 0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_ip(u64::MAX, u8::MAX).octets()[..3], [127, 0, 0]);
        let last = (0..1000).map(|conn| source_ip(conn, MAX_SOURCE_IPS).octets()[3]).max();
        assert_eq!(last, Some(254));
    }
}
