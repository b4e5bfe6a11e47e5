//! WebSocket framing on `/ws`, as RFC 6455 has it: fragmented messages,
//! control frames between fragments, the closing handshake, size limits
//! checked from the frame header, and the frames a client must not send.
//! Those fail the connection the way the RFC prefers (section 7.1.7): a
//! close frame saying why (1002, or 1007 for text that is not UTF-8), then
//! the end of the TCP connection; and nothing else is harmed: a session
//! opened before and one opened after are served.
//!
//! Valid traffic is sent by tokio-tungstenite, a WebSocket implementation
//! that is not the edge's. What it will not produce (an unmasked frame, RSV
//! bits, a reserved opcode, bytes written one at a time) is written on a
//! plain TCP socket by [`RawClient`], which does the upgrade itself and
//! reads the edge's frames strictly, so that how a connection ends (close
//! code, EOF or reset) is seen exactly.
//!
//! Framing happens below the bus, so these tests run on the in-process bus
//! only. The edge's own pings are put off (60 s) so that the frames seen
//! are exactly the ones a test provoked.

use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use herald_tests::{BusSetup, RECV_TIMEOUT, TestEdge, TestEdgeBuilder, Token};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// --- frames, as bytes --------------------------------------------------

/// The first byte of a frame: FIN, RSV1, and the opcodes of RFC 6455 5.2.
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// The masking key of every raw client frame (RFC 6455's own example).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The header of a masked client frame: `first` (FIN, RSV and opcode), the
/// mask bit and `len` in its shortest form, then [`MASK`]. The payload,
/// masked with [`masked`], follows.
fn header(first: u8, len: u64) -> Vec<u8> {
    let mut bytes = vec![first];
    match len {
        0..=125 => bytes.push(0x80 | len as u8),
        126..=0xffff => {
            bytes.push(0x80 | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            bytes.push(0x80 | 127);
            bytes.extend_from_slice(&len.to_be_bytes());
        }
    }
    bytes.extend_from_slice(&MASK);
    bytes
}

/// `payload` masked with [`MASK`], from its first byte.
fn masked(payload: &[u8]) -> Vec<u8> {
    payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]).collect()
}

/// A whole masked client frame, as every client frame must be.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header(first, payload.len() as u64);
    bytes.extend(masked(payload));
    bytes
}

/// A frame without a mask, which only a server may send.
fn unmasked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut bytes = vec![first, payload.len() as u8];
    bytes.extend_from_slice(payload);
    bytes
}

/// A close frame's payload: the code, then the reason's bytes.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// `$ping` with `id`, as text.
fn ping_action(id: &str) -> String {
    serde_json::json!({"action": "$ping", "id": id}).to_string()
}

// --- the raw client ----------------------------------------------------

/// A frame the edge sent, checked as a client must (RFC 6455 5.1, 5.5):
/// unmasked, no RSV bit, control frames unfragmented and at most 125 bytes.
#[derive(Debug)]
struct ServerFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// How a connection ended, after its last frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The edge closed its side cleanly (FIN), between two frames.
    Eof,
    /// The connection was reset (RST).
    Reset,
    /// The connection ended inside a frame.
    Truncated,
    /// Another socket error.
    Error(String),
    /// Still open after [`RECV_TIMEOUT`].
    StillOpen,
}

/// What a connection showed, in order, until it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A close frame and its code (`None`: an empty close frame).
    Close(Option<u16>),
    /// Any other frame (pings and pongs are left out).
    Frame(String),
    End(End),
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Close(Some(code)) => write!(f, "close {code}"),
            Seen::Close(None) => write!(f, "close without a code"),
            Seen::Frame(frame) => write!(f, "{frame}"),
            Seen::End(end) => write!(f, "{end:?}"),
        }
    }
}

/// A WebSocket client on a plain TCP socket: it writes whatever bytes it is
/// given, and reads the edge's frames one by one.
struct RawClient {
    stream: TcpStream,
    /// Bytes read and not yet taken as frames.
    read: Vec<u8>,
    /// A close frame was sent: one from the edge is its answer, not to be
    /// answered again.
    sent_close: bool,
}

impl RawClient {
    /// Upgrades a connection to `edge` as `user`, and reads `$connected`.
    async fn open(edge: &TestEdge, user: &str) -> RawClient {
        let stream = TcpStream::connect(edge.addr()).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut client = RawClient { stream, read: Vec::new(), sent_close: false };
        let token = Token::user(user).hs256();
        let request = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            edge.addr()
        );
        client.send(request.as_bytes()).await;
        let response = loop {
            if let Some(end) = client.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let response = String::from_utf8(client.read.drain(..end + 4).collect()).expect("HTTP is text");
                break response;
            }
            assert!(client.fill().await.unwrap_or(0) > 0, "the connection ended during the upgrade");
        };
        assert!(response.starts_with("HTTP/1.1 101"), "upgrade refused: {response}");
        // RFC 6455 1.3's example key and its accept value.
        assert!(
            response.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "wrong accept key: {response}"
        );
        let connected = client.recv_text().await;
        assert!(connected.contains("\"$connected\""), "expected $connected first: {connected}");
        client
    }

    /// Writes `bytes`, which start at a frame boundary (so a close frame
    /// sent is noted).
    async fn send(&mut self, bytes: &[u8]) {
        self.sent_close |= bytes.first().is_some_and(|first| first & 0x0f == CLOSE);
        self.stream.write_all(bytes).await.unwrap_or_else(|e| panic!("cannot write {} bytes: {e}", bytes.len()));
    }

    /// Reads more bytes: how many (0 at EOF).
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut buf = [0u8; 8192];
        let n = tokio::time::timeout(RECV_TIMEOUT, self.stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "nothing to read"))??;
        self.read.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Makes sure `n` bytes are read, or says how the connection ended.
    async fn need(&mut self, n: usize) -> Result<(), End> {
        while self.read.len() < n {
            match self.fill().await {
                Ok(0) if self.read.is_empty() => return Err(End::Eof),
                Ok(0) => return Err(End::Truncated),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::TimedOut => return Err(End::StillOpen),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Err(End::Reset),
                Err(e) => return Err(End::Error(e.to_string())),
            }
        }
        Ok(())
    }

    /// The edge's next frame, checked, or how the connection ended.
    async fn next_frame(&mut self) -> Result<ServerFrame, End> {
        self.need(2).await?;
        let (first, second) = (self.read[0], self.read[1]);
        assert_eq!(second & 0x80, 0, "the edge masked a frame: {:02x?}", &self.read[..2]);
        assert_eq!(first & 0x70, 0, "the edge set an RSV bit: {first:#04x}");
        let (len, at) = match second & 0x7f {
            126 => {
                self.need(4).await?;
                (u64::from(u16::from_be_bytes([self.read[2], self.read[3]])), 4)
            }
            127 => {
                self.need(10).await?;
                (u64::from_be_bytes(self.read[2..10].try_into().unwrap()), 10)
            }
            len => (u64::from(len), 2),
        };
        let end = at + usize::try_from(len).unwrap();
        self.need(end).await?;
        let frame = ServerFrame { fin: first & FIN != 0, opcode: first & 0x0f, payload: self.read[at..end].to_vec() };
        self.read.drain(..end);
        if frame.opcode >= 0x8 {
            assert!(frame.fin, "the edge fragmented a control frame: {frame:?}");
            assert!(frame.payload.len() <= 125, "the edge sent a control frame of {len} bytes");
        }
        Ok(frame)
    }

    /// The next frame, which must be a whole text frame.
    async fn recv_text(&mut self) -> String {
        match self.next_frame().await {
            Ok(ServerFrame { fin: true, opcode: TEXT, payload }) => String::from_utf8(payload).expect("UTF-8"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until the connection ends, answering a close frame as a client
    /// does (with one of its own, unless it sent one: RFC 6455 5.5.1), and
    /// returns what was seen: for a connection the edge failed, the RFC's
    /// preferred `[Close(Some(code)), End(Eof)]`.
    async fn ending(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            match self.next_frame().await {
                Ok(frame) if frame.opcode == PING || frame.opcode == PONG => {}
                Ok(frame) if frame.opcode == CLOSE => {
                    let code =
                        (frame.payload.len() >= 2).then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                    if !self.sent_close {
                        self.sent_close = true;
                        // A write to a connection the edge already closed may fail: that is fine.
                        let _ = self.stream.write_all(&frame_of_close(code)).await;
                    }
                    seen.push(Seen::Close(code));
                }
                Ok(frame) => seen.push(Seen::Frame(format!(
                    "frame (opcode {:#x}, fin {}) {:?}",
                    frame.opcode,
                    frame.fin,
                    String::from_utf8_lossy(&frame.payload)
                ))),
                Err(end) => {
                    seen.push(Seen::End(end));
                    return seen;
                }
            }
        }
    }
}

/// Whether `seen` is a connection failed as RFC 6455 prefers (7.1.7): a
/// close frame with `code`, then the end of the TCP connection, the edge
/// closing its side (FIN), not resetting it (a reset may overtake the close
/// frame, or discard it unread). The client answers the close frame
/// (5.5.1): an edge that closes its socket with that answer unread resets
/// the connection, unless it shut its side down first (the FIN is then
/// read before the reset) or read the answer.
fn failed_with(seen: &[Seen], code: u16) -> Result<(), String> {
    if seen == [Seen::Close(Some(code)), Seen::End(End::Eof)] {
        return Ok(());
    }
    let described = seen.iter().map(Seen::to_string).collect::<Vec<_>>().join(", then ");
    Err(format!("expected close {code} then EOF, got: {described}"))
}

/// A client's close frame with `code`, or an empty one.
fn frame_of_close(code: Option<u16>) -> Vec<u8> {
    frame(FIN | CLOSE, &code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default())
}

// --- edges and tungstenite clients ----------------------------------------

/// An edge whose own pings are put off, so that a connection carries only
/// what the test sends and what it provokes.
fn edge(setup: &BusSetup) -> TestEdgeBuilder {
    TestEdge::builder(setup).timing(|t| t.ping_interval = Duration::from_secs(60))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A tokio-tungstenite client of `edge`, as `user`, past `$connected`.
async fn tungstenite(edge: &TestEdge, user: &str) -> Ws {
    let url = edge.ws_url(Some(&Token::user(user).hs256()));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
    let connected = next_message(&mut ws).await;
    assert!(matches!(&connected, Message::Text(t) if t.contains("\"$connected\"")), "{connected:?}");
    ws
}

/// The next message tungstenite reads, within [`RECV_TIMEOUT`].
async fn next_message(ws: &mut Ws) -> Message {
    match tokio::time::timeout(RECV_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(Some(Err(e))) => panic!("read error: {e}"),
        Ok(None) => panic!("the connection ended"),
        Err(_) => panic!("nothing within {RECV_TIMEOUT:?}"),
    }
}

/// A text message as JSON; panics on any other message.
fn json_of(message: &Message) -> Value {
    match message {
        Message::Text(text) => serde_json::from_str(text).expect("JSON"),
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn text_fragment(payload: &str, opcode: Data, fin: bool) -> Message {
    Message::Frame(Frame::message(payload.as_bytes().to_vec(), OpCode::Data(opcode), fin))
}

/// Sends `bytes` first thing on a new connection of its own, and expects
/// the edge to fail that connection with `code`; a session opened before
/// it and one opened after it must be served.
async fn fails_with(bytes: &[u8], code: u16) {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    fails_with_on(&edge, bytes, code).await;
}

async fn fails_with_on(edge: &TestEdge, bytes: &[u8], code: u16) {
    let mut before = edge.user("before", &[]).await;
    let mut offender = RawClient::open(edge, "offender").await;
    offender.send(bytes).await;
    let seen = offender.ending().await;
    // The others are checked before the offender's ending is judged, so
    // that a test failing on that ending still proved them unharmed.
    before.ping("still-served").await;
    edge.user("after", &[]).await.ping("new-session").await;
    failed_with(&seen, code).unwrap_or_else(|e| panic!("{e}"));
}

// --- valid traffic -------------------------------------------------------

/// A message may come in fragments (RFC 6455 5.4); it is answered as the
/// whole would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_action_in_three_fragments_is_answered_like_one_frame() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut ws = tungstenite(&edge, "alice").await;
    ws.send(text_fragment(r#"{"action":"$pi"#, Data::Text, false)).await.unwrap();
    ws.send(text_fragment(r#"ng","id":"fr"#, Data::Continue, false)).await.unwrap();
    ws.send(text_fragment(r#"agments"}"#, Data::Continue, true)).await.unwrap();
    let pong = json_of(&next_message(&mut ws).await);
    assert_eq!(pong["action"], "$pong", "{pong}");
    assert_eq!(pong["id"], "fragments", "{pong}");
}

/// A pong carries the ping's payload (RFC 6455 5.5.3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_with_a_pong_carrying_its_payload() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut ws = tungstenite(&edge, "alice").await;
    ws.send(Message::Ping(b"hello"[..].into())).await.unwrap();
    match next_message(&mut ws).await {
        Message::Pong(payload) => assert_eq!(&payload[..], b"hello"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Binary bytes, and the longest a control frame may carry.
    let payload: Vec<u8> = (0..125u8).map(|b| b.wrapping_mul(37)).collect();
    ws.send(Message::Ping(payload.clone().into())).await.unwrap();
    match next_message(&mut ws).await {
        Message::Pong(got) => assert_eq!(&got[..], &payload[..]),
        other => panic!("expected a pong, got {other:?}"),
    }
}

/// Control frames may come between a message's fragments (RFC 6455 5.4):
/// the ping is answered, and so is the message. In which order the pong and
/// the reply come is not promised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_between_fragments_is_answered_and_so_is_the_message() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut ws = tungstenite(&edge, "alice").await;
    ws.send(text_fragment(r#"{"action":"$ping","#, Data::Text, false)).await.unwrap();
    ws.send(Message::Ping(b"amid"[..].into())).await.unwrap();
    ws.send(text_fragment(r#""id":"around"}"#, Data::Continue, true)).await.unwrap();
    let (mut pong, mut reply) = (None, None);
    for _ in 0..2 {
        match next_message(&mut ws).await {
            Message::Pong(payload) => pong = Some(payload),
            message => reply = Some(json_of(&message)),
        }
    }
    assert_eq!(pong.as_deref(), Some(&b"amid"[..]), "the ping between fragments was not answered");
    let reply = reply.expect("the fragmented message was not answered");
    assert_eq!(reply["action"], "$pong", "{reply}");
    assert_eq!(reply["id"], "around", "{reply}");
}

/// The closing handshake (RFC 6455 5.5.1, 7.1.1): a client's close is
/// answered with a close (echoing its code), then the edge, being the
/// server, closes the TCP connection first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_echoed_then_the_connection_ends() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut ws = tungstenite(&edge, "alice").await;
    ws.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye now".into() }))).await.unwrap();
    match next_message(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal, "{frame:?}"),
        other => panic!("expected the close echoed, got {other:?}"),
    }
    // tungstenite ends the stream (None) at EOF after the handshake; a
    // reset is an error.
    match tokio::time::timeout(RECV_TIMEOUT, ws.next()).await {
        Ok(None) => {}
        Ok(Some(other)) => panic!("expected the end of the connection after the close, got {other:?}"),
        Err(_) => panic!("the connection was still open {RECV_TIMEOUT:?} after the closing handshake"),
    }
}

/// A message of more than 16 KiB (under the limit) in one frame is read
/// whole: 16-bit lengths and payloads longer than one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_16_kib_in_one_frame_is_answered() {
    let setup = BusSetup::local();
    let edge = edge(&setup).max_message_bytes(64 * 1024).spawn().await;
    let mut ws = tungstenite(&edge, "alice").await;
    let id = "x".repeat(40_000);
    ws.send(Message::text(ping_action(&id))).await.unwrap();
    let pong = json_of(&next_message(&mut ws).await);
    assert_eq!(pong["action"], "$pong");
    assert_eq!(pong["id"], id.as_str(), "the long id came back changed");
}

/// A frame that arrives one byte per TCP segment is put together: the
/// decoder keeps its place in the header, the mask and the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_written_one_byte_at_a_time_is_answered() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut raw = RawClient::open(&edge, "alice").await;
    let id = "b".repeat(200 - ping_action("").len());
    let text = ping_action(&id);
    assert_eq!(text.len(), 200);
    for byte in frame(FIN | TEXT, text.as_bytes()) {
        raw.send(&[byte]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pong: Value = serde_json::from_str(&raw.recv_text().await).unwrap();
    assert_eq!(pong["action"], "$pong", "{pong}");
    assert_eq!(pong["id"], id.as_str(), "{pong}");
}

/// Many frames in one TCP write are each read, and answered in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_frames_in_one_write_get_fifty_answers_in_order() {
    let setup = BusSetup::local();
    let edge = edge(&setup).rate(10_000, 1_000, 10).spawn().await;
    let mut raw = RawClient::open(&edge, "alice").await;
    let burst: Vec<u8> = (0..50).flat_map(|i| frame(FIN | TEXT, ping_action(&format!("p{i}")).as_bytes())).collect();
    raw.send(&burst).await;
    for i in 0..50 {
        let pong: Value = serde_json::from_str(&raw.recv_text().await).unwrap();
        assert_eq!(pong["action"], "$pong", "{pong}");
        assert_eq!(pong["id"], format!("p{i}"), "answers out of order");
    }
}

// --- size limits ---------------------------------------------------------

/// A frame whose header announces more than the limit is refused from the
/// header: 1009, without waiting for (or buffering) its payload, which this
/// client never sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_announced_over_the_limit_closes_with_1009_before_its_payload_arrives() {
    let setup = BusSetup::local();
    let edge = edge(&setup).max_message_bytes(1024).spawn().await;
    let mut bytes = header(FIN | TEXT, 1 << 20);
    bytes.extend(masked(ping_action(&"x".repeat(100)).as_bytes()));
    fails_with_on(&edge, &bytes, 1009).await;
}

/// The limit is on messages, not frames: fragments that together pass it
/// close with 1009, as soon as they do (the final fragment never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_that_together_pass_the_limit_close_with_1009() {
    let setup = BusSetup::local();
    let edge = edge(&setup).max_message_bytes(1024).spawn().await;
    let text = ping_action(&"y".repeat(1200));
    let (first, second) = text.as_bytes().split_at(600);
    let mut bytes = frame(TEXT, first);
    bytes.extend(frame(CONTINUATION, &second[..600]));
    fails_with_on(&edge, &bytes, 1009).await;
}

// --- frames a client must not send -----------------------------------------

/// Every client frame is masked (RFC 6455 5.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmasked_client_frame_fails_the_connection_with_1002() {
    fails_with(&unmasked_frame(FIN | TEXT, ping_action("u").as_bytes()), 1002).await;
}

/// RSV bits need an extension, and none was negotiated (RFC 6455 5.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_with_rsv1_set_fails_the_connection_with_1002() {
    fails_with(&frame(FIN | RSV1 | TEXT, ping_action("r").as_bytes()), 1002).await;
}

/// Opcodes 0x3-0x7 are reserved (RFC 6455 5.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_opcode_fails_the_connection_with_1002() {
    fails_with(&frame(FIN | 0x3, ping_action("o").as_bytes()), 1002).await;
}

/// A continuation frame continues a message, and none was started (5.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_with_no_message_started_fails_the_connection_with_1002() {
    fails_with(&frame(FIN | CONTINUATION, ping_action("c").as_bytes()), 1002).await;
}

/// Messages are not interleaved: a new data frame while one is unfinished
/// is an error (5.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_text_frame_inside_a_fragmented_message_fails_the_connection_with_1002() {
    let mut bytes = frame(TEXT, br#"{"action":"#);
    bytes.extend(frame(FIN | TEXT, ping_action("n").as_bytes()));
    fails_with(&bytes, 1002).await;
}

/// Control frames are never fragmented (5.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_ping_fails_the_connection_with_1002() {
    fails_with(&frame(PING, b"abc"), 1002).await;
}

/// Control frames carry at most 125 bytes (5.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_of_126_bytes_fails_the_connection_with_1002() {
    fails_with(&frame(FIN | PING, &[b'p'; 126]), 1002).await;
}

/// Text is UTF-8 (5.6, 8.1); 1007 says the data did not match its type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_fails_the_connection_with_1007() {
    fails_with(&frame(FIN | TEXT, &[0xff, 0xfe]), 1007).await;
}

/// UTF-8 is checked over the message, not each fragment: a character
/// split between two fragments is fine, and a sequence begun in one
/// fragment and broken in the next is invalid (5.6, 8.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_split_across_fragments_fails_the_connection_with_1007() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    // "€" (e2 82 ac) cut after its second byte.
    let mut raw = RawClient::open(&edge, "split").await;
    let text = ping_action("€");
    let cut = text.find('€').unwrap() + 2;
    let mut valid = frame(TEXT, &text.as_bytes()[..cut]);
    valid.extend(frame(FIN | CONTINUATION, &text.as_bytes()[cut..]));
    raw.send(&valid).await;
    let pong: Value = serde_json::from_str(&raw.recv_text().await).unwrap();
    assert_eq!(pong["id"], "€", "{pong}");
    // e2 82 begun in one fragment, then 28 ('('), which cannot continue it.
    let mut invalid = frame(TEXT, &[br#"{"action":"$ping","id":""#.as_slice(), &[0xe2, 0x82]].concat());
    invalid.extend(frame(FIN | CONTINUATION, br#"("}"#));
    fails_with_on(&edge, &invalid, 1007).await;
}

/// A close frame may not carry codes below 1000, nor those reserved for
/// reporting (1005 no code, 1006 abnormal, 1015 TLS), nor 1004 and the
/// unassigned 1016-2999 (RFC 6455 7.4.1, 7.4.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_frame_with_a_code_no_endpoint_may_send_fails_the_connection_with_1002() {
    let setup = BusSetup::local();
    let edge = edge(&setup).spawn().await;
    let mut before = edge.user("before", &[]).await;
    let mut wrong = Vec::new();
    for code in [1005, 999, 0, 1004, 1006, 1015, 1016, 2999] {
        let mut offender = RawClient::open(&edge, "offender").await;
        offender.send(&frame(FIN | CLOSE, &close_payload(code, b"bad code"))).await;
        if let Err(e) = failed_with(&offender.ending().await, 1002) {
            wrong.push(format!("close code {code}: {e}"));
        }
        before.ping(&format!("after-{code}")).await;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    edge.user("after", &[]).await.ping("new-session").await;
}

/// A close frame's payload is empty, or a 2-byte code and a reason: one
/// byte is neither (5.5.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_frame_with_a_1_byte_payload_fails_the_connection_with_1002() {
    fails_with(&frame(FIN | CLOSE, &[0x03]), 1002).await;
}

/// A close reason is UTF-8 (5.5.1); one that is not fails the connection
/// as any invalid UTF-8 does (8.1), with 1007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_reason_that_is_not_utf8_fails_the_connection_with_1007() {
    fails_with(&frame(FIN | CLOSE, &close_payload(1000, &[0xff, 0xfe])), 1007).await;
}
