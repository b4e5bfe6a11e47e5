//! The Socket.IO decoders: every text frame socket.io-client (or anything
//! else) sends on `/socket.io/`, read as an Engine.IO packet
//! (`herald_proto::socketio::engine::Packet::parse`) and, inside a message,
//! as a Socket.IO packet (`packet::ClientPacket::parse`, `ack_id_of`, a
//! CONNECT's `auth_token`); the same text as the handshake's query
//! (`engine::check_handshake`) and as a Herald frame a backend published
//! (`packet::event_from_herald`).
//!
//! - Reading never panics; a refusal is a `BadPacket` with a message, and a
//!   refused handshake answers Engine.IO's JSON with code 0 or 5.
//! - A CONNECT's `auth` is a JSON object, whose token is a string or a
//!   refusal; a CONNECT elsewhere gets a `connect_error` naming that
//!   namespace, with a JSON body.
//! - Encode → decode: an EVENT written back as Herald writes events
//!   (`event_frame`) reads as the same event name and details, byte for
//!   byte; the ack id read from a refused emit is the one a read EVENT
//!   has; the ACKs Herald writes for its id read back with that id; a
//!   ping's pong reads as a pong; a Herald frame made an event reads back
//!   as its action and details.

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
    if let Ok(event) = packet::event_from_herald(text) {
        herald_frame(text, &event);
    }

    match Packet::parse(text) {
        Ok(Packet::Message(inner)) => message(inner),
        Ok(Packet::Ping(payload)) => assert_eq!(Packet::parse(&engine::pong(payload)), Ok(Packet::Pong)),
        Ok(Packet::Close | Packet::Pong) => {}
        Err(refused) => assert!(!refused.0.is_empty()),
    }
}

fn message(inner: &str) {
    let ack_id = packet::ack_id_of(inner);
    let packet = match ClientPacket::parse(inner) {
        Ok(packet) => packet,
        Err(refused) => return assert!(!refused.0.is_empty()),
    };
    match packet {
        ClientPacket::Connect { auth } => {
            if let Some(auth) = auth {
                assert!(json(auth.get()).is_object(), "auth {}", auth.get());
                match packet::auth_token(auth) {
                    Ok(token) => assert_eq!(token.as_deref(), json(auth.get())["token"].as_str()),
                    Err(refused) => assert!(!refused.0.is_empty()),
                }
            }
        }
        ClientPacket::ConnectElsewhere { namespace } => {
            assert_ne!(namespace, MAIN_NAMESPACE);
            let refusal = packet::connect_error(namespace, packet::INVALID_NAMESPACE, Some(403));
            let body = refusal.strip_prefix(&format!("44{namespace},")).expect("the refusal names the namespace");
            assert_eq!(json(body)["message"], packet::INVALID_NAMESPACE);
            assert_eq!(json(body)["data"]["code"], 403);
        }
        ClientPacket::Event { name, details, ack } => {
            assert!(!RESERVED_EVENTS.contains(&name.as_str()), "{name:?} is reserved");
            assert_eq!(ack_id, ack, "the ack id a refused emit would be answered with");
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

/// A Herald frame that became an event reads back as one with the frame's
/// action and details (unless socket.io reserves the name).
fn herald_frame(frame: &str, event: &str) {
    let herald = json(frame);
    let action = herald["action"].as_str().expect("a frame made an event has a string action");
    let Ok(Packet::Message(inner)) = Packet::parse(event) else { panic!("{event:?} is no message") };
    match ClientPacket::parse(inner) {
        Ok(ClientPacket::Event { name, details, ack: None }) => {
            assert_eq!(name, action);
            let details: Option<Value> = details.map(|d| json(d.get()));
            // `"details": null` is no details.
            assert_eq!(details.as_ref(), herald.get("details").filter(|d| !d.is_null()), "{event:?}");
        }
        Err(_) if RESERVED_EVENTS.contains(&action) => {}
        other => panic!("{event:?} read back as {other:?}"),
    }
}

fn raw(details: Option<&RawValue>) -> Option<&str> {
    details.map(RawValue::get)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
