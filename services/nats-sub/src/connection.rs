//! The connection task: connect (every server in turn, backing off between
//! rounds), shake hands, then read, write and keep alive until the
//! connection drops; and again, until the last handle is dropped.
//!
//! Reading, writing and pinging are three loops joined in this one task,
//! so a connection costs one task however many subscriptions it holds.
//! Messages are handed to their handlers inline by the reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::{Auth, Config, Event, ServerAddr};
use crate::info::{Connect, ServerInfo};
use crate::keep_alive::{Silence, Tick};
use crate::parse::{ServerOp, parse};
use crate::state::Shared;
use crate::subscriber::Deliver;
use crate::transport::{Tls, Transport};

/// Bytes read at a time. The read buffer grows past it only to hold one
/// operation larger than it, bounded by the server's `max_payload`, and
/// shrinks back once that is read.
const READ_CHUNK: usize = 32 * 1024;

/// Most servers tried: those configured, then those the cluster announces.
const MAX_SERVERS: usize = 64;

/// First pause after a round of failed attempts; it doubles each round up
/// to `Config::max_reconnect_delay`, each pause drawn from its upper half.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Runs the connection until `stop`.
pub(crate) async fn run<D: ?Sized + Deliver>(
    shared: Arc<Shared<D>>,
    servers: Vec<ServerAddr>,
    config: Config,
    stop: CancellationToken,
) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = keep_connected(&shared, servers, &config) => {}
    }
    shared.disconnected();
}

async fn keep_connected<D: ?Sized + Deliver>(shared: &Shared<D>, servers: Vec<ServerAddr>, config: &Config) {
    let mut pool = Pool::new(servers);
    let mut tls = Tls::new(config.tls.clone());
    let mut failed_in_round = 0;
    let mut failed_rounds = 0;
    loop {
        let server = pool.next();
        match tokio::time::timeout(config.connect_timeout, connect(&server, config, &mut tls)).await {
            Ok(Ok(connected)) => {
                let started = Instant::now();
                let reason = serve(shared, connected, &server, &mut pool, config).await;
                shared.disconnected();
                shared.event(&Event::Disconnected { reason });
                failed_in_round = 0;
                // A connection that drops as soon as it is made (a server
                // that closes slow consumers, say) counts as a failed round.
                failed_rounds = if started.elapsed() < config.ping_interval { failed_rounds + 1 } else { 0 };
                if failed_rounds > 0 {
                    tokio::time::sleep(backoff(failed_rounds, config.max_reconnect_delay)).await;
                }
            }
            failed => {
                let reason = match failed {
                    Ok(Err(reason)) => reason,
                    _ => format!("no handshake within {:?}", config.connect_timeout),
                };
                shared.event(&Event::ConnectFailed { server: server.label(), reason });
                failed_in_round += 1;
                if failed_in_round >= pool.len() {
                    failed_in_round = 0;
                    failed_rounds += 1;
                    tokio::time::sleep(backoff(failed_rounds, config.max_reconnect_delay)).await;
                }
            }
        }
    }
}

/// The pause after `rounds` failed rounds: doubling from
/// [`FIRST_BACKOFF`] up to `max`, drawn from the upper half so that many
/// clients do not come back in step.
fn backoff(rounds: u32, max: Duration) -> Duration {
    let full = FIRST_BACKOFF.saturating_mul(1 << rounds.saturating_sub(1).min(16)).min(max);
    let jitter = f64::from(getrandom::u32().unwrap_or(0)) / f64::from(u32::MAX);
    full.mul_f64(0.5 + jitter / 2.0)
}

/// The servers to try, in turn.
#[derive(Debug)]
struct Pool {
    servers: Vec<ServerAddr>,
    /// The next one to try.
    next: usize,
}

impl Pool {
    /// Starts at a random server, so that clients given the same list
    /// spread over it.
    fn new(servers: Vec<ServerAddr>) -> Pool {
        let next = getrandom::u32().unwrap_or(0) as usize % servers.len().max(1);
        Pool { servers, next }
    }

    fn len(&self) -> usize {
        self.servers.len()
    }

    fn next(&mut self) -> ServerAddr {
        let server = self.servers[self.next % self.servers.len()].clone();
        self.next = (self.next + 1) % self.servers.len();
        server
    }

    /// Adds the servers a cluster announces, with the TLS and credentials
    /// of the server that announced them.
    fn discover(&mut self, urls: &[String], from: &ServerAddr) {
        for url in urls {
            let Ok(mut server) = ServerAddr::parse(url) else { continue };
            let known = self.servers.iter().any(|s| s.host == server.host && s.port == server.port);
            if known || self.servers.len() >= MAX_SERVERS {
                continue;
            }
            server.tls |= from.tls;
            server.auth = server.auth.or_else(|| from.auth.clone());
            self.servers.push(server);
        }
    }
}

/// A connection past its handshake.
struct Connected {
    transport: Transport,
    /// What was read past the handshake's last operation.
    buf: BytesMut,
    info: ServerInfo,
}

/// Connects to `server`: TCP, `INFO`, TLS if the URL or the server asks
/// for it, `CONNECT` and a ping whose pong says we are in. An error says
/// why not, in words.
async fn connect(server: &ServerAddr, config: &Config, tls: &mut Tls) -> Result<Connected, String> {
    let mut tcp = open_tcp(server).await?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut info = match next_op(&mut tcp, &mut buf, READ_CHUNK).await? {
        Handshake::Info(info) => info,
        other => return Err(format!("expected INFO, got {other:?}")),
    };
    let use_tls = server.tls || info.tls_required;
    let mut transport = if use_tls {
        if !info.tls_required && !info.tls_available {
            return Err("the URL asks for TLS (tls://) and the server does not offer it".to_owned());
        }
        buf.clear();
        tls.upgrade(tcp, &server.host).await.map_err(|e| format!("TLS handshake: {e}"))?
    } else {
        Transport::Tcp(tcp)
    };
    let (user, pass, auth_token) = match server.auth.as_ref().unwrap_or(&config.auth) {
        Auth::None => (None, None, None),
        Auth::UserPassword { user, password } => (Some(user.as_str()), Some(password.as_str()), None),
        Auth::Token(token) => (None, None, Some(token.as_str())),
    };
    let connect = Connect {
        verbose: false,
        pedantic: false,
        tls_required: use_tls,
        name: &config.name,
        lang: "rust",
        version: env!("CARGO_PKG_VERSION"),
        protocol: 1,
        headers: true,
        no_responders: true,
        user,
        pass,
        auth_token,
    };
    let mut hello = b"CONNECT ".to_vec();
    serde_json::to_writer(&mut hello, &connect).map_err(|e| e.to_string())?;
    hello.extend_from_slice(b"\r\nPING\r\n");
    let io_error = |e: std::io::Error| format!("writing the handshake: {e}");
    transport.write_all(&hello).await.map_err(io_error)?;
    transport.flush().await.map_err(io_error)?;
    loop {
        match next_op(&mut transport, &mut buf, info.max_payload).await? {
            Handshake::Pong => return Ok(Connected { transport, buf, info }),
            Handshake::Err(text) => return Err(format!("server refused the connection: {text}")),
            Handshake::Ping => {
                transport.write_all(b"PONG\r\n").await.map_err(io_error)?;
            }
            Handshake::Info(newer) => info = newer,
            Handshake::Other => {}
        }
    }
}

async fn open_tcp(server: &ServerAddr) -> Result<TcpStream, String> {
    let addresses = tokio::net::lookup_host((server.host.as_str(), server.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", server.host))?;
    let mut last_error = format!("{} resolves to no address", server.host);
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(tcp) => {
                // Commands are small and few; no reason to let Nagle hold them.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last_error = format!("{address}: {e}"),
        }
    }
    Err(last_error)
}

/// What the handshake cares about in what the server sends.
#[derive(Debug)]
enum Handshake {
    Info(ServerInfo),
    Ping,
    Pong,
    Err(String),
    Other,
}

/// Reads until one whole operation is in `buf`, and takes it out.
async fn next_op<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max_payload: usize,
) -> Result<Handshake, String> {
    loop {
        let found = parse(buf, max_payload).map_err(|e| format!("protocol error: {e}"))?.map(|(op, used)| {
            let op = match op {
                ServerOp::Info(json) => {
                    ServerInfo::parse(json).map(Handshake::Info).map_err(|e| format!("unreadable INFO: {e}"))
                }
                ServerOp::Ping => Ok(Handshake::Ping),
                ServerOp::Pong => Ok(Handshake::Pong),
                ServerOp::Err(text) => Ok(Handshake::Err(String::from_utf8_lossy(text).into_owned())),
                ServerOp::Ok | ServerOp::Msg(_) => Ok(Handshake::Other),
            };
            (op, used)
        });
        if let Some((op, used)) = found {
            buf.advance(used);
            return op;
        }
        read_more(stream, buf).await?;
    }
}

/// Reads what the server sent next into `buf`.
async fn read_more<R: AsyncRead + Unpin>(stream: &mut R, buf: &mut BytesMut) -> Result<(), String> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    match stream.read_buf(buf).await {
        Ok(0) => Err("the server closed the connection".to_owned()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("reading: {e}")),
    }
}

/// Serves a connection until it drops, and says why it did.
async fn serve<D: ?Sized + Deliver>(
    shared: &Shared<D>,
    connected: Connected,
    server: &ServerAddr,
    pool: &mut Pool,
    config: &Config,
) -> String {
    let Connected { transport, mut buf, mut info } = connected;
    pool.discover(&info.connect_urls, server);
    let (mut reader, mut writer) = tokio::io::split(transport);
    shared.connected(info.max_payload);
    let name =
        if info.server_name.is_empty() { server.label() } else { format!("{} ({})", server.label(), info.server_name) };
    shared.event(&Event::Connected { server: name });
    // Set by the reader whenever it reads anything, taken by the keep-alive.
    let heard = AtomicBool::new(false);
    tokio::select! {
        reason = read(shared, &mut reader, &mut buf, &mut info, server, pool, &heard) => reason,
        reason = write(shared, &mut writer) => reason,
        reason = keep_alive(shared, config.ping_interval, &heard) => reason,
    }
}

/// Reads operations and acts on each: messages go to their handlers here.
/// Every read sets `heard`.
async fn read<D: ?Sized + Deliver>(
    shared: &Shared<D>,
    reader: &mut ReadHalf<Transport>,
    buf: &mut BytesMut,
    info: &mut ServerInfo,
    server: &ServerAddr,
    pool: &mut Pool,
    heard: &AtomicBool,
) -> String {
    loop {
        let mut consumed = 0;
        loop {
            let op = match parse(&buf[consumed..], info.max_payload) {
                Ok(Some((op, used))) => {
                    consumed += used;
                    op
                }
                Ok(None) => break,
                Err(e) => return format!("protocol error: {e}"),
            };
            match op {
                ServerOp::Msg(msg) => shared.dispatch(&msg),
                ServerOp::Ping => shared.answer_ping(),
                ServerOp::Pong => shared.pong(),
                ServerOp::Ok => {}
                ServerOp::Err(text) => shared.event(&Event::ServerError(String::from_utf8_lossy(text).into_owned())),
                ServerOp::Info(json) => match ServerInfo::parse(json) {
                    Ok(newer) => {
                        if newer.lame_duck && !info.lame_duck {
                            shared.event(&Event::LameDuck { server: server.label() });
                        }
                        if newer.max_payload != info.max_payload {
                            shared.max_payload_changed(newer.max_payload);
                        }
                        pool.discover(&newer.connect_urls, server);
                        *info = newer;
                    }
                    Err(e) => tracing::warn!(error = %e, "ignored an unreadable INFO update"),
                },
            }
        }
        buf.advance(consumed);
        if buf.is_empty() && buf.capacity() > 4 * READ_CHUNK {
            *buf = BytesMut::with_capacity(READ_CHUNK);
        }
        if let Err(reason) = read_more(reader, buf).await {
            return reason;
        }
        heard.store(true, Ordering::Relaxed);
    }
}

/// Writes queued commands as they come.
async fn write<D: ?Sized + Deliver>(shared: &Shared<D>, writer: &mut WriteHalf<Transport>) -> String {
    loop {
        let Some(commands) = shared.take_commands() else {
            shared.commands_queued.notified().await;
            continue;
        };
        let written = async {
            writer.write_all(&commands).await?;
            writer.flush().await
        };
        if let Err(e) = written.await {
            return format!("writing: {e}");
        }
    }
}

/// Pings the server every `interval`; returns when nothing has been heard
/// from it (`heard` unset) for too many of them (see [`Silence`]).
async fn keep_alive<D: ?Sized + Deliver>(shared: &Shared<D>, interval: Duration, heard: &AtomicBool) -> String {
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut silence = Silence::default();
    loop {
        ticks.tick().await;
        match silence.tick(heard.swap(false, Ordering::Relaxed)) {
            Tick::Ping => shared.ping(),
            Tick::Stale(silent) => {
                return format!(
                    "stale connection: nothing heard from the server for {silent} pings {interval:?} apart"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_with_jitter_in_the_upper_half() {
        let max = Duration::from_secs(2);
        for _ in 0..50 {
            let first = backoff(1, max);
            assert!(first >= FIRST_BACKOFF / 2 && first <= FIRST_BACKOFF, "{first:?}");
            let third = backoff(3, max);
            assert!(third >= FIRST_BACKOFF * 2 && third <= FIRST_BACKOFF * 4, "{third:?}");
            let late = backoff(40, max);
            assert!(late >= max / 2 && late <= max, "{late:?}");
        }
    }

    #[test]
    fn the_pool_takes_announced_servers_once_and_within_its_bound() {
        let configured = ServerAddr::parse("tls://u:p@a:4222").unwrap();
        let mut pool = Pool::new(vec![configured.clone()]);
        pool.discover(&["a:4222".into(), "b:4222".into(), "b:4222".into(), "http://c".into()], &configured);
        assert_eq!(pool.len(), 2);
        let announced = pool.servers[1].clone();
        assert!(announced.tls && announced.auth == configured.auth && announced.host == "b");
        let many: Vec<String> = (0..100).map(|n| format!("h{n}:1")).collect();
        pool.discover(&many, &configured);
        assert_eq!(pool.len(), MAX_SERVERS);
        // Turn by turn.
        let first = pool.next();
        let second = pool.next();
        assert_ne!(first, second);
    }
}
