//! Socket.IO 5 packets: `<type>[<namespace>,][<ack id>][<JSON>]`, inside an
//! Engine.IO message.
//!
//! A client's packets are read by [`ClientPacket::parse`]; the packets the
//! server sends are written by the functions below as whole WebSocket text
//! frames (the Engine.IO `4` included), ready to share between receivers.
//!
//! `socket.emit(event, ...args, ack)` is the client action `event`: no
//! argument is no details, one argument is the details, several are the
//! details as a JSON array of them. Event names are strings (socket.io
//! allows numbers, Herald's actions are names), and the names socket.io
//! itself reserves are refused as its own parser refuses them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// The main namespace, the only one Herald serves.
pub const MAIN_NAMESPACE: &str = "/";

/// Event names socket.io reserves (`socket.io-parser`'s `RESERVED_EVENTS`).
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// The message of the `connect_error` for a namespace other than `/`, as
/// socket.io servers word it.
pub const INVALID_NAMESPACE: &str = "Invalid namespace";

/// A Socket.IO packet a client sent, read.
#[derive(Debug)]
pub enum ClientPacket<'a> {
    /// CONNECT to the main namespace, with the client's `auth` object.
    Connect { auth: Option<&'a RawValue> },
    /// CONNECT to another namespace: answered with a `connect_error`.
    ConnectElsewhere { namespace: &'a str },
    /// DISCONNECT: the client leaves the namespace (and so the session).
    Disconnect,
    /// EVENT: a client action.
    Event {
        /// The action's name.
        name: String,
        /// The emit's arguments as the action's details.
        details: Option<Box<RawValue>>,
        /// Present when the client waits for an acknowledgement: the reply
        /// goes back in the ACK with this id.
        ack: Option<u64>,
    },
    /// ACK of a server emit. Herald never asks for one; read so that it
    /// can be ignored rather than refused.
    Ack { id: u64 },
}

/// Why a client packet cannot be used; the text goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct BadPacket(pub String);

fn bad(message: impl Into<String>) -> BadPacket {
    BadPacket(message.into())
}

impl<'a> ClientPacket<'a> {
    /// Reads the Socket.IO packet inside an Engine.IO message.
    pub fn parse(packet: &'a str) -> Result<ClientPacket<'a>, BadPacket> {
        let kind = packet.as_bytes().first().copied().ok_or_else(|| bad("an empty Socket.IO packet"))?;
        if !kind.is_ascii_digit() {
            return Err(bad("not a Socket.IO packet (the first character is its type, 0 to 6)"));
        }
        let mut rest = &packet[1..];
        if matches!(kind, b'5' | b'6') {
            return Err(bad("binary attachments are not supported: send JSON"));
        }
        let namespace = match rest.strip_prefix('/') {
            Some(_) => {
                let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
                rest = after;
                namespace
            }
            None => MAIN_NAMESPACE,
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = match digits {
            0 => None,
            _ => Some(rest[..digits].parse::<u64>().map_err(|_| bad("an ack id beyond 2^64"))?),
        };
        rest = &rest[digits..];
        let payload = match rest {
            "" => None,
            json => Some(
                serde_json::from_str::<&RawValue>(json).map_err(|e| bad(format!("the payload is not JSON: {e}")))?,
            ),
        };

        if kind == b'0' {
            if namespace != MAIN_NAMESPACE {
                return Ok(ClientPacket::ConnectElsewhere { namespace });
            }
            if payload.is_some_and(|auth| !auth.get().starts_with('{')) {
                return Err(bad("the CONNECT payload (auth) must be a JSON object"));
            }
            return Ok(ClientPacket::Connect { auth: payload });
        }
        if namespace != MAIN_NAMESPACE {
            return Err(bad(format!("namespace {namespace:?} is not connected: Herald serves only \"/\"")));
        }
        match kind {
            b'1' => Ok(ClientPacket::Disconnect),
            b'2' => {
                let (name, details) = event(payload.ok_or_else(|| bad("an EVENT needs [name, ...args]"))?)?;
                Ok(ClientPacket::Event { name, details, ack: id })
            }
            b'3' => Ok(ClientPacket::Ack { id: id.ok_or_else(|| bad("an ACK needs its id"))? }),
            b'4' => Err(bad("only the server sends CONNECT_ERROR")),
            _ => Err(bad("not a Socket.IO packet (the first character is its type, 0 to 6)")),
        }
    }
}

/// Reads an EVENT's `[name, ...args]` into the action name and its details.
fn event(payload: &RawValue) -> Result<(String, Option<Box<RawValue>>), BadPacket> {
    let items: Vec<&RawValue> =
        serde_json::from_str(payload.get()).map_err(|_| bad("an EVENT's payload is an array: [name, ...args]"))?;
    let (name, args) = items.split_first().ok_or_else(|| bad("an EVENT needs a name"))?;
    let name: String = serde_json::from_str(name.get()).map_err(|_| bad("an event name is a string"))?;
    if RESERVED_EVENTS.contains(&name.as_str()) {
        return Err(bad(format!("{name:?} is reserved by socket.io and cannot be emitted")));
    }
    let details = match args {
        [] => None,
        [one] => Some((*one).to_owned()),
        several => {
            let texts: Vec<&str> = several.iter().map(|arg| arg.get()).collect();
            let array = format!("[{}]", texts.join(","));
            Some(RawValue::from_string(array).expect("an array of JSON values is JSON"))
        }
    };
    Ok((name, details))
}

/// The answer to a CONNECT: `40{"sid": <connection id>}`.
pub fn connected(sid: &str) -> String {
    #[derive(Serialize)]
    struct Sid<'a> {
        sid: &'a str,
    }
    format!("40{}", serde_json::to_string(&Sid { sid }).expect("a sid serialises"))
}

/// A refused CONNECT: `44[<namespace>,]{"message": ..., "data": {"code": ...}}`;
/// socket.io-client hands `message` and `data` to `connect_error` listeners
/// as the error's `message` and `data`. `code` is the HTTP status `/ws`
/// would have refused the upgrade with (401, 403, 503).
pub fn connect_error(namespace: &str, message: &str, code: Option<u16>) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Code>,
    }
    #[derive(Serialize)]
    struct Code {
        code: u16,
    }
    let body = serde_json::to_string(&Message { message, data: code.map(|code| Code { code }) })
        .expect("a message serialises");
    match namespace {
        MAIN_NAMESPACE => format!("44{body}"),
        other => format!("44{other},{body}"),
    }
}

/// The server's DISCONNECT of the main namespace: socket.io-client does not
/// reconnect after it ("io server disconnect").
pub const DISCONNECT: &str = "41";

/// Whether a session closed with `close_code` should tell its client not to
/// come back, with [`DISCONNECT`] before the close: a backend's disconnect
/// (4000-4999) and sustained abuse (1008) should; a restart, a slow
/// consumer or an oversized frame should not, so the client reconnects by
/// itself.
pub fn disconnects_for_good(close_code: u16) -> bool {
    close_code == crate::close::POLICY_VIOLATION || (4000..=4999).contains(&close_code)
}

/// The `token` of a CONNECT's `auth` object (`{"token": "<JWT>"}`), if it
/// has one.
pub fn auth_token(auth: &RawValue) -> Result<Option<String>, BadPacket> {
    #[derive(Deserialize)]
    struct Auth {
        token: Option<String>,
    }
    let auth: Auth = serde_json::from_str(auth.get())
        .map_err(|_| bad("the CONNECT's auth must be {\"token\": \"<JWT>\"} (or have no token)"))?;
    Ok(auth.token)
}

/// The ack id of an EVENT or BINARY_EVENT packet, read as far as it can be,
/// so that a refused emit is still answered in its acknowledgement.
pub fn ack_id_of(packet: &str) -> Option<u64> {
    let mut rest = packet.strip_prefix('2').or_else(|| packet.strip_prefix('5'))?;
    if packet.starts_with('5') {
        // `5<attachments>-`
        rest = rest.split_once('-')?.1;
    }
    if rest.starts_with('/') {
        rest = rest.split_once(',')?.1;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    rest[..digits].parse().ok()
}

/// A Herald frame (`{"action", "details"?}`, as backends publish it) as
/// the Socket.IO event `42["<action>", <details>]`, made once per message
/// for every Socket.IO receiver.
pub fn event_from_herald(frame: &str) -> Result<String, serde_json::Error> {
    #[derive(Deserialize)]
    struct HeraldFrame<'a> {
        #[serde(borrow)]
        action: std::borrow::Cow<'a, str>,
        #[serde(default, borrow)]
        details: Option<&'a RawValue>,
    }
    if !frame.trim_start().starts_with('{') {
        return Err(serde::de::Error::custom("a Herald frame is a JSON object"));
    }
    let frame: HeraldFrame<'_> = serde_json::from_str(frame)?;
    Ok(event_frame(&frame.action, frame.details))
}

/// An event for the client: `42["<name>", <details>]`, or `42["<name>"]`
/// without details. Written once per message for every Socket.IO receiver.
pub fn event_frame(name: &str, details: Option<&RawValue>) -> String {
    let name = serde_json::to_string(name).expect("a string serialises");
    match details {
        Some(details) => format!("42[{name},{}]", details.get()),
        None => format!("42[{name}]"),
    }
}

/// The acknowledgement of the client's emit `id`: `43<id>[<reply>]`, or
/// `43<id>[]` for a reply without details.
pub fn ack_frame(id: u64, reply: Option<&RawValue>) -> String {
    match reply {
        Some(reply) => format!("43{id}[{}]", reply.get()),
        None => format!("43{id}[]"),
    }
}

/// The acknowledgement of a failed emit: `43<id>[{"error": {"code", "message"}}]`.
pub fn ack_error_frame(id: u64, code: u16, message: &str) -> String {
    let error = serde_json::json!({ "error": { "code": code, "message": message } });
    format!("43{id}[{error}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event_of(packet: &str) -> (String, Option<String>, Option<u64>) {
        match ClientPacket::parse(packet) {
            Ok(ClientPacket::Event { name, details, ack }) => (name, details.map(|d| d.get().to_owned()), ack),
            other => panic!("{packet}: {other:?}"),
        }
    }

    #[test]
    fn connect_with_and_without_auth() {
        assert!(matches!(ClientPacket::parse("0"), Ok(ClientPacket::Connect { auth: None })));
        match ClientPacket::parse(r#"0{"token":"abc"}"#) {
            Ok(ClientPacket::Connect { auth: Some(auth) }) => assert_eq!(auth.get(), r#"{"token":"abc"}"#),
            other => panic!("{other:?}"),
        }
        assert!(ClientPacket::parse(r#"0"abc""#).is_err());
        assert!(matches!(
            ClientPacket::parse(r#"0/admin,{"token":"abc"}"#),
            Ok(ClientPacket::ConnectElsewhere { namespace: "/admin" })
        ));
        assert!(matches!(ClientPacket::parse("0/admin"), Ok(ClientPacket::ConnectElsewhere { namespace: "/admin" })));
    }

    #[test]
    fn events_with_their_arguments_and_ack_ids() {
        assert_eq!(event_of(r#"2["chat/send"]"#), ("chat/send".into(), None, None));
        assert_eq!(event_of(r#"2["chat/send",{"t":"hi"}]"#), ("chat/send".into(), Some(r#"{"t":"hi"}"#.into()), None));
        assert_eq!(event_of(r#"212["echo","x"]"#), ("echo".into(), Some(r#""x""#.into()), Some(12)));
        assert_eq!(event_of(r#"20["echo",1, {"a":[2]}]"#), ("echo".into(), Some(r#"[1,{"a":[2]}]"#.into()), Some(0)));
        assert_eq!(event_of(r#"2["say \"hi\""]"#).0, r#"say "hi""#);
    }

    #[test]
    fn what_is_refused() {
        for packet in [
            "",
            "2",
            "2[]",
            "2{}",
            "2[1]",
            r#"2["connect"]"#,
            r#"2["disconnect",1]"#,
            r#"2["a""#,
            r#"2/admin,["a"]"#,
            "3",
            r#"4{"message":"x"}"#,
            r#"51-["a",{"_placeholder":true,"num":0}]"#,
            "6",
            "7",
            r#"299999999999999999999999["a"]"#,
        ] {
            assert!(ClientPacket::parse(packet).is_err(), "{packet:?} was accepted");
        }
        assert!(ClientPacket::parse("5").unwrap_err().0.contains("binary"));
    }

    #[test]
    fn acks_and_disconnects() {
        assert!(matches!(ClientPacket::parse(r#"31["ok"]"#), Ok(ClientPacket::Ack { id: 1 })));
        assert!(matches!(ClientPacket::parse("1"), Ok(ClientPacket::Disconnect)));
    }

    #[test]
    fn server_frames() {
        assert_eq!(connected("e1a2"), r#"40{"sid":"e1a2"}"#);
        assert_eq!(connect_error("/", "bad token", Some(401)), r#"44{"message":"bad token","data":{"code":401}}"#);
        assert_eq!(connect_error("/admin", INVALID_NAMESPACE, None), r#"44/admin,{"message":"Invalid namespace"}"#);
        let details = RawValue::from_string(r#"{"t":1}"#.into()).unwrap();
        assert_eq!(event_frame("room/said", Some(&details)), r#"42["room/said",{"t":1}]"#);
        assert_eq!(event_frame("ping\"", None), r#"42["ping\""]"#);
        assert_eq!(ack_frame(7, Some(&details)), r#"437[{"t":1}]"#);
        assert_eq!(ack_frame(7, None), "437[]");
        assert_eq!(ack_error_frame(3, 404, "no route"), r#"433[{"error":{"code":404,"message":"no route"}}]"#);
    }

    #[test]
    fn herald_frames_become_events() {
        assert_eq!(event_from_herald(r#"{"action":"msg","details":{"a": 1}}"#).unwrap(), r#"42["msg",{"a": 1}]"#);
        assert_eq!(event_from_herald(r#"{"details":2,"action":"m\"x"}"#).unwrap(), r#"42["m\"x",2]"#);
        assert_eq!(event_from_herald(r#"{"action":"bare"}"#).unwrap(), r#"42["bare"]"#);
        assert!(event_from_herald(r#"["msg"]"#).is_err());
        assert!(event_from_herald(r#"{"details":1}"#).is_err());
        assert!(event_from_herald("not json").is_err());
    }

    #[test]
    fn the_auth_token_and_ack_ids_of_refused_emits() {
        let auth = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        assert_eq!(auth_token(&auth(r#"{"token":"abc","other":1}"#)), Ok(Some("abc".into())));
        assert_eq!(auth_token(&auth("{}")), Ok(None));
        assert!(auth_token(&auth(r#"{"token":5}"#)).is_err());
        assert_eq!(ack_id_of(r#"212["echo"]"#), Some(12));
        assert_eq!(ack_id_of(r#"2["echo"]"#), None);
        assert_eq!(ack_id_of(r#"51-7["x",{"_placeholder":true,"num":0}]"#), Some(7));
        assert_eq!(ack_id_of(r#"2/admin,3["x"]"#), Some(3));
        assert_eq!(ack_id_of(r#"39[]"#), None);
    }

    #[test]
    fn who_is_told_not_to_come_back() {
        assert!(disconnects_for_good(4000) && disconnects_for_good(4001) && disconnects_for_good(1008));
        assert!(!disconnects_for_good(1012) && !disconnects_for_good(1013) && !disconnects_for_good(1009));
    }

    proptest! {
        /// What the server writes for an event, a client writing the same
        /// event would be read back as that event (the grammar is shared).
        #[test]
        fn an_event_reads_back(name in "[a-z/._\"é-]{1,20}", number in any::<i64>(), text in ".{0,20}", ack in proptest::option::of(any::<u64>())) {
            prop_assume!(!RESERVED_EVENTS.contains(&name.as_str()));
            let details = RawValue::from_string(serde_json::json!({ "n": number, "t": text }).to_string()).unwrap();
            let frame = event_frame(&name, Some(&details));
            let packet = match ack {
                Some(id) => format!("2{id}{}", &frame[2..]),
                None => frame[1..].to_owned(),
            };
            let (read_name, read_details, read_ack) = event_of(&packet);
            prop_assert_eq!(read_name, name);
            prop_assert_eq!(read_details, Some(details.get().to_owned()));
            prop_assert_eq!(read_ack, ack);
        }

        /// No input makes the reader panic.
        #[test]
        fn any_text_is_read_or_refused(packet in ".{0,40}") {
            let _ = ClientPacket::parse(&packet);
        }
    }
}
