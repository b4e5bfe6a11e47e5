//! Missed-message recovery on the wire (PROTOCOL 5.25, ADR 0012): the
//! positions clients keep, the `offset` a delivered frame carries, the
//! `resume` query parameter a reconnecting client sends, and `$recovered`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The query parameter of `/ws` that carries a client's positions.
pub const RESUME_PARAM: &str = "resume";

/// The key of the user's subject in offsets and `resume`.
pub const USER_KEY: &str = "user";

/// The key of the subject of broadcasts to everyone (`all`).
pub const ALL_KEY: &str = "all";

/// The key of group G's subject: `group:<G>`.
pub fn group_key(group: &str) -> String {
    format!("group:{group}")
}

/// Where a client is on one subject: it has every message of the subject
/// up to sequence `seq` of the stream incarnation `epoch`. Opaque to
/// clients; written `<epoch>.<seq>.<ms>` in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Which incarnation of the history stream (a recreated stream has
    /// another, and its sequences mean nothing to the old one's).
    pub epoch: u64,
    /// The last sequence of the subject the client has; 0 when the subject
    /// had none stored.
    pub seq: u64,
    /// When the edge handed the position out (Unix milliseconds): a
    /// position on an empty subject is only good while younger than the
    /// stream's maximum age.
    pub at_ms: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}.{:x}", self.epoch, self.seq, self.at_ms)
    }
}

/// A position that is not one Herald wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPosition(pub String);

impl fmt::Display for BadPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a position: {:?}", self.0)
    }
}

impl std::error::Error for BadPosition {}

impl FromStr for Position {
    type Err = BadPosition;

    fn from_str(text: &str) -> Result<Position, BadPosition> {
        let bad = || BadPosition(text.to_owned());
        let mut parts = text.split('.').map(|part| u64::from_str_radix(part, 16).map_err(|_| bad()));
        let position = Position {
            epoch: parts.next().ok_or_else(bad)??,
            seq: parts.next().ok_or_else(bad)??,
            at_ms: parts.next().ok_or_else(bad)??,
        };
        if parts.next().is_some() { Err(bad()) } else { Ok(position) }
    }
}

/// The `resume` parameter: a JSON object from keys (`user`, `group:<G>`, `all`)
/// to the positions the client last received.
pub type Resume = BTreeMap<String, String>;

/// Reads a `resume` parameter.
pub fn parse_resume(text: &str) -> Result<Resume, String> {
    serde_json::from_str(text).map_err(|e| format!("resume is not a JSON object of strings: {e}"))
}

/// `details` of `$recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveredDetails {
    /// True when the client resumed and every subject it holds was
    /// recovered completely; false otherwise (the app reloads its state).
    pub recovered: bool,
    /// The client's positions now, by key.
    pub offsets: BTreeMap<String, String>,
}

/// `details` of the reply to `$join` on a group that keeps a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedDetails {
    pub group: String,
    /// True when the client sent `resume` and every frame it missed in the
    /// group since was queued before this reply.
    pub recovered: bool,
    /// The client's position in the group now (`group:<G>`).
    pub offsets: BTreeMap<String, String>,
}

/// A frame with `"offset": {"of", "at"}` as its first member, written once
/// per message and shared by every session it goes to; `None` when the
/// payload is not a JSON object (it is then delivered as it is).
pub fn with_offset(payload: &[u8], of: &str, at: &Position) -> Option<Vec<u8>> {
    let start = payload.iter().position(|b| !b.is_ascii_whitespace())?;
    if payload[start] != b'{' {
        return None;
    }
    let rest = &payload[start + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let of = serde_json::to_string(of).expect("a string serializes");
    let mut frame = Vec::with_capacity(payload.len() + of.len() + 48);
    frame.extend_from_slice(format!("{{\"offset\":{{\"of\":{of},\"at\":\"{at}\"}}").as_bytes());
    if !empty {
        frame.push(b',');
    }
    frame.extend_from_slice(rest);
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_what_they_write_and_refuse_anything_else() {
        let position = Position { epoch: u64::MAX, seq: 42, at_ms: 1_700_000_000_000 };
        assert_eq!(position.to_string().parse::<Position>(), Ok(position));
        for bad in ["", "1.2", "1.2.3.4", "x.1.2", "1..2", "-1.2.3"] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_offset_is_spliced_in_as_the_first_member() {
        let at = Position { epoch: 1, seq: 2, at_ms: 3 };
        let frame = with_offset(br#" {"action":"a","details":1}"#, "group:l\"x", &at).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(value["offset"], serde_json::json!({"of": "group:l\"x", "at": "1.2.3"}));
        assert_eq!(value["action"], "a");
        let empty: serde_json::Value = serde_json::from_slice(&with_offset(b"{ }", "user", &at).unwrap()).unwrap();
        assert_eq!(empty, serde_json::json!({"offset": {"of": "user", "at": "1.2.3"}}));
        assert_eq!(with_offset(b"[1]", "user", &at), None);
        assert_eq!(with_offset(b"", "user", &at), None);
    }

    #[test]
    fn resume_is_a_json_object_of_strings() {
        let resume = parse_resume(r#"{"user":"1.2.3","group:lobby":"1.5.3"}"#).unwrap();
        assert_eq!(resume["group:lobby"], "1.5.3");
        assert!(parse_resume("[1]").is_err());
        assert!(parse_resume(r#"{"user":1}"#).is_err());
    }
}
