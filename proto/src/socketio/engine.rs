//! Engine.IO 4 over WebSocket: the handshake query, and one packet per text
//! frame whose first character is its type.
//!
//! In Engine.IO 4 the server pings (`2`) and the client answers (`3`); a
//! client that connects with the WebSocket transport directly never sends
//! the `upgrade`/`noop` packets of the polling-to-WebSocket upgrade, so they
//! are refused like any other unexpected packet.

use serde::Serialize;
use thiserror::Error;

/// The Engine.IO protocol version Herald speaks.
pub const PROTOCOL: &str = "4";

/// The server's ping; the client answers [`PONG`].
pub const PING: &str = "2";

/// The client's answer to [`PING`].
pub const PONG: &str = "3";

/// Why an upgrade request to `/socket.io/` is refused, with Engine.IO's
/// error code and a message saying what to change; the edge answers 400
/// with [`HandshakeError::body`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("Herald serves Socket.IO over WebSocket only: set transports: [\"websocket\"] in the client's options")]
    Polling,
    #[error("unknown transport {0:?}: Herald serves Socket.IO over WebSocket only (transports: [\"websocket\"])")]
    UnknownTransport(String),
    #[error("unsupported Engine.IO version {0:?}: Herald speaks EIO=4 (socket.io-client 3 and 4)")]
    Version(String),
}

impl HandshakeError {
    /// Engine.IO's numeric error code (0 transport unknown, 5 unsupported
    /// protocol version), as its servers send it.
    pub fn code(&self) -> u8 {
        match self {
            HandshakeError::Polling | HandshakeError::UnknownTransport(_) => 0,
            HandshakeError::Version(_) => 5,
        }
    }

    /// The JSON body Engine.IO servers answer a refused handshake with.
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.code(), "message": self.to_string() }).to_string()
    }
}

/// Checks the query of `GET /socket.io/?EIO=4&transport=websocket`.
pub fn check_handshake(query: Option<&str>) -> Result<(), HandshakeError> {
    let mut version = None;
    let mut transport = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "EIO" => version = Some(value.into_owned()),
            "transport" => transport = Some(value.into_owned()),
            _ => {}
        }
    }
    match transport.as_deref() {
        Some("websocket") => {}
        Some("polling") | None => return Err(HandshakeError::Polling),
        Some(other) => return Err(HandshakeError::UnknownTransport(other.to_owned())),
    }
    match version {
        Some(v) if v == PROTOCOL => Ok(()),
        other => Err(HandshakeError::Version(other.unwrap_or_default())),
    }
}

/// An Engine.IO packet a client sent, borrowed from its frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// The client is leaving.
    Close,
    /// A ping from the client (clients of other versions send them); the
    /// payload is echoed in the pong.
    Ping(&'a str),
    /// The answer to the server's ping.
    Pong,
    /// A Socket.IO packet, for [`super::packet::ClientPacket::parse`].
    Message(&'a str),
}

/// Why a frame is not an Engine.IO packet a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct BadPacket(pub &'static str);

impl<'a> Packet<'a> {
    /// Reads one WebSocket text frame.
    pub fn parse(frame: &'a str) -> Result<Packet<'a>, BadPacket> {
        let mut chars = frame.chars();
        let kind = chars.next().ok_or(BadPacket("an empty frame is not an Engine.IO packet"))?;
        let rest = chars.as_str();
        match kind {
            '1' => Ok(Packet::Close),
            '2' => Ok(Packet::Ping(rest)),
            '3' => Ok(Packet::Pong),
            '4' => Ok(Packet::Message(rest)),
            '0' => Err(BadPacket("only the server opens an Engine.IO session")),
            '5' | '6' => Err(BadPacket("no transport upgrade: the session is WebSocket from the start")),
            _ => Err(BadPacket("not an Engine.IO packet (the first character is its type, 0 to 6)")),
        }
    }
}

/// What the server says in its `open` packet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Open<'a> {
    /// The Engine.IO session id: the connection id.
    pub sid: &'a str,
    /// Always empty: the session is WebSocket from the start.
    pub upgrades: [&'a str; 0],
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// The largest frame the server reads, in bytes.
    pub max_payload: usize,
}

impl Open<'_> {
    /// The `open` packet: `0{"sid", "upgrades", "pingInterval", ...}`.
    pub fn frame(&self) -> String {
        let mut out = String::from("0");
        out.push_str(&serde_json::to_string(self).expect("an open packet serialises"));
        out
    }
}

/// The pong answering a client's ping with `payload`.
pub fn pong(payload: &str) -> String {
    format!("{PONG}{payload}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_wants_websocket_and_eio_4() {
        assert_eq!(check_handshake(Some("EIO=4&transport=websocket")), Ok(()));
        assert_eq!(check_handshake(Some("transport=websocket&EIO=4&t=abc")), Ok(()));
        assert_eq!(check_handshake(Some("EIO=4&transport=polling")), Err(HandshakeError::Polling));
        assert_eq!(check_handshake(Some("EIO=4")), Err(HandshakeError::Polling));
        assert_eq!(check_handshake(None), Err(HandshakeError::Polling));
        assert_eq!(
            check_handshake(Some("EIO=4&transport=webtransport")),
            Err(HandshakeError::UnknownTransport("webtransport".into()))
        );
        assert_eq!(check_handshake(Some("EIO=3&transport=websocket")), Err(HandshakeError::Version("3".into())));
        assert_eq!(check_handshake(Some("transport=websocket")), Err(HandshakeError::Version(String::new())));
    }

    #[test]
    fn a_refused_handshake_answers_as_engine_io_servers_do() {
        let body: serde_json::Value = serde_json::from_str(&HandshakeError::Polling.body()).unwrap();
        assert_eq!(body["code"], 0);
        assert!(body["message"].as_str().unwrap().contains("transports: [\"websocket\"]"));
        let body: serde_json::Value = serde_json::from_str(&HandshakeError::Version("3".into()).body()).unwrap();
        assert_eq!(body["code"], 5);
    }

    #[test]
    fn packets_by_their_first_character() {
        assert_eq!(Packet::parse("1"), Ok(Packet::Close));
        assert_eq!(Packet::parse("2probe"), Ok(Packet::Ping("probe")));
        assert_eq!(Packet::parse("3"), Ok(Packet::Pong));
        assert_eq!(Packet::parse("42[\"a\"]"), Ok(Packet::Message("2[\"a\"]")));
        assert!(Packet::parse("").is_err());
        assert!(Packet::parse("0{}").is_err());
        assert!(Packet::parse("5").is_err());
        assert!(Packet::parse("x").is_err());
        assert!(Packet::parse("é").is_err());
    }

    #[test]
    fn the_open_packet_is_what_socket_io_client_reads() {
        let open = Open { sid: "e1a2", upgrades: [], ping_interval: 25000, ping_timeout: 20000, max_payload: 65536 };
        assert_eq!(
            open.frame(),
            r#"0{"sid":"e1a2","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}"#
        );
        assert_eq!(pong("probe"), "3probe");
    }
}
