//! The push port's line reader (`herald_router::push_port::parse_line`):
//! one line from a Workerman-style backend, or from anything that can reach
//! the port.
//!
//! - Reading never panics; a refusal is a `BadLine`, and the answer that
//!   carries it (`error <reason>`) is one line.
//! - An accepted line names a non-empty user, which makes one subject token,
//!   and its frame is one the edge delivers: JSON with an action of 1 to 128
//!   characters; the line's `action` and `details` when it had an action,
//!   else `push` and the line without `uid`.

use herald_proto::client::{ClientFrame, MAX_ACTION_CHARS};
use herald_proto::subject::{Subjects, decode_token};
use herald_router::push_port::{DEFAULT_ACTION, parse_line};
use serde_json::{Map, Value};

pub fn run(data: &[u8]) {
    // The reader hands over lines without their line ending.
    if data.contains(&b'\n') {
        return;
    }
    let line = match parse_line(data) {
        Ok(line) => line,
        Err(error) => {
            let answer = format!("error {error}");
            assert!(!answer.contains(['\n', '\r']), "{answer:?}");
            return;
        }
    };
    assert!(!line.user.is_empty());
    let subject = Subjects::default().user(&line.user);
    let token = subject.rsplit('.').next().expect("a subject has tokens");
    assert_eq!(decode_token(token).ok().as_deref(), Some(line.user.as_str()), "{subject:?}");

    let frame = ClientFrame::parse(&line.frame).unwrap_or_else(|e| panic!("{e:?}: {}", line.frame));
    assert!((1..=MAX_ACTION_CHARS).contains(&frame.action.chars().count()));
    assert!(frame.id.is_none());
    let details: Value = frame.details.map_or(Value::Null, |d| serde_json::from_str(d.get()).expect("JSON"));
    let mut sent: Map<String, Value> = serde_json::from_slice(data).expect("an accepted line is a JSON object");
    sent.remove("uid");
    match sent.remove("action") {
        Some(Value::String(action)) => {
            assert_eq!(frame.action, action);
            assert_eq!(details, sent.remove("details").unwrap_or(Value::Null));
        }
        Some(other) => panic!("accepted a line whose action is {other}"),
        None => {
            assert_eq!(frame.action, DEFAULT_ACTION);
            assert_eq!(details, Value::Object(sent));
        }
    }
}
