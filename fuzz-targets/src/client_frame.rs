//! The client frame decoder: every text frame a browser sends on `/ws`.
//!
//! - Reading never panics; a bad frame is a `FrameError` with a message.
//! - An accepted frame keeps the contract: an action of 1 to 128
//!   characters, details that are JSON and never `null` (absent), an id
//!   that is a string or a number.
//! - Encode → decode: the reply the edge writes with the frame's action,
//!   details and id reads back as the same three, details byte for byte
//!   (a handler's answer reaches the client exactly as written).
//! - Every error reply the edge writes, to a good frame or a bad one, is
//!   a JSON object that carries the frame's id and reads back.

use herald_proto::client::{self, ClientFrame, ERROR_SUFFIX, ErrorDetails, FrameId, MAX_ACTION_CHARS, action};
use serde_json::value::RawValue;

pub fn run(data: &[u8]) {
    // The edge hands the decoder text frames only: WebSocket text is UTF-8.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientFrame::parse(text) {
        Ok(frame) => accepted(&frame),
        Err(error) => {
            assert!(!error.message.is_empty());
            let reply = client::encode_error(None, 400, &error.message, error.id.as_ref());
            check_error_reply(&reply, action::ERROR, 400, &error.message, error.id.as_ref());
        }
    }
}

fn accepted(frame: &ClientFrame) {
    assert!((1..=MAX_ACTION_CHARS).contains(&frame.action.chars().count()), "{:?}", frame.action);
    if let Some(details) = &frame.details {
        assert_ne!(details.get(), "null", "null details read as absent");
        serde_json::from_str::<&RawValue>(details.get()).expect("details are JSON");
    }

    let reply = client::encode(&frame.action, &frame.details, frame.id.as_ref());
    let back = ClientFrame::parse(&reply).expect("a reply reads back as a frame");
    assert_eq!(back.action, frame.action);
    assert_eq!(back.id, frame.id);
    assert_eq!(raw(&back.details), raw(&frame.details), "details are kept byte for byte");

    // The rate limit and handler errors answer `<action>:error`.
    let reply = client::encode_error(Some(&frame.action), 429, "slow down", frame.id.as_ref());
    check_error_reply(&reply, &format!("{}{ERROR_SUFFIX}", frame.action), 429, "slow down", frame.id.as_ref());
}

fn raw(details: &Option<Box<RawValue>>) -> Option<&str> {
    details.as_deref().map(RawValue::get)
}

/// An error reply is `{"action", "details": {"code", "message"}, "id"?}`.
fn check_error_reply(reply: &str, action: &str, code: u16, message: &str, id: Option<&FrameId>) {
    let value: serde_json::Value = serde_json::from_str(reply).expect("an error reply is JSON");
    assert_eq!(value["action"], action);
    let details: ErrorDetails = serde_json::from_value(value["details"].clone()).expect("error details read back");
    assert_eq!(details, ErrorDetails { code, message: message.to_owned() });
    let read_id = value.get("id").map(|id| serde_json::from_value::<FrameId>(id.clone()).expect("the id reads back"));
    assert_eq!(read_id.as_ref(), id);
}
