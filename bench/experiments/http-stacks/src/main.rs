//! Memory per idle upgraded WebSocket connection, for each HTTP stack the
//! edge could take its upgrades with (see README.md).
//!
//! `http-stacks [N]` runs each stack's server in a child process
//! (`http-stacks serve <stack>`, which prints its port), opens N
//! connections to it from here, and reports the child's growth in resident
//! memory divided by N.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use hyper::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The edge's buffer sizes (services/edge/src/edge.rs).
const READ_BUFFER_BYTES: usize = 512;
const WRITE_BUFFER_BYTES: usize = 8 * 1024;
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

const STACKS: [&str; 3] = ["hyper", "axum-ws", "axum-raw"];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [serve, stack] if serve == "serve" => serve_stack(stack).await,
        [sizes] if sizes == "sizes" => {
            type Upgraded = TokioIo<hyper::upgrade::Upgraded>;
            println!("tokio-tungstenite 0.30 WebSocketStream: {}", std::mem::size_of::<WebSocketStream<Upgraded>>());
            println!(
                "axum 0.8 WebSocket (tokio-tungstenite 0.29): {}",
                std::mem::size_of::<axum::extract::ws::WebSocket>()
            );
            Ok(())
        }
        [] => measure_all(10_000).await,
        [n] => measure_all(n.parse().context("N is a number of connections")?).await,
        _ => bail!("usage: http-stacks [N] | http-stacks serve <{}>", STACKS.join("|")),
    }
}

async fn measure_all(connections: usize) -> Result<()> {
    println!("| stack | bytes per idle connection ({connections} connections) |\n| --- | ---: |");
    for stack in STACKS {
        println!("| {stack} | {} |", measure(stack, connections).await?);
    }
    Ok(())
}

/// Starts `stack`'s server in a child and measures its growth per connection.
async fn measure(stack: &str, connections: usize) -> Result<u64> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", stack])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("the child runs")?;
    let mut lines = BufReader::new(child.stdout.take().context("piped")?).lines();
    let port: u16 = lines.next_line().await?.context("the child prints its port")?.parse()?;
    let url = format!("ws://127.0.0.1:{port}/ws");

    // One connection first, so everything made once per process is counted
    // before the first sample.
    let warm = open(&url).await?;
    settle().await;
    let before = resident_bytes(pid)?;
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(open(&url).await?);
    }
    settle().await;
    let after = resident_bytes(pid)?;
    drop((warm, held));
    child.kill().await?;
    Ok(after.saturating_sub(before) / connections as u64)
}

/// A client connection that got its greeting.
async fn open(url: &str) -> Result<WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    socket.next().await.context("greeting")??;
    Ok(socket)
}

async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// VmRSS of `pid`, in bytes.
fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kib * 1024)
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
}

/// Greets, then reads until the client goes: an idle session.
async fn hold<S>(mut socket: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if socket.send(Message::text(r#"{"action":"$connected"}"#)).await.is_err() {
        return;
    }
    while let Some(Ok(_)) = socket.next().await {}
}

async fn serve_stack(stack: &str) -> Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!("{}", listener.local_addr()?.port());
    match stack {
        "hyper" => serve_hyper(listener).await,
        "axum-ws" => {
            let app = axum::Router::new().route("/ws", axum::routing::get(axum_ws));
            Ok(axum::serve(listener, app).await?)
        }
        "axum-raw" => {
            let app = axum::Router::new().route("/ws", axum::routing::get(upgrade_by_hand::<axum::body::Body>));
            Ok(axum::serve(listener, app).await?)
        }
        _ => bail!("unknown stack {stack}"),
    }
}

/// The edge's way: an HTTP/1 connection with upgrades per TCP connection.
async fn serve_hyper(listener: TcpListener) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|request| async { Ok::<_, Infallible>(upgrade_by_hand(request).await) });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
}

/// The 101 and a session task over `hyper::upgrade::on`, as the edge does.
async fn upgrade_by_hand<B: Send + 'static>(mut request: Request<B>) -> Response<axum::body::Body> {
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY).map(|key| derive_accept_key(key.as_bytes())) else {
        return Response::builder().status(StatusCode::BAD_REQUEST).body(axum::body::Body::empty()).unwrap();
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        hold(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config())).await).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "websocket")
        .header(SEC_WEBSOCKET_ACCEPT, key)
        .body(axum::body::Body::empty())
        .unwrap()
}

async fn axum_ws(upgrade: axum::extract::WebSocketUpgrade) -> axum::response::Response {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(|mut socket| async move {
            use axum::extract::ws::Message;
            if socket.send(Message::Text(r#"{"action":"$connected"}"#.into())).await.is_err() {
                return;
            }
            while let Some(Ok(_)) = socket.recv().await {}
        })
}
