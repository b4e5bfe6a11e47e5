//! Pusher protocol 7 frames, `{"event", "channel"?, "data"?}`, both ways,
//! and the translation between a Pusher event and a Herald frame.
//!
//! A Pusher channel is the Herald group of the same name: a Herald frame
//! `{"action": A, "details": D}` published to group `C` reaches Pusher
//! subscribers of `C` as `{"event": A, "channel": C, "data": S}` where `S` is
//! `D` itself when `D` is a string and `D`'s JSON text otherwise; a Pusher
//! event `E` with data `S` becomes `{"action": E, "details": S parsed as JSON
//! when it is JSON}`. Both directions keep the JSON text byte for byte where
//! they can (`RawValue`), so nothing is re-serialised on the delivery path.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use super::socket_id::SocketId;

/// Events of the protocol itself.
pub mod event {
    pub const CONNECTION_ESTABLISHED: &str = "pusher:connection_established";
    pub const ERROR: &str = "pusher:error";
    pub const PING: &str = "pusher:ping";
    pub const PONG: &str = "pusher:pong";
    pub const SUBSCRIBE: &str = "pusher:subscribe";
    pub const UNSUBSCRIBE: &str = "pusher:unsubscribe";
    pub const SIGNIN: &str = "pusher:signin";
    pub const SIGNIN_SUCCESS: &str = "pusher:signin_success";
    pub const SUBSCRIPTION_ERROR: &str = "pusher:subscription_error";
    pub const SUBSCRIPTION_SUCCEEDED: &str = "pusher_internal:subscription_succeeded";
    pub const MEMBER_ADDED: &str = "pusher_internal:member_added";
    pub const MEMBER_REMOVED: &str = "pusher_internal:member_removed";
}

/// A frame a client sent, read.
#[derive(Debug)]
pub enum ClientMessage {
    Ping,
    Pong,
    Subscribe {
        channel: String,
        /// `"<key>:<signature>"`, for private and presence channels.
        auth: Option<String>,
        /// The presence member, as the exact string that was signed.
        channel_data: Option<String>,
    },
    Unsubscribe {
        channel: String,
    },
    SignIn {
        auth: String,
        /// The user, as the exact string that was signed.
        user_data: String,
    },
    /// A `client-` event for the other members of `channel`.
    ClientEvent {
        event: String,
        channel: String,
        /// Kept raw: forwarded as the sender wrote it.
        data: Box<RawValue>,
    },
}

/// Why a client frame could not be used; the text goes back in a
/// `pusher:error`, and the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct BadFrame(pub String);

fn bad(message: impl Into<String>) -> BadFrame {
    BadFrame(message.into())
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    event: Option<Cow<'a, str>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: String,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<String>,
}

#[derive(Deserialize)]
struct SignInData {
    auth: String,
    user_data: String,
}

/// Reads the `data` of a protocol event: an object, or (as some clients
/// send it) a JSON string holding one.
fn protocol_data<T: serde::de::DeserializeOwned>(data: Option<&RawValue>, event: &str) -> Result<T, BadFrame> {
    let data = data.ok_or_else(|| bad(format!("{event} needs data")))?;
    let read = match data.get().trim_start().as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(data.get()).and_then(|inner| serde_json::from_str(&inner)),
        _ => serde_json::from_str(data.get()),
    };
    read.map_err(|e| bad(format!("bad data for {event}: {e}")))
}

impl ClientMessage {
    /// Reads one text frame from a Pusher client.
    pub fn parse(text: &str) -> Result<ClientMessage, BadFrame> {
        if !text.trim_start().starts_with('{') {
            return Err(bad("a frame must be a JSON object"));
        }
        let frame: RawFrame<'_> = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let event = frame.event.ok_or_else(|| bad("missing \"event\""))?;
        match event.as_ref() {
            event::PING => Ok(ClientMessage::Ping),
            event::PONG => Ok(ClientMessage::Pong),
            event::SUBSCRIBE => {
                let data: SubscribeData = protocol_data(frame.data, event::SUBSCRIBE)?;
                Ok(ClientMessage::Subscribe { channel: data.channel, auth: data.auth, channel_data: data.channel_data })
            }
            event::UNSUBSCRIBE => {
                #[derive(Deserialize)]
                struct Channel {
                    channel: String,
                }
                let data: Channel = protocol_data(frame.data, event::UNSUBSCRIBE)?;
                Ok(ClientMessage::Unsubscribe { channel: data.channel })
            }
            event::SIGNIN => {
                let data: SignInData = protocol_data(frame.data, event::SIGNIN)?;
                Ok(ClientMessage::SignIn { auth: data.auth, user_data: data.user_data })
            }
            name if name.starts_with(super::channel::CLIENT_EVENT_PREFIX) => {
                super::channel::check_event_name(name).map_err(|e| bad(e.to_string()))?;
                let channel = frame.channel.ok_or_else(|| bad("a client event needs a \"channel\""))?;
                let data = frame.data.map_or_else(|| RawValue::from_string("null".into()), |d| Ok(d.to_owned()));
                Ok(ClientMessage::ClientEvent { event: name.to_owned(), channel, data: data.expect("null is JSON") })
            }
            name => Err(bad(format!(
                "unsupported event {name:?}: clients may send pusher: protocol events and client- events"
            ))),
        }
    }
}

/// A presence channel member, from the `channel_data` a client's auth
/// endpoint signed: `{"user_id": <string|number>, "user_info": <any>}`.
#[derive(Debug, Clone)]
pub struct Member {
    /// The user id as text: Laravel sends numbers, Pusher's API speaks
    /// strings, and `10` and `"10"` are the same member.
    pub user_id: String,
    pub user_info: Option<Box<RawValue>>,
}

impl Member {
    /// Reads `channel_data`; `max_info_bytes` bounds `user_info`.
    pub fn parse(channel_data: &str, max_info_bytes: usize) -> Result<Member, BadFrame> {
        #[derive(Deserialize)]
        struct ChannelData {
            user_id: Option<serde_json::Value>,
            #[serde(default)]
            user_info: Option<Box<RawValue>>,
        }
        let data: ChannelData =
            serde_json::from_str(channel_data).map_err(|e| bad(format!("channel_data is not a JSON object: {e}")))?;
        let user_id = match data.user_id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => id,
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => return Err(bad("channel_data needs a user_id (a non-empty string or a number)")),
        };
        if data.user_info.as_ref().is_some_and(|info| info.get().len() > max_info_bytes) {
            return Err(bad(format!("user_info is over {max_info_bytes} bytes")));
        }
        Ok(Member { user_id, user_info: data.user_info })
    }
}

/// The user id in the `user_data` of a sign-in: `{"id": "<non-empty string>", ...}`.
pub fn signed_in_user(user_data: &str) -> Result<String, BadFrame> {
    #[derive(Deserialize)]
    struct UserData {
        id: Option<serde_json::Value>,
    }
    let data: UserData =
        serde_json::from_str(user_data).map_err(|e| bad(format!("user_data is not a JSON object: {e}")))?;
    match data.id {
        Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id),
        _ => Err(bad("user_data needs an id (a non-empty string)")),
    }
}

#[derive(Serialize)]
struct Out<'a, D: Serialize + ?Sized> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    data: &'a D,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize + ?Sized>(event: &str, channel: Option<&str>, data: &D) -> String {
    serde_json::to_string(&Out { event, channel, data, user_id: None }).expect("frames serialise")
}

/// `data` as Pusher sends most server data: a JSON string holding JSON.
fn json_text<D: Serialize>(data: &D) -> String {
    serde_json::to_string(data).expect("data serialises")
}

/// The first frame: the socket id and how long the client may stay silent.
pub fn connection_established(socket_id: SocketId, activity_timeout_secs: u64) -> String {
    #[derive(Serialize)]
    struct Established {
        socket_id: String,
        activity_timeout: u64,
    }
    let data = Established { socket_id: socket_id.to_string(), activity_timeout: activity_timeout_secs };
    encode(event::CONNECTION_ESTABLISHED, None, &json_text(&data))
}

/// `pusher:pong`, the answer to a client's ping.
pub fn pong() -> String {
    encode(event::PONG, None, &serde_json::json!({}))
}

/// `pusher:ping`, sent to a silent client.
pub fn ping() -> String {
    encode(event::PING, None, &serde_json::json!({}))
}

/// `pusher:error`; `code` is `None` for errors that do not close the
/// connection, as Pusher sends them.
pub fn error(code: Option<u16>, message: &str) -> String {
    encode(event::ERROR, None, &serde_json::json!({ "code": code, "message": message }))
}

/// `pusher:subscription_error`, for a refused subscription.
pub fn subscription_error(channel: &str, status: u16, message: &str) -> String {
    let data = serde_json::json!({ "type": "AuthError", "error": message, "status": status });
    encode(event::SUBSCRIPTION_ERROR, Some(channel), &data)
}

/// `pusher_internal:subscription_succeeded`; for a presence channel, with
/// every member (on every edge).
pub fn subscription_succeeded(channel: &str, members: Option<&[Member]>) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        presence: Presence<'a>,
    }
    #[derive(Serialize)]
    struct Presence<'a> {
        ids: Vec<&'a str>,
        /// Each member's `user_info` as its client sent it: never parsed
        /// again, so JSON that reads as raw text but not as a value (a
        /// number such as `1e999`) cannot fail here.
        hash: BTreeMap<&'a str, Option<&'a RawValue>>,
        count: usize,
    }
    let Some(members) = members else { return encode(event::SUBSCRIPTION_SUCCEEDED, Some(channel), "{}") };
    let ids = members.iter().map(|m| m.user_id.as_str()).collect();
    let hash = members.iter().map(|m| (m.user_id.as_str(), m.user_info.as_deref())).collect();
    let data = Data { presence: Presence { ids, hash, count: members.len() } };
    encode(event::SUBSCRIPTION_SUCCEEDED, Some(channel), &json_text(&data))
}

/// `pusher_internal:member_added`, once per user joining anywhere.
pub fn member_added(channel: &str, member: &Member) -> String {
    #[derive(Serialize)]
    struct Added<'a> {
        user_id: &'a str,
        user_info: Option<&'a RawValue>,
    }
    let data = Added { user_id: &member.user_id, user_info: member.user_info.as_deref() };
    encode(event::MEMBER_ADDED, Some(channel), &json_text(&data))
}

/// `pusher_internal:member_removed`, once per user leaving everywhere.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    encode(event::MEMBER_REMOVED, Some(channel), &json_text(&serde_json::json!({ "user_id": user_id })))
}

/// `pusher:signin_success`, echoing the signed `user_data`.
pub fn signin_success(user_data: &str) -> String {
    encode(event::SIGNIN_SUCCESS, None, &serde_json::json!({ "user_data": user_data }))
}

/// A frame that is not a Herald frame (`{"action", "details"?}`), so it has
/// no Pusher form.
#[derive(Debug, Error)]
#[error("not a Herald frame: {0}")]
pub struct NotAHeraldFrame(#[from] serde_json::Error);

/// The Pusher event for a Herald frame, made once per message and shared by
/// every Pusher subscriber: `channel` is the group (or the user channel);
/// `None` for deliveries to one connection or to everyone, which reach
/// pusher-js's connection-wide bindings. `user_id` marks a client event on
/// a presence channel with its sender.
pub fn event_from_herald(frame: &str, channel: Option<&str>, user_id: Option<&str>) -> Result<String, NotAHeraldFrame> {
    #[derive(Deserialize)]
    struct HeraldFrame<'a> {
        #[serde(borrow)]
        action: Cow<'a, str>,
        #[serde(default, borrow)]
        details: Option<&'a RawValue>,
    }
    let frame: HeraldFrame<'_> = serde_json::from_str(frame)?;
    let data: Cow<'_, str> = match frame.details {
        None => Cow::Borrowed("null"),
        Some(details) if details.get().starts_with('"') => Cow::Owned(serde_json::from_str(details.get())?),
        Some(details) => Cow::Borrowed(details.get()),
    };
    let out = Out { event: &frame.action, channel, data: data.as_ref(), user_id };
    Ok(serde_json::to_string(&out).expect("frames serialise"))
}

/// The Herald frame for a Pusher event: a trigger through the API, or a
/// client event. `data` that is JSON becomes the details as written; any
/// other string becomes a string.
pub fn herald_from_event(event: &str, data: &str) -> String {
    #[derive(Serialize)]
    struct HeraldFrame<'a> {
        action: &'a str,
        details: &'a RawValue,
    }
    let as_string;
    let details: &RawValue = match serde_json::from_str::<&RawValue>(data) {
        Ok(json) => json,
        Err(_) => {
            as_string = serde_json::value::to_raw_value(data).expect("a string serialises");
            &as_string
        }
    };
    serde_json::to_string(&HeraldFrame { action: event, details }).expect("frames serialise")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn reads_what_pusher_js_sends() {
        let subscribe = r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel":"presence-a","channel_data":"{\"user_id\":1}"}}"#;
        match ClientMessage::parse(subscribe).unwrap() {
            ClientMessage::Subscribe { channel, auth, channel_data } => {
                assert_eq!((channel.as_str(), auth.as_deref()), ("presence-a", Some("k:s")));
                assert_eq!(channel_data.as_deref(), Some(r#"{"user_id":1}"#));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(ClientMessage::parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ClientMessage::Ping)));
        let public = r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"chat"}}"#;
        assert!(
            matches!(ClientMessage::parse(public), Ok(ClientMessage::Subscribe { auth: Some(a), .. }) if a.is_empty())
        );
        let signin = r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#;
        assert!(matches!(ClientMessage::parse(signin), Ok(ClientMessage::SignIn { .. })));
        let typing = r#"{"event":"client-typing","channel":"private-a","data":{"who": "me"}}"#;
        match ClientMessage::parse(typing).unwrap() {
            ClientMessage::ClientEvent { event, channel, data } => {
                assert_eq!(
                    (event.as_str(), channel.as_str(), data.get()),
                    ("client-typing", "private-a", r#"{"who": "me"}"#)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn protocol_data_may_come_as_a_string() {
        let frame = r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"chat\"}"}"#;
        assert!(matches!(ClientMessage::parse(frame), Ok(ClientMessage::Unsubscribe { channel }) if channel == "chat"));
    }

    #[test]
    fn refusals_are_errors_with_a_reason() {
        for (frame, reason) in [
            ("[1]", "JSON object"),
            ("{", "not valid JSON"),
            (r#"{"data":{}}"#, "missing \"event\""),
            (r#"{"event":"pusher:subscribe"}"#, "needs data"),
            (r#"{"event":"pusher:subscribe","data":{"auth":"x"}}"#, "bad data"),
            (r#"{"event":"client-x","data":{}}"#, "needs a \"channel\""),
            (r#"{"event":"hello","data":{}}"#, "unsupported event"),
            (r#"{"event":"pusher:signin","data":"nope"}"#, "bad data"),
        ] {
            let error = ClientMessage::parse(frame).unwrap_err();
            assert!(error.0.contains(reason), "{frame}: {error}");
        }
    }

    #[test]
    fn members_have_string_ids_and_bounded_info() {
        let member = Member::parse(r#"{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#, 1024).unwrap();
        assert_eq!(member.user_id, "10");
        assert_eq!(member.user_info.unwrap().get(), r#"{"name":"Mr. Pusher"}"#);
        assert!(Member::parse(r#"{"user_id":"u"}"#, 1024).unwrap().user_info.is_none());
        for bad in [r#"{}"#, r#"{"user_id":""}"#, r#"{"user_id":[1]}"#, "7", "{"] {
            assert!(Member::parse(bad, 1024).is_err(), "{bad}");
        }
        assert!(Member::parse(r#"{"user_id":1,"user_info":"0123456789"}"#, 8).is_err());
    }

    #[test]
    fn sign_in_needs_a_string_id() {
        assert_eq!(signed_in_user(r#"{"id":"42","name":"x"}"#).unwrap(), "42");
        for bad in [r#"{"id":42}"#, r#"{"id":""}"#, "{}", "nope"] {
            assert!(signed_in_user(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_frame_carries_its_data_as_a_json_string() {
        let socket: SocketId = "123.456".parse().unwrap();
        let frame = value(&connection_established(socket, 120));
        assert_eq!(frame["event"], "pusher:connection_established");
        assert_eq!(value(frame["data"].as_str().unwrap()), json!({"socket_id": "123.456", "activity_timeout": 120}));
    }

    #[test]
    fn presence_success_lists_every_member() {
        let members = [
            Member::parse(r#"{"user_id":1,"user_info":{"name":"a"}}"#, 100).unwrap(),
            Member::parse(r#"{"user_id":"b"}"#, 100).unwrap(),
        ];
        let frame = value(&subscription_succeeded("presence-r", Some(&members)));
        assert_eq!(frame["channel"], "presence-r");
        let data = value(frame["data"].as_str().unwrap());
        assert_eq!(data, json!({"presence": {"ids": ["1", "b"], "hash": {"1": {"name": "a"}, "b": null}, "count": 2}}));
        assert_eq!(
            value(&subscription_succeeded("chat", None)),
            json!({"event": "pusher_internal:subscription_succeeded", "channel": "chat", "data": "{}"})
        );
    }

    #[test]
    fn presence_success_keeps_user_info_that_reads_only_as_raw_json() {
        // Found writing the `pusher_frame` fuzz target: `user_info` is kept raw,
        // and a number out of f64's range is valid raw JSON but no value;
        // reading it again to list the members panicked.
        let member = Member::parse(r#"{"user_id":"u","user_info":1e999}"#, 100).unwrap();
        let frame = value(&subscription_succeeded("presence-r", Some(std::slice::from_ref(&member))));
        assert_eq!(frame["data"].as_str().unwrap(), r#"{"presence":{"ids":["u"],"hash":{"u":1e999},"count":1}}"#);
    }

    #[test]
    fn member_events_and_errors_have_pushers_shape() {
        let member = Member::parse(r#"{"user_id":7,"user_info":{"n":1}}"#, 100).unwrap();
        let added = value(&member_added("presence-r", &member));
        assert_eq!(value(added["data"].as_str().unwrap()), json!({"user_id": "7", "user_info": {"n": 1}}));
        let removed = value(&member_removed("presence-r", "7"));
        assert_eq!(value(removed["data"].as_str().unwrap()), json!({"user_id": "7"}));
        assert_eq!(
            value(&error(Some(4001), "no app")),
            json!({"event": "pusher:error", "data": {"code": 4001, "message": "no app"}})
        );
        assert_eq!(value(&error(None, "x"))["data"]["code"], Value::Null);
        let refused = value(&subscription_error("private-a", 401, "bad auth"));
        assert_eq!(refused["data"], json!({"type": "AuthError", "error": "bad auth", "status": 401}));
        assert_eq!(value(&signin_success("{\"id\":\"1\"}"))["data"]["user_data"], "{\"id\":\"1\"}");
        assert_eq!(value(&pong()), json!({"event": "pusher:pong", "data": {}}));
    }

    #[test]
    fn herald_frames_become_pusher_events_with_string_data() {
        let object = event_from_herald(r#"{"action":"msg","details":{"a": 1}}"#, Some("chat"), None).unwrap();
        assert_eq!(object, r#"{"event":"msg","channel":"chat","data":"{\"a\": 1}"}"#);
        let string = event_from_herald(r#"{"action":"msg","details":"hi \"you\""}"#, Some("chat"), None).unwrap();
        assert_eq!(value(&string)["data"], "hi \"you\"");
        let bare = event_from_herald(r#"{"action":"msg"}"#, None, None).unwrap();
        assert_eq!(bare, r#"{"event":"msg","data":"null"}"#);
        let from_member =
            event_from_herald(r#"{"action":"client-x","details":{}}"#, Some("presence-a"), Some("7")).unwrap();
        assert_eq!(value(&from_member)["user_id"], "7");
        assert!(event_from_herald("[]", None, None).is_err());
        assert!(event_from_herald(r#"{"details":1}"#, None, None).is_err());
    }

    #[test]
    fn pusher_events_become_herald_frames_keeping_json_as_written() {
        assert_eq!(herald_from_event("e", r#"{"some": "data"}"#), r#"{"action":"e","details":{"some": "data"}}"#);
        assert_eq!(herald_from_event("e", "plain text"), r#"{"action":"e","details":"plain text"}"#);
        assert_eq!(herald_from_event("e", "12"), r#"{"action":"e","details":12}"#);
        // And back: a subscriber gets the data the trigger sent.
        let back = event_from_herald(&herald_from_event("e", r#"{"some": "data"}"#), Some("c"), None).unwrap();
        assert_eq!(value(&back)["data"], r#"{"some": "data"}"#);
    }
}
