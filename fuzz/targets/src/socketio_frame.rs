//! The Socket.IO decoders: every text frame socket.io-client (or anything
//! else) sends on `/socket.io/`, read as an Engine.IO packet
//! (`herald_proto::socketio::engine::Packet::parse`) and, inside a message,
//! as a Socket.IO packet (`packet::ClientPacket::parse`); and the same text
//! as the handshake's query (`engine::check_handshake`).
//!
//! - Reading never panics; a refusal is a `BadPacket` with a message, and a
//!   refused handshake answers Engine.IO's JSON with code 0 or 5.
//! - A CONNECT's `auth` is a JSON object; a CONNECT elsewhere gets a
//!   `connect_error` naming that namespace, with a JSON body.
//! - Encode → decode: an EVENT written back as Herald writes events
//!   (`event_frame`) reads as the same event name and details, byte for
//!   byte; the ACK Herald writes for its id reads back with that id; a
//!   ping's pong reads as a pong.

use herald_proto::socketio::engine::{self, Packet};
use herald_proto::socketio::packet::{self, ClientPacket, MAIN_NAMESPACE, RESERVED_EVENTS};
use serde_json::Value;
use serde_json::value::RawValue;

pub fn run(data: &[u8]) {
    // WebSocket text and request targets are UTF-8 by the time they are read.
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Err(refused) = engine::check_handshake(Some(text)) {
        let body = json(&refused.body());
        assert!(matches!(body["code"].as_u64(), Some(0 | 5)), "{body}");
    }

    match Packet::parse(text) {
        Ok(Packet::Message(inner)) => message(inner),
        Ok(Packet::Ping(payload)) => assert_eq!(Packet::parse(&engine::pong(payload)), Ok(Packet::Pong)),
        Ok(Packet::Close | Packet::Pong) => {}
        Err(refused) => assert!(!refused.0.is_empty()),
    }
}

fn message(inner: &str) {
    let packet = match ClientPacket::parse(inner) {
        Ok(packet) => packet,
        Err(refused) => return assert!(!refused.0.is_empty()),
    };
    match packet {
        ClientPacket::Connect { auth } => {
            if let Some(auth) = auth {
                assert!(json(auth.get()).is_object(), "auth {}", auth.get());
            }
        }
        ClientPacket::ConnectElsewhere { namespace } => {
            assert_ne!(namespace, MAIN_NAMESPACE);
            let refusal = packet::connect_error(namespace, packet::INVALID_NAMESPACE);
            let body = refusal.strip_prefix(&format!("44{namespace},")).expect("the refusal names the namespace");
            assert_eq!(json(body)["message"], packet::INVALID_NAMESPACE);
        }
        ClientPacket::Event { name, details, ack } => {
            assert!(!RESERVED_EVENTS.contains(&name.as_str()), "{name:?} is reserved");
            // Herald's own event frame for it, as a client would send it.
            let frame = packet::event_frame(&name, details.as_deref());
            let Ok(Packet::Message(back)) = Packet::parse(&frame) else { panic!("{frame:?} is no message") };
            match ClientPacket::parse(back) {
                Ok(ClientPacket::Event { name: back_name, details: back_details, ack: None }) => {
                    assert_eq!(back_name, name);
                    assert_eq!(raw(back_details.as_deref()), raw(details.as_deref()), "details byte for byte");
                }
                other => panic!("{frame:?} read back as {other:?}"),
            }
            if let Some(id) = ack {
                acks(id, details.as_deref());
            }
        }
        ClientPacket::Disconnect | ClientPacket::Ack { .. } => {}
    }
}

/// The acknowledgements Herald writes for emit `id` are JSON arrays after
/// the id, and read back (as a client's ACK would) with that id.
fn acks(id: u64, reply: Option<&RawValue>) {
    for frame in [packet::ack_frame(id, reply), packet::ack_error_frame(id, 400, "bad \"request\"")] {
        let inner = frame.strip_prefix('4').expect("an Engine.IO message");
        match ClientPacket::parse(inner) {
            Ok(ClientPacket::Ack { id: back }) => assert_eq!(back, id),
            other => panic!("{frame:?} read back as {other:?}"),
        }
        let arguments = inner.trim_start_matches(|c: char| c.is_ascii_digit());
        assert!(json(arguments).is_array(), "{frame:?}");
    }
}

fn raw(details: Option<&RawValue>) -> Option<&str> {
    details.map(RawValue::get)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
