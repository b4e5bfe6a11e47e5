//! What a handler receives for a client action and what it answers; the same
//! JSON over NATS request/reply and over HTTP POST.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::{ErrorDetails, FrameId};
use crate::json;

/// The claims of a token beyond the ones Herald reads itself.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// A client action, with who sent it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandlerRequest {
    pub action: String,
    /// The client's details, byte for byte (`null` when absent).
    pub details: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameId>,
    pub conn: String,
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub claims: Claims,
    /// `$connect` only: the upgrade request's headers (lower-case names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `$connect` only: the upgrade request's cookies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<BTreeMap<String, String>>,
    /// How long the edge waits for the answer, in milliseconds from when it
    /// sent the request: a router cuts its route's timeout to it, and a
    /// handler may take it as its budget. Absent on `$disconnect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A handler's answer; every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerResponse {
    /// The reply's details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<RawValue>>,
    /// Makes the reply an `:error` reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetails>,
    /// Sends nothing back to the client.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noreply: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    /// `$connect` only: who the connection is (`null`: anonymous).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub user: Option<Option<String>>,
    /// `$connect` only: groups joined at connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// `$connect` only: claims passed to later handler requests (`[]`, PHP's
    /// empty array, is no claims).
    #[serde(default, deserialize_with = "json::object_or_empty_array", skip_serializing_if = "Option::is_none")]
    pub claims: Option<Claims>,
}

/// Something a handler asks Herald to do besides replying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Effect {
    /// The requesting connection joins a group.
    Join(String),
    /// The requesting connection leaves a group.
    Leave(String),
    /// The requesting connection is closed (`[]`, PHP's empty array, takes
    /// every default).
    #[serde(deserialize_with = "json::object_or_empty_array")]
    Disconnect(DisconnectEffect),
    /// A frame is published to a target.
    Publish(PublishEffect),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectEffect {
    #[serde(default = "default_disconnect_code")]
    pub code: u16,
    #[serde(default)]
    pub reason: String,
}

fn default_disconnect_code() -> u16 {
    crate::close::BACKEND_DISCONNECT
}

/// What `{}` reads as.
impl Default for DisconnectEffect {
    fn default() -> Self {
        DisconnectEffect { code: default_disconnect_code(), reason: String::new() }
    }
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishEffect {
    /// `[]` (PHP's empty array) is an empty target.
    #[serde(deserialize_with = "json::object_or_empty_array")]
    pub to: Target,
    pub action: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Whom a publish reaches: every user, group and connection named (or
/// everyone, with `all`). Each is a subject of its own, published once: a
/// connection named twice (by its user and by one of its groups) receives
/// the frame twice, since nothing between the subjects can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conns: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_response() {
        let r: HandlerResponse = serde_json::from_str(
            r#"{"details":{"ok":true},"effects":[{"join":"room"},{"leave":"lobby"},
                {"disconnect":{"code":4002,"reason":"bye"}},
                {"publish":{"to":{"groups":["room"]},"action":"chat/msg","details":"hi"}}]}"#,
        )
        .unwrap();
        assert_eq!(r.details.unwrap().get(), r#"{"ok":true}"#);
        assert_eq!(r.effects.len(), 4);
        assert_eq!(r.effects[0], Effect::Join("room".into()));
        assert_eq!(r.effects[2], Effect::Disconnect(DisconnectEffect { code: 4002, reason: "bye".into() }));
    }

    #[test]
    fn connect_user_may_be_null_or_absent() {
        let anonymous: HandlerResponse = serde_json::from_str(r#"{"user":null}"#).unwrap();
        assert_eq!(anonymous.user, Some(None));
        let absent: HandlerResponse = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.user, None);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [r#"{"detail":1}"#, r#"{"effects":[{"explode":1}]}"#, r#"{"error":{"code":"x"}}"#] {
            assert!(serde_json::from_str::<HandlerResponse>(bad).is_err(), "{bad}");
        }
    }
}
