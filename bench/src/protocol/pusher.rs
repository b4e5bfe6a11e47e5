//! The Pusher Channels protocol 7 as the tool speaks it, to Herald's
//! `/app/<key>` and to the Pusher-compatible peers (soketi, sockudo).
//!
//! A receiver opens `/app/<key>?protocol=7&client=js&version=8.4.0` (what
//! pusher-js 8.4 opens), reads `pusher:connection_established` for its
//! socket id, subscribes to its channels (a `private-` one with an `auth`
//! signed here with the app's secret, as an app's auth endpoint signs it)
//! and waits for every `pusher_internal:subscription_succeeded`. Events
//! arrive as `{"event", "channel", "data"}` with `data` a JSON string; the
//! server's `pusher:ping` is answered with `pusher:pong`.
//!
//! Publishing goes through the app's HTTP API (`POST /apps/<id>/events`,
//! signed as Pusher's server SDKs sign it) or, for Herald, to the channel's
//! group on NATS: a Pusher channel is the Herald group of the same name.

use std::borrow::Cow;

use clap::ValueEnum;
use futures_util::SinkExt;
use herald_proto::pusher::channel::ChannelKind;
use herald_proto::pusher::frame::event;
use herald_proto::pusher::sign::{Signed, sign_rest};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;

use super::{Frame, Inbound, next_text};
use crate::conn::{OpenError, Ws};

/// What a receiver adds to `/app/<key>`: the protocol version and the
/// client pusher-js 8.4 says it is.
const CONNECT_QUERY: &str = "protocol=7&client=js&version=8.4.0";
/// The path prefix of a Pusher connection, before the app's key.
const APP_PATH: &str = "/app/";
/// The topic prefix the scenarios give a group (`group.<name>`); the
/// channel is the name.
const GROUP_TOPIC: &str = "group.";

/// How messages reach a Pusher server's subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Publish {
    /// Through the app's HTTP API, `POST /apps/<id>/events`, as a Laravel
    /// app's broadcaster does (every Pusher-compatible server).
    Rest,
    /// To the channel's group subject on NATS, as a backend publishes to
    /// Herald (Herald only).
    Nats,
}

/// The URL a receiver opens on a Pusher server whose connection URL is
/// `url` (`ws://host:port/app/<key>`).
pub fn receiver_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{CONNECT_QUERY}")
}

/// The app key in a connection URL `ws://host:port/app/<key>`.
pub fn app_key(url: &str) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    match uri.path().strip_prefix(APP_PATH) {
        Some(key) if !key.is_empty() && !key.contains('/') => Ok(key.to_owned()),
        _ => Err(format!("{url}: a Pusher URL is ws://host:port/app/<key>")),
    }
}

/// The channel of a scenario's topic: `group.<name>` is channel `<name>`;
/// Pusher has no "everyone".
pub fn channel_of(topic: &str) -> Result<&str, String> {
    match topic.strip_prefix(GROUP_TOPIC) {
        Some(channel) if ChannelKind::of(channel).is_ok() => Ok(channel),
        Some(channel) => Err(format!("{channel:?} is not a Pusher channel name")),
        None => Err(format!(
            "Pusher has no broadcast to {topic:?}: a message goes to channels (use --target group or private)"
        )),
    }
}

/// A server frame, read only as far as the tool needs.
#[derive(Deserialize)]
struct ServerFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// A JSON string's contents, borrowed unless it had escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> ServerFrame<'a> {
    /// The data as JSON text: a string's contents (how Pusher sends event
    /// data; borrowed unless it had escapes), or the raw JSON of anything
    /// else (soketi sends some protocol events' data as objects).
    ///
    /// This runs once per delivery, on the cores the server under test
    /// needs too, so it makes one pass. The string was checked as JSON when
    /// the frame was read: its contents are taken between the quotes,
    /// borrowed when they have no escape, otherwise copied once with the
    /// escapes replaced. serde_json's string reader, which checks and
    /// copies the string again through a buffer that grows, is left for
    /// `\u` escapes, which a benchmark event never has. With it reading
    /// every string, a Pusher event cost the tool about 1.25× a Herald
    /// frame; this way about 1.15×.
    fn data(&self) -> Cow<'a, str> {
        let Some(raw) = self.data else { return Cow::Borrowed("null") };
        let raw: &'a str = raw.get();
        let Some(contents) = raw.strip_prefix('"').and_then(|raw| raw.strip_suffix('"')) else {
            return Cow::Borrowed(raw);
        };
        if !contents.contains('\\') {
            return Cow::Borrowed(contents);
        }
        if let Some(unescaped) = unescape_short(contents) {
            return Cow::Owned(unescaped);
        }
        match serde_json::from_str::<Text<'a>>(raw) {
            Ok(Text(text)) => text,
            Err(_) => Cow::Borrowed(raw),
        }
    }
}

/// A JSON string's contents with their two-character escapes (`\"`,
/// `\n`, ...) replaced; `None` if one is a `\u` escape (serde_json reads
/// those).
fn unescape_short(mut rest: &str) -> Option<String> {
    let mut text = String::with_capacity(rest.len());
    while let Some(at) = rest.find('\\') {
        text.push_str(&rest[..at]);
        text.push(match rest.as_bytes().get(at + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            _ => return None,
        });
        rest = &rest[at + 2..];
    }
    text.push_str(rest);
    Some(text)
}

/// What a text frame from a Pusher server holds.
pub fn inbound(text: &str) -> Inbound<'_> {
    let Ok(frame) = serde_json::from_str::<ServerFrame<'_>>(text) else { return Inbound::Other };
    if frame.event == event::PING {
        return Inbound::Ping;
    }
    let data = frame.data();
    Inbound::Event { name: frame.event, data }
}

/// `pusher:pong`, the answer to a server's `pusher:ping`.
pub fn pong() -> Message {
    Message::text(format!(r#"{{"event":"{}","data":{{}}}}"#, event::PONG))
}

/// `pusher:subscribe` to `channel`, with `auth` for a private channel.
pub fn subscribe(channel: &str, auth: Option<&str>) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        channel: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        auth: Option<&'a str>,
    }
    serde_json::json!({ "event": event::SUBSCRIBE, "data": Data { channel, auth } }).to_string()
}

/// The `auth` an app's auth endpoint would give socket `socket_id` for
/// `channel`, or `None` for a channel anyone may join.
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str) -> Result<Option<String>, String> {
    let kind = ChannelKind::of(channel).map_err(|e| format!("{channel:?}: {e}"))?;
    match kind {
        ChannelKind::Public => Ok(None),
        ChannelKind::Private | ChannelKind::PrivateEncrypted => {
            Ok(Some(Signed::Channel { socket_id, channel }.auth(key, secret)))
        }
        ChannelKind::Presence | ChannelKind::User => {
            Err(format!("{channel:?}: the load tool subscribes to public and private channels only"))
        }
    }
}

/// The socket id in the data of `pusher:connection_established`.
fn socket_id(established: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Established {
        socket_id: String,
    }
    serde_json::from_str::<Established>(established)
        .map(|e| e.socket_id)
        .map_err(|e| format!("bad pusher:connection_established data {established:?}: {e}"))
}

/// Reads frames until the next one that is not a ping (pings answered).
async fn next_frame(ws: &mut Ws) -> Result<String, OpenError> {
    loop {
        let text = next_text(ws).await?;
        if inbound(&text) != Inbound::Ping {
            return Ok(text);
        }
        ws.send(pong()).await.map_err(|e| OpenError::Greeting(format!("cannot answer pusher:ping: {e}")))?;
    }
}

/// Waits for `pusher:connection_established`, and returns the socket id.
pub async fn established(ws: &mut Ws) -> Result<String, OpenError> {
    let text = next_frame(ws).await?;
    let frame: ServerFrame<'_> =
        serde_json::from_str(&text).map_err(|e| OpenError::Greeting(format!("bad frame {text:?}: {e}")))?;
    if frame.event != event::CONNECTION_ESTABLISHED {
        return Err(OpenError::Greeting(format!("got {text} first")));
    }
    socket_id(&frame.data()).map_err(OpenError::Greeting)
}

/// Connects a receiver: the socket id, then every channel subscribed (all
/// asked at once, then every answer awaited).
pub async fn enter(ws: &mut Ws, key: &str, secret: &str, channels: &[String]) -> Result<(), OpenError> {
    let socket_id = established(ws).await?;
    for channel in channels {
        let auth = channel_auth(key, secret, &socket_id, channel).map_err(OpenError::Greeting)?;
        ws.feed(Message::text(subscribe(channel, auth.as_deref())))
            .await
            .map_err(|e| OpenError::Greeting(format!("cannot subscribe: {e}")))?;
    }
    ws.flush().await.map_err(|e| OpenError::Greeting(format!("cannot subscribe: {e}")))?;
    let mut waiting: Vec<&str> = channels.iter().map(String::as_str).collect();
    while !waiting.is_empty() {
        let text = next_frame(ws).await?;
        let frame: ServerFrame<'_> =
            serde_json::from_str(&text).map_err(|e| OpenError::Greeting(format!("bad frame {text:?}: {e}")))?;
        let channel = frame.channel.as_deref().unwrap_or_default();
        match frame.event.as_ref() {
            event::SUBSCRIPTION_SUCCEEDED => waiting.retain(|c| *c != channel),
            event::SUBSCRIPTION_ERROR | event::ERROR => {
                return Err(OpenError::Greeting(format!("subscription refused: {text}")));
            }
            // A broadcast may overtake the last acknowledgements; the
            // run has not started publishing yet, so nothing is lost.
            _ => {}
        }
    }
    Ok(())
}

/// A signed `POST /apps/<id>/events` of benchmark frames to one channel.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// `http://host:port/apps/<id>/events`, unsigned.
    url: String,
    /// `/apps/<id>/events`, the path that is signed.
    path: String,
    key: String,
    secret: String,
    channel: String,
}

impl Trigger {
    /// Triggers to `channel` of app `app_id` (`key`, `secret`) on the HTTP
    /// API at `api` (`http://host:port`).
    pub fn new(api: &str, app_id: &str, key: &str, secret: &str, channel: &str) -> Trigger {
        let path = format!("/apps/{app_id}/events");
        Trigger {
            url: format!("{}{path}", api.trim_end_matches('/')),
            path,
            key: key.to_owned(),
            secret: secret.to_owned(),
            channel: channel.to_owned(),
        }
    }

    /// The body for benchmark frame `frame` (`{"action", "details"}`): the
    /// event is the action, its data the details' JSON text, as Herald
    /// turns a Herald frame into a Pusher event.
    pub fn body(&self, frame: &str) -> Result<String, String> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            channels: [&'a str; 1],
            data: &'a str,
        }
        let frame: Frame<'_> = serde_json::from_str(frame).map_err(|e| format!("not a frame: {e}"))?;
        let data = frame.details.map_or("null", RawValue::get);
        Ok(serde_json::to_string(&Body { name: &frame.action, channels: [&self.channel], data }).expect("serializes"))
    }

    /// The signed URL for `body` at Unix time `now_secs`.
    pub fn signed_url(&self, body: &str, now_secs: u64) -> String {
        let query = sign_rest(&self.key, &self.secret, "POST", &self.path, &[], body.as_bytes(), now_secs);
        format!("{}?{query}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use herald_proto::pusher::sign::{RestCall, verify_rest};

    use super::*;
    use crate::publish;

    // Pusher's published vectors (as in herald_proto::pusher::sign).
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn a_receiver_opens_app_key_with_protocol_7() {
        assert_eq!(receiver_url("ws://h:1/app/k"), "ws://h:1/app/k?protocol=7&client=js&version=8.4.0");
        assert_eq!(app_key("ws://h:1/app/bench-key"), Ok("bench-key".to_owned()));
        assert!(app_key("ws://h:1/ws").is_err());
        assert!(app_key("ws://h:1/app/").is_err());
        assert!(app_key("ws://h:1/app/a/b").is_err());
    }

    #[test]
    fn channels_are_groups_and_pusher_has_no_everyone() {
        assert_eq!(channel_of("group.bench"), Ok("bench"));
        assert_eq!(channel_of("group.private-bench"), Ok("private-bench"));
        assert!(channel_of("all").unwrap_err().contains("no broadcast"));
        assert!(channel_of("group.no spaces").is_err());
    }

    #[test]
    fn events_are_read_with_their_data_unescaped() {
        let text = r#"{"event":"bench","channel":"bench","data":"{\"t\":5,\"seq\":1}"}"#;
        assert_eq!(
            inbound(text),
            Inbound::Event { name: Cow::Borrowed("bench"), data: Cow::Owned(r#"{"t":5,"seq":1}"#.to_owned()) }
        );
        let escapes = r#"{"event":"e","data":"a\"b\\c\/d\ne\tf\rg\bh\fi"}"#;
        assert_eq!(
            inbound(escapes),
            Inbound::Event { name: Cow::Borrowed("e"), data: Cow::Owned("a\"b\\c/d\ne\tf\rg\u{8}h\u{c}i".into()) }
        );
        let unicode = r#"{"event":"e","data":"caf\u00e9 \"\ud83d\ude00\""}"#;
        assert_eq!(
            inbound(unicode),
            Inbound::Event { name: Cow::Borrowed("e"), data: Cow::Owned("café \"😀\"".into()) }
        );
        let plain = inbound(r#"{"event":"bench","data":"no escapes"}"#);
        assert!(matches!(plain, Inbound::Event { data: Cow::Borrowed("no escapes"), .. }), "{plain:?}");
        // soketi sends some data as an object, not a string.
        let pong = r#"{"event":"pusher:pong","data":{}}"#;
        assert_eq!(inbound(pong), Inbound::Event { name: Cow::Borrowed("pusher:pong"), data: Cow::Borrowed("{}") });
        assert_eq!(inbound(r#"{"event":"pusher:ping","data":{}}"#), Inbound::Ping);
        assert_eq!(inbound("not json"), Inbound::Other);
        assert_eq!(inbound(r#"{"data":"x"}"#), Inbound::Other);
    }

    #[test]
    fn herald_events_for_benchmark_frames_read_back_to_the_stamp() {
        // What Herald's edge sends a subscriber of "bench" for a frame
        // published to the group: herald_proto's own encoding.
        let frame = publish::frame(7, 1_700_000_000_000_000_001, 128);
        let frame = std::str::from_utf8(&frame).unwrap();
        let sent = herald_proto::pusher::frame::event_from_herald(frame, Some("bench"), None).unwrap();
        let Inbound::Event { name, data } = inbound(&sent) else { panic!("not an event: {sent}") };
        assert_eq!(name, publish::BENCH_ACTION);
        let stamp: publish::Stamp = serde_json::from_str(&data).unwrap();
        assert_eq!(stamp, publish::Stamp { t: 1_700_000_000_000_000_001, seq: 7 });
    }

    #[test]
    fn the_pong_and_the_subscriptions_are_pusher_frames() {
        let Message::Text(pong) = pong() else { panic!("not text") };
        assert_eq!(pong.as_str(), r#"{"event":"pusher:pong","data":{}}"#);
        let public: serde_json::Value = serde_json::from_str(&subscribe("bench", None)).unwrap();
        assert_eq!(public, serde_json::json!({"event": "pusher:subscribe", "data": {"channel": "bench"}}));
        let private: serde_json::Value = serde_json::from_str(&subscribe("private-b", Some("k:sig"))).unwrap();
        assert_eq!(private["data"], serde_json::json!({"channel": "private-b", "auth": "k:sig"}));
    }

    #[test]
    fn private_channels_are_signed_with_the_app_secret() {
        // Pusher's private-channel vector.
        let auth = channel_auth(KEY, SECRET, "1234.1234", "private-foobar").unwrap();
        assert_eq!(
            auth.as_deref(),
            Some("278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4")
        );
        assert_eq!(channel_auth(KEY, SECRET, "1234.1234", "public").unwrap(), None);
        assert!(channel_auth(KEY, SECRET, "1234.1234", "presence-x").is_err());
    }

    #[test]
    fn the_socket_id_comes_from_the_established_data() {
        assert_eq!(socket_id(r#"{"socket_id":"123.456","activity_timeout":120}"#), Ok("123.456".to_owned()));
        assert!(socket_id("{}").is_err());
    }

    #[test]
    fn a_trigger_carries_the_details_as_data_and_is_signed_as_pusher_signs() {
        let trigger = Trigger::new("http://h:1/", "3", KEY, SECRET, "project-3");
        let body = trigger.body(r#"{"action":"foo","details":{"some":"data"}}"#).unwrap();
        // The body of Pusher's REST vector, byte for byte.
        assert_eq!(body, r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#);
        let url = trigger.signed_url(&body, 1_353_088_179);
        assert_eq!(
            url,
            "http://h:1/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        let query = url.split_once('?').unwrap().1;
        let call = RestCall { method: "POST", path: "/apps/3/events", query, body: body.as_bytes() };
        assert_eq!(verify_rest(KEY, SECRET, &call, 1_353_088_179), Ok(()));
        assert!(trigger.body("not json").is_err());
    }
}
