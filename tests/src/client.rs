//! A WebSocket client for tests.
//!
//! A background task reads the socket all the time, so the client answers
//! the edge's pings (tungstenite queues the pong and writes it on its next
//! read) however long a test looks elsewhere. [`Client::pause`] stops that
//! task from polling the socket at all: the client then neither reads nor
//! answers pings, like a stalled browser tab; [`Client::resume`] reads again.
//!
//! Frames are checked strictly: [`Client::recv`] fails on anything but a
//! text frame, [`Client::recv_action`] on any other action, and
//! [`Client::expect_silence`] on anything at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use herald_proto::conn_id::ConnId;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::task::AbortOnDropHandle;

use crate::RECV_TIMEOUT;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a close may take to arrive, behind frames still in flight.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a WebSocket could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered the upgrade with an HTTP error (401, 403, ...).
    Refused { status: u16, body: String },
    /// Anything else: connection refused, timeout, protocol error.
    Other(String),
}

impl ConnectError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectError::Refused { status, .. } => Some(*status),
            ConnectError::Other(_) => None,
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused { status, body } => write!(f, "upgrade refused with HTTP {status}: {body}"),
            ConnectError::Other(e) => write!(f, "cannot connect: {e}"),
        }
    }
}

/// What `$connected` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub conn: String,
    pub user: Option<String>,
    pub groups: Vec<String>,
}

impl Connected {
    pub fn conn_id(&self) -> ConnId {
        self.conn.parse().expect("conn id")
    }
}

/// What the background reader saw.
#[derive(Debug)]
enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Close(Option<(u16, String)>),
    /// The stream ended, with the error if it ended with one.
    End(Option<String>),
}

impl Incoming {
    fn describe(&self) -> String {
        match self {
            Incoming::Text(text) => format!("text frame {}", abbreviate(text)),
            Incoming::Binary(bytes) => format!("binary frame of {} bytes", bytes.len()),
            Incoming::Close(Some((code, reason))) => format!("close frame {code} {reason:?}"),
            Incoming::Close(None) => "close frame without a code".to_owned(),
            Incoming::End(None) => "end of stream".to_owned(),
            Incoming::End(Some(e)) => format!("end of stream ({e})"),
        }
    }
}

fn abbreviate(text: &str) -> String {
    if text.len() <= 300 {
        text.to_owned()
    } else {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &text[..end], text.len())
    }
}

/// Options for [`Client::connect_with`].
#[derive(Debug, Default, Clone)]
pub struct ConnectOptions {
    /// Extra request headers (`Origin`, `Authorization`, ...).
    pub headers: Vec<(String, String)>,
    /// `SO_RCVBUF` of the client socket: a small one makes a client that
    /// stops reading back up the server quickly.
    pub recv_buffer: Option<u32>,
}

impl ConnectOptions {
    pub fn header(mut self, name: &str, value: &str) -> ConnectOptions {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn recv_buffer(mut self, bytes: u32) -> ConnectOptions {
        self.recv_buffer = Some(bytes);
        self
    }
}

/// One WebSocket connection.
pub struct Client {
    sink: SplitSink<Ws, Message>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    paused: watch::Sender<bool>,
    /// Reads the socket until the client is dropped.
    _reader: AbortOnDropHandle<()>,
    pings: Arc<AtomicUsize>,
    connected: Option<Connected>,
    /// Set once a close frame or the end of the stream was taken.
    finished: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("connected", &self.connected).finish_non_exhaustive()
    }
}

impl Client {
    /// Opens `url` (`ws://host:port/ws?token=...`).
    pub async fn connect(url: &str) -> Result<Client, ConnectError> {
        Client::connect_with(url, ConnectOptions::default()).await
    }

    /// Opens `url` with extra headers, e.g. `Origin`.
    pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<Client, ConnectError> {
        let mut options = ConnectOptions::default();
        for (name, value) in headers {
            options = options.header(name, value);
        }
        Client::connect_with(url, options).await
    }

    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Client, ConnectError> {
        let other = |e: &dyn std::fmt::Display| ConnectError::Other(e.to_string());
        let mut request = url.into_client_request().map_err(|e| other(&e))?;
        for (name, value) in &options.headers {
            let name: tungstenite::http::HeaderName = name.parse().map_err(|e| other(&e))?;
            let value = HeaderValue::from_str(value).map_err(|e| other(&e))?;
            request.headers_mut().append(name, value);
        }
        let host = request.uri().host().ok_or_else(|| ConnectError::Other("no host".into()))?.to_owned();
        let port = request.uri().port_u16().unwrap_or(80);
        let connect = async {
            let addr = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| other(&e))?
                .next()
                .ok_or_else(|| ConnectError::Other(format!("{host} does not resolve")))?;
            let socket =
                if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| other(&e))?;
            if let Some(bytes) = options.recv_buffer {
                socket.set_recv_buffer_size(bytes).map_err(|e| other(&e))?;
            }
            let stream = socket.connect(addr).await.map_err(|e| other(&e))?;
            stream.set_nodelay(true).map_err(|e| other(&e))?;
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await.map_err(|e| match e {
                tungstenite::Error::Http(response) => ConnectError::Refused {
                    status: response.status().as_u16(),
                    body: response.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
                },
                e => other(&e),
            })
        };
        let (ws, _response) = tokio::time::timeout(RECV_TIMEOUT, connect)
            .await
            .map_err(|_| ConnectError::Other(format!("no upgrade within {RECV_TIMEOUT:?}")))??;
        Ok(Client::start(ws))
    }

    /// Opens `url`, panicking if the upgrade is refused, and reads
    /// `$connected`.
    pub async fn open(url: &str) -> Client {
        let mut client = Client::connect(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        client.connected().await;
        client
    }

    fn start(ws: Ws) -> Client {
        let (sink, stream) = ws.split();
        let (tx, incoming) = mpsc::unbounded_channel();
        let (paused, paused_rx) = watch::channel(false);
        let pings = Arc::new(AtomicUsize::new(0));
        let reader = AbortOnDropHandle::new(tokio::spawn(read_socket(stream, tx, paused_rx, pings.clone())));
        Client { sink, incoming, paused, _reader: reader, pings, connected: None, finished: false }
    }

    /// Stops polling the socket: nothing is read and no ping is answered
    /// until [`Client::resume`].
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    /// WebSocket pings the server sent so far.
    pub fn pings_seen(&self) -> usize {
        self.pings.load(Ordering::SeqCst)
    }

    // --- sending ---------------------------------------------------------

    pub async fn send_json(&mut self, frame: &Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        if let Err(e) = self.try_send(Message::text(text)).await {
            panic!("cannot send text frame {}: {e}", abbreviate(text));
        }
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        if let Err(e) = self.try_send(Message::binary(bytes)).await {
            panic!("cannot send binary frame: {e}");
        }
    }

    /// Sends any message; an error is returned, not a panic (floods, frames
    /// the server may refuse by closing).
    pub async fn try_send(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        tokio::time::timeout(RECV_TIMEOUT, self.sink.send(message))
            .await
            .unwrap_or_else(|_| panic!("sending a frame blocked for {RECV_TIMEOUT:?}"))
    }

    /// Sends `{"action":..,"details":..,"id":..}`.
    pub async fn send_action(&mut self, action: &str, details: Value, id: Value) {
        let mut frame = serde_json::json!({"action": action, "details": details});
        if !id.is_null() {
            frame["id"] = id;
        }
        self.send_json(&frame).await;
    }

    /// Closes from the client side with `code`.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let _ = self.try_send(Message::Close(Some(frame))).await;
    }

    // --- receiving -------------------------------------------------------

    async fn next_incoming(&mut self, timeout: Duration) -> Option<Incoming> {
        match tokio::time::timeout(timeout, self.incoming.recv()).await {
            Ok(Some(incoming)) => Some(incoming),
            // The reader only stops after sending End, which was taken.
            Ok(None) => Some(Incoming::End(Some("reader already finished".into()))),
            Err(_) => None,
        }
    }

    /// The next text frame, exactly as sent; panics on anything else or
    /// after [`RECV_TIMEOUT`].
    pub async fn recv_raw(&mut self) -> String {
        self.recv_raw_within(RECV_TIMEOUT).await
    }

    pub async fn recv_raw_within(&mut self, timeout: Duration) -> String {
        match self.next_incoming(timeout).await {
            Some(Incoming::Text(text)) => text,
            Some(other) => {
                self.finished |= matches!(other, Incoming::Close(_) | Incoming::End(_));
                panic!("{}: expected a text frame, got {}", self.name(), other.describe())
            }
            None => panic!("{}: no frame within {timeout:?}", self.name()),
        }
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Value {
        let text = self.recv_raw().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: frame is not JSON ({e}): {text}", self.name()))
    }

    /// The next text frame, if one arrives within `timeout`; panics on a
    /// close or the end of the stream.
    pub async fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        match self.next_incoming(timeout).await {
            None => None,
            Some(Incoming::Text(text)) => Some(serde_json::from_str(&text).expect("frame is JSON")),
            Some(other) => panic!("{}: expected a text frame or nothing, got {}", self.name(), other.describe()),
        }
    }

    /// The next text frame as JSON, or how the connection ended: `Err` with
    /// the close code (`None` when the stream ended without a close
    /// frame). Panics after [`RECV_TIMEOUT`].
    pub async fn try_recv_or_close(&mut self) -> Result<Value, Option<u16>> {
        match self.next_incoming(RECV_TIMEOUT).await {
            Some(Incoming::Text(text)) => Ok(serde_json::from_str(&text).expect("frame is JSON")),
            Some(Incoming::Close(frame)) => {
                self.finished = true;
                Err(frame.map(|(code, _)| code))
            }
            Some(Incoming::End(_)) => {
                self.finished = true;
                Err(None)
            }
            Some(other) => panic!("{}: unexpected {}", self.name(), other.describe()),
            None => panic!("{}: nothing within {RECV_TIMEOUT:?}", self.name()),
        }
    }

    /// The next frame, which must have `action`; returns the whole frame.
    pub async fn recv_action(&mut self, action: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["action"], action, "{}: expected action {action:?}, got frame {frame}", self.name());
        frame
    }

    /// The next frame, which must be `<action>:error` with `code`; returns
    /// the whole frame.
    pub async fn recv_error(&mut self, action: &str, code: u16) -> Value {
        let frame = self.recv().await;
        assert_eq!(
            frame["action"],
            format!("{action}:error"),
            "{}: expected {action}:error, got frame {frame}",
            self.name()
        );
        assert_eq!(frame["details"]["code"], code, "{}: wrong error code in {frame}", self.name());
        assert!(frame["details"]["message"].is_string(), "error without a message: {frame}");
        frame
    }

    /// The next frame, which must be `$error` with `code` 400-style; returns
    /// the whole frame.
    pub async fn recv_system_error(&mut self, code: u16) -> Value {
        let frame = self.recv_action("$error").await;
        assert_eq!(frame["details"]["code"], code, "{}: wrong error code in {frame}", self.name());
        assert!(frame["details"]["message"].is_string(), "error without a message: {frame}");
        frame
    }

    /// Sends `$ping` with `id` and expects `$pong` with the same id next:
    /// proves the session is open and in order.
    pub async fn ping(&mut self, id: &str) {
        self.send_action("$ping", Value::Null, Value::from(id)).await;
        let pong = self.recv_action("$pong").await;
        assert_eq!(pong["id"], id, "{}: $pong with the wrong id: {pong}", self.name());
    }

    /// Asserts that nothing at all (no frame, no close) arrives for `time`.
    pub async fn expect_silence(&mut self, time: Duration) {
        if let Some(incoming) = self.next_incoming(time).await {
            panic!("{}: expected silence for {time:?}, got {}", self.name(), incoming.describe());
        }
    }

    /// Asserts that every client in `clients` is silent for
    /// [`SILENCE`](crate::SILENCE); all are watched at once, so the wait is
    /// paid once.
    pub async fn all_silent(clients: &mut [&mut Client]) {
        let watches = clients.iter_mut().map(|c| c.expect_silence(crate::SILENCE));
        futures_util::future::join_all(watches).await;
    }

    /// Reads until a close frame and asserts its code; text frames before
    /// it are skipped (a slow consumer has many queued). Returns the reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        match self.read_until_closed(CLOSE_TIMEOUT).await {
            Incoming::Close(Some((got, reason))) => {
                assert_eq!(got, code, "{}: closed with {got} {reason:?}, expected {code}", self.name());
                reason
            }
            other => panic!("{}: expected close {code}, got {}", self.name(), other.describe()),
        }
    }

    /// Reads until the connection ends, by a close frame or by the stream
    /// ending without one; returns the close code, if any.
    pub async fn expect_disconnected(&mut self) -> Option<u16> {
        match self.read_until_closed(CLOSE_TIMEOUT).await {
            Incoming::Close(frame) => frame.map(|(code, _)| code),
            _ => None,
        }
    }

    async fn read_until_closed(&mut self, timeout: Duration) -> Incoming {
        assert!(!self.finished, "{}: already closed", self.name());
        let deadline = Instant::now() + timeout;
        let mut skipped = 0usize;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_incoming(left).await {
                Some(Incoming::Text(_)) | Some(Incoming::Binary(_)) => skipped += 1,
                Some(end) => {
                    self.finished = true;
                    return end;
                }
                None => panic!("{}: not closed within {timeout:?} ({skipped} frames read meanwhile)", self.name()),
            }
        }
    }

    /// Reads `$connected`, checks its shape and returns what it says.
    pub async fn connected(&mut self) -> Connected {
        let frame = self.recv().await;
        assert_eq!(frame["action"], "$connected", "first frame must be $connected, got {frame}");
        let details = &frame["details"];
        let conn = details["conn"].as_str().unwrap_or_else(|| panic!("$connected without conn: {frame}"));
        conn.parse::<ConnId>().unwrap_or_else(|e| panic!("$connected with a bad conn id: {e}"));
        let user = match &details["user"] {
            Value::Null => None,
            Value::String(user) => Some(user.clone()),
            other => panic!("$connected user must be a string or null, got {other}"),
        };
        let groups = details["groups"]
            .as_array()
            .unwrap_or_else(|| panic!("$connected groups must be an array: {frame}"))
            .iter()
            .map(|g| g.as_str().expect("group names are strings").to_owned())
            .collect();
        let connected = Connected { conn: conn.to_owned(), user, groups };
        self.connected = Some(connected.clone());
        connected
    }

    /// This connection's id, from `$connected`.
    pub fn conn(&self) -> &str {
        &self.info().conn
    }

    /// What `$connected` said; panics before [`Client::connected`].
    pub fn info(&self) -> &Connected {
        self.connected.as_ref().expect("call connected() first")
    }

    fn name(&self) -> String {
        match &self.connected {
            Some(c) => format!("client {} ({:?})", c.conn, c.user),
            None => "client".to_owned(),
        }
    }
}

async fn read_socket(
    mut stream: SplitStream<Ws>,
    tx: mpsc::UnboundedSender<Incoming>,
    mut paused: watch::Receiver<bool>,
    pings: Arc<AtomicUsize>,
) {
    loop {
        while *paused.borrow_and_update() {
            if paused.changed().await.is_err() {
                return;
            }
        }
        let message = tokio::select! {
            biased;
            changed = paused.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            message = stream.next() => message,
        };
        let incoming = match message {
            Some(Ok(Message::Text(text))) => Incoming::Text(text.as_str().to_owned()),
            Some(Ok(Message::Binary(bytes))) => Incoming::Binary(bytes.to_vec()),
            Some(Ok(Message::Ping(_))) => {
                pings.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                Incoming::Close(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
            }
            Some(Err(e)) => {
                let _ = tx.send(Incoming::End(Some(e.to_string())));
                return;
            }
            None => {
                let _ = tx.send(Incoming::End(None));
                return;
            }
        };
        if tx.send(incoming).is_err() {
            return;
        }
    }
}
