//! Frames on the WebSocket: one JSON object per text message, both ways.
//!
//! `{"action": "<name>", "details": <any JSON>, "id": <string|number>}`; a
//! reply carries the request's `action` and `id`, an error reply the action
//! with [`ERROR_SUFFIX`] and [`ErrorDetails`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest action name a client may send, in characters.
pub const MAX_ACTION_CHARS: usize = 128;

/// Appended to an action to name its error reply, e.g. `chat/send:error`.
pub const ERROR_SUFFIX: &str = ":error";

/// System actions: every action starting with `$` belongs to Herald.
pub mod action {
    /// Server → client, first frame of every connection.
    pub const CONNECTED: &str = "$connected";
    /// Server, once per connection when history is on: whether what the
    /// client missed was recovered, and its positions (PROTOCOL 5.25).
    pub const RECOVERED: &str = "$recovered";
    /// Client → server keep-alive; answered with [`PONG`].
    pub const PING: &str = "$ping";
    /// Reply to [`PING`].
    pub const PONG: &str = "$pong";
    /// Client asks to join a group it is authorised for.
    pub const JOIN: &str = "$join";
    /// Client asks to leave a group.
    pub const LEAVE: &str = "$leave";
    /// Client refreshes its token in place.
    pub const AUTH: &str = "$auth";
    /// Server → client: the token expired, send `$auth` before the grace ends.
    pub const REAUTH: &str = "$reauth";
    /// Server → client: a frame that could not be read at all.
    pub const ERROR: &str = "$error";
    /// Route name: authenticates an upgrade through a handler.
    pub const CONNECT: &str = "$connect";
    /// Route name: notified when a connection ends.
    pub const DISCONNECT: &str = "$disconnect";
    /// Route name: anything no other route matched.
    pub const DEFAULT: &str = "$default";

    /// Whether `name` is reserved for the system.
    pub fn is_system(name: &str) -> bool {
        name.starts_with('$')
    }
}

/// The optional correlation id of a client frame, echoed in its reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FrameId {
    Text(String),
    Number(serde_json::Number),
}

/// A frame a client sent, validated: an action of 1..=128 characters, the raw
/// details (absent or `null` is `None`) and the id.
#[derive(Debug)]
pub struct ClientFrame {
    pub action: String,
    /// Kept raw so that a handler receives exactly what the client sent.
    pub details: Option<Box<RawValue>>,
    pub id: Option<FrameId>,
}

/// Why a text frame is not a valid client frame. `id` is the frame's id when
/// it could still be read, so that the error reply can carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub message: String,
    pub id: Option<FrameId>,
}

/// The shape we first read a frame into, so that each problem gets its own
/// message instead of serde's generic one.
#[derive(Deserialize)]
struct LooseFrame {
    action: Option<serde_json::Value>,
    #[serde(default)]
    details: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

impl ClientFrame {
    /// Reads one text frame.
    pub fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        let not_an_object = || FrameError::new("a frame must be a JSON object", None);
        let loose: LooseFrame = match serde_json::from_str(text) {
            // Serde also reads a struct from an array; a frame is an object.
            Ok(_) if !text.trim_start().starts_with('{') => return Err(not_an_object()),
            Ok(loose) => loose,
            Err(e) if e.is_data() => return Err(not_an_object()),
            Err(e) => return Err(FrameError::new(format!("not valid JSON: {e}"), None)),
        };
        let id = match loose.id {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(FrameId::Text(s)),
            Some(serde_json::Value::Number(n)) => Some(FrameId::Number(n)),
            Some(_) => return Err(FrameError::new("\"id\" must be a string or a number", None)),
        };
        let action = match loose.action {
            Some(serde_json::Value::String(action)) => action,
            Some(_) => return Err(FrameError::new("\"action\" must be a string", id)),
            None => return Err(FrameError::new("missing \"action\"", id)),
        };
        let chars = action.chars().count();
        if chars == 0 || chars > MAX_ACTION_CHARS {
            return Err(FrameError::new(format!("\"action\" must be 1 to {MAX_ACTION_CHARS} characters"), id));
        }
        Ok(ClientFrame { action, details: loose.details, id })
    }
}

impl FrameError {
    fn new(message: impl Into<String>, id: Option<FrameId>) -> FrameError {
        FrameError { message: message.into(), id }
    }
}

/// The `details` of an error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetails {
    pub code: u16,
    pub message: String,
}

/// A frame the server sends. `details` borrows so that a frame is encoded
/// without copying what it carries.
#[derive(Debug, Serialize)]
pub struct ServerFrame<'a, D: Serialize + ?Sized> {
    pub action: &'a str,
    pub details: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a FrameId>,
}

/// Encodes a frame to the JSON text sent on the socket.
pub fn encode<D: Serialize + ?Sized>(action: &str, details: &D, id: Option<&FrameId>) -> String {
    let frame = ServerFrame { action, details, id };
    serde_json::to_string(&frame).expect("a server frame always serialises")
}

/// Encodes the error reply to `action` (or [`action::ERROR`] when the frame
/// had no readable action).
pub fn encode_error(action: Option<&str>, code: u16, message: &str, id: Option<&FrameId>) -> String {
    let name = match action {
        Some(action) => format!("{action}{ERROR_SUFFIX}"),
        None => action::ERROR.to_owned(),
    };
    encode(&name, &ErrorDetails { code, message: message.to_owned() }, id)
}

/// `details` of `$connected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedDetails {
    pub conn: String,
    pub user: Option<String>,
    pub groups: Vec<String>,
}

/// `details` of a client's `$join` and `$leave`, and of their replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDetails {
    pub group: String,
    /// `$join` only: the position the client last received in the group,
    /// when it joins again after a reconnect (recovery, PROTOCOL 5.25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
}

/// `details` of a client's `$auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthDetails {
    pub token: String,
}

/// `details` of the reply to a successful `$auth`, and of `$reauth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub user: Option<String>,
    /// Expiry of the current token, seconds since the Unix epoch.
    pub exp: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_frame_and_keeps_details_raw() {
        let frame = ClientFrame::parse(r#"{"action":"chat/send","details":{"b":1, "a":2},"id":7}"#).unwrap();
        assert_eq!(frame.action, "chat/send");
        assert_eq!(frame.details.unwrap().get(), r#"{"b":1, "a":2}"#);
        assert_eq!(frame.id, Some(FrameId::Number(7.into())));
    }

    #[test]
    fn details_default_to_none() {
        let frame = ClientFrame::parse(r#"{"action":"$ping"}"#).unwrap();
        assert!(frame.details.is_none());
        assert!(frame.id.is_none());
    }

    #[test]
    fn each_problem_has_its_own_message() {
        let err = |text: &str| ClientFrame::parse(text).unwrap_err().message;
        assert!(err("nope").starts_with("not valid JSON"));
        assert_eq!(err("[1]"), "a frame must be a JSON object");
        assert_eq!(err(r#"{"details":1}"#), "missing \"action\"");
        assert_eq!(err(r#"{"action":5}"#), "\"action\" must be a string");
        assert_eq!(err(r#"{"action":""}"#), "\"action\" must be 1 to 128 characters");
        let long = format!(r#"{{"action":"{}"}}"#, "é".repeat(129));
        assert_eq!(err(&long), "\"action\" must be 1 to 128 characters");
        assert_eq!(err(r#"{"action":"a","id":[]}"#), "\"id\" must be a string or a number");
    }

    #[test]
    fn an_invalid_frame_still_reports_its_id() {
        let err = ClientFrame::parse(r#"{"id":"x1"}"#).unwrap_err();
        assert_eq!(err.id, Some(FrameId::Text("x1".into())));
    }

    #[test]
    fn action_of_exactly_128_characters_is_accepted() {
        let text = format!(r#"{{"action":"{}"}}"#, "é".repeat(128));
        assert!(ClientFrame::parse(&text).is_ok());
    }

    #[test]
    fn a_numeric_id_comes_back_as_the_number_sent() {
        // Found by the `client_frame` fuzz target: serde_json's default
        // float parsing is off by one in the last place for some numbers,
        // so such an id came back as another number; the workspace turns on
        // its `float_roundtrip`. The reply carries the double the client's
        // own (correctly rounded) parser reads. (Tests built with the
        // jsonschema dev-dependency get that feature anyway; the fuzz
        // build, like the binaries, does not.)
        let digits = "7".repeat(121);
        let frame = ClientFrame::parse(&format!(r#"{{"action":"a","id":{digits}}}"#)).unwrap();
        let sent = serde_json::Number::from_f64(digits.parse().unwrap()).unwrap();
        assert_eq!(frame.id, Some(FrameId::Number(sent)));
        let reply = encode(&frame.action, &(), frame.id.as_ref());
        assert_eq!(ClientFrame::parse(&reply).unwrap().id, frame.id);
    }

    #[test]
    fn encodes_replies_and_errors() {
        let id = FrameId::Text("a".into());
        assert_eq!(encode("$pong", &(), Some(&id)), r#"{"action":"$pong","details":null,"id":"a"}"#);
        assert_eq!(
            encode_error(Some("chat/send"), 404, "no route", None),
            r#"{"action":"chat/send:error","details":{"code":404,"message":"no route"}}"#
        );
        assert_eq!(
            encode_error(None, 400, "bad", None),
            r#"{"action":"$error","details":{"code":400,"message":"bad"}}"#
        );
    }
}
