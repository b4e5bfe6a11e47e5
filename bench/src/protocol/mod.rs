//! The servers the tool can load, and how each is spoken to: Herald, and
//! the peers under `bench/peers/` (see its README) it is measured against.
//!
//! The scenarios are the same for every server; only four things differ:
//! the URL a receiver opens (how it proves who it is and asks for groups),
//! the greeting that says it is in, how a broadcast arrives (bare, or
//! wrapped in a Socket.IO event), and where a publisher sends (NATS for
//! Herald, a publisher WebSocket for the peers).
//!
//! [`pusher`]: the Pusher protocol 7 (Herald's `/app/<key>`, soketi,
//! sockudo), where groups are channels a receiver subscribes to and
//! messages are published through the app's HTTP API.

pub mod pusher;

use std::borrow::Cow;

use clap::ValueEnum;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::conn::{OpenError, Ws};

/// Engine.IO's ping, sent by a Socket.IO server; the client answers
/// [`ENGINE_IO_PONG`] or is dropped after `pingTimeout`.
const ENGINE_IO_PING: &str = "2";
const ENGINE_IO_PONG: &str = "3";
/// Engine.IO "open" (`0{...}`), sent by the server first.
const ENGINE_IO_OPEN: &str = "0";
/// Socket.IO "connect" to the default namespace: asked by the client,
/// acknowledged by the server as `40{"sid":...}`.
const SOCKET_IO_CONNECT: &str = "40";
/// Socket.IO "event" to the default namespace: `42[name, ...args]`.
const SOCKET_IO_EVENT: &str = "42";

/// How the tool talks to the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// A Herald edge: a JWT in `?token=` (groups in its claims),
    /// `$connected` first; messages are published on NATS.
    Herald,
    /// A plain WebSocket peer (uWebSockets.js, ws): `?groups=` in the URL,
    /// `$connected` first; messages are published over a WebSocket to
    /// `/publish?to=<topic>` and arrive verbatim.
    Plain,
    /// A Socket.IO peer over Engine.IO v4 on WebSocket: `?groups=` in the
    /// handshake, the Socket.IO connect as greeting; a publisher emits
    /// `publish` and receivers get `42["message",<frame>]`.
    SocketIo,
    /// A Herald edge's Socket.IO endpoint (`/socket.io/`): a JWT in
    /// `?token=` as for Herald, the Socket.IO connect as greeting;
    /// messages are published on NATS and arrive as
    /// `42["<action>", <details>]`.
    HeraldSocketIo,
    /// A Pusher protocol 7 server (Herald's `/app/<key>`, soketi, sockudo):
    /// `pusher:connection_established` first, then each group subscribed
    /// as a channel (a `private-` one signed with the app's secret, given
    /// as the token secret); messages are published through the app's HTTP
    /// API (or, for Herald, on NATS) and arrive as events. See [`pusher`].
    Pusher,
}

/// An application frame, read only as far as the tool needs: its action,
/// and its details and id left unparsed (absent ones are `None`).
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    #[serde(borrow)]
    pub details: Option<&'a RawValue>,
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
}

/// A text frame from the server, as the tool sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// An application frame (unwrapped from its Socket.IO event).
    Frame(&'a str),
    /// A Pusher event: its name, and its data as JSON text (unescaped from
    /// the string Pusher sends it in).
    Event { name: Cow<'a, str>, data: Cow<'a, str> },
    /// An Engine.IO or Pusher ping: answer with [`Protocol::pong`].
    Ping,
    /// Protocol chatter with no application frame.
    Other,
}

impl Protocol {
    /// The URL receiver `token` opens on `url`, asking for `groups` where
    /// the server takes them from the URL.
    pub fn receiver_url(self, url: &str, token: &str, groups: &[String]) -> String {
        let separator = if url.contains('?') { '&' } else { '?' };
        match self {
            Protocol::Herald | Protocol::HeraldSocketIo => format!("{url}{separator}token={token}"),
            Protocol::Plain | Protocol::SocketIo if groups.is_empty() => format!("{url}{separator}token={token}"),
            Protocol::Plain | Protocol::SocketIo => {
                format!("{url}{separator}token={token}&groups={}", groups.join(","))
            }
            Protocol::Pusher => pusher::receiver_url(url),
        }
    }

    /// The URL of the publisher for `topic` (`all` or `group.<name>`) on
    /// the server of receiver URL `url`; `None` for Herald, which is
    /// published to over NATS, and for Pusher, which has no publisher
    /// WebSocket (see [`pusher::Publish`]).
    pub fn publisher_url(self, url: &str, topic: &str) -> Result<Option<String>, String> {
        let uri: Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
        let authority = uri.authority().ok_or_else(|| format!("{url} has no host"))?;
        Ok(match self {
            Protocol::Herald | Protocol::HeraldSocketIo | Protocol::Pusher => None,
            Protocol::Plain => Some(format!("ws://{authority}/publish?to={topic}")),
            Protocol::SocketIo => {
                Some(format!("ws://{authority}{}?EIO=4&transport=websocket&publisher=1&to={topic}", uri.path()))
            }
        })
    }

    /// Waits until receiver `ws`, opened on `url`, is in: greeted (see
    /// [`Protocol::greet`]) and, on a Pusher server, subscribed to `groups`
    /// as channels, private ones signed with `secret`.
    pub async fn enter(self, ws: &mut Ws, url: &str, secret: &str, groups: &[String]) -> Result<(), OpenError> {
        match self {
            Protocol::Pusher => {
                let key = pusher::app_key(url).map_err(OpenError::Greeting)?;
                pusher::enter(ws, &key, secret, groups).await
            }
            Protocol::Herald | Protocol::Plain | Protocol::SocketIo | Protocol::HeraldSocketIo => self.greet(ws).await,
        }
    }

    /// Waits until the server says the connection is in: `$connected` for
    /// Herald and the plain peers, the Socket.IO connect for Socket.IO
    /// (whose publisher is greeted the same way),
    /// `pusher:connection_established` for Pusher.
    pub async fn greet(self, ws: &mut Ws) -> Result<(), OpenError> {
        match self {
            Protocol::Pusher => pusher::established(ws).await.map(drop),
            Protocol::Herald | Protocol::Plain => {
                let text = next_text(ws).await?;
                match serde_json::from_str::<Frame<'_>>(&text) {
                    Ok(frame) if frame.action == "$connected" => Ok(()),
                    Ok(frame) => Err(OpenError::Greeting(format!("got {:?} first", frame.action))),
                    Err(e) => Err(OpenError::Greeting(format!("bad frame: {e}"))),
                }
            }
            Protocol::SocketIo | Protocol::HeraldSocketIo => {
                let open = next_text(ws).await?;
                if !open.starts_with(ENGINE_IO_OPEN) {
                    return Err(OpenError::Greeting(format!("expected an Engine.IO open, got {open:?}")));
                }
                ws.send(Message::text(SOCKET_IO_CONNECT))
                    .await
                    .map_err(|e| OpenError::Greeting(format!("cannot send the Socket.IO connect: {e}")))?;
                let ack = next_text(ws).await?;
                if ack.starts_with(SOCKET_IO_CONNECT) {
                    Ok(())
                } else {
                    Err(OpenError::Greeting(format!("expected the Socket.IO connect, got {ack:?}")))
                }
            }
        }
    }

    /// What a text frame from the server holds.
    pub fn inbound(self, text: &str) -> Inbound<'_> {
        match self {
            Protocol::Herald | Protocol::Plain => Inbound::Frame(text),
            Protocol::SocketIo | Protocol::HeraldSocketIo if text == ENGINE_IO_PING => Inbound::Ping,
            Protocol::SocketIo => {
                let Some(event) = text.strip_prefix(SOCKET_IO_EVENT) else { return Inbound::Other };
                match serde_json::from_str::<(Cow<'_, str>, &RawValue)>(event) {
                    Ok((_, frame)) => Inbound::Frame(frame.get()),
                    Err(_) => Inbound::Other,
                }
            }
            // Herald sends a frame's action as the event's name and its
            // details as its argument.
            Protocol::HeraldSocketIo => {
                let Some(event) = text.strip_prefix(SOCKET_IO_EVENT) else { return Inbound::Other };
                match serde_json::from_str::<(Cow<'_, str>, &RawValue)>(event) {
                    Ok((name, data)) => Inbound::Event { name, data: Cow::Borrowed(data.get()) },
                    Err(_) => Inbound::Other,
                }
            }
            Protocol::Pusher => pusher::inbound(text),
        }
    }

    /// The answer to an [`Inbound::Ping`].
    pub fn pong(self) -> Message {
        match self {
            Protocol::Pusher => pusher::pong(),
            Protocol::Herald | Protocol::Plain | Protocol::SocketIo | Protocol::HeraldSocketIo => {
                Message::text(ENGINE_IO_PONG)
            }
        }
    }

    /// Frame `frame` (a JSON object) as a publisher sends it.
    pub fn published(self, frame: &str) -> Message {
        match self {
            Protocol::Herald | Protocol::HeraldSocketIo | Protocol::Plain | Protocol::Pusher => Message::text(frame),
            Protocol::SocketIo => Message::text(format!(r#"{SOCKET_IO_EVENT}["publish",{frame}]"#)),
        }
    }
}

/// The next text frame, past WebSocket pings and pongs.
async fn next_text(ws: &mut Ws) -> Result<String, OpenError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or_else(|| "no code".to_owned(), |f| u16::from(f.code).to_string());
                return Err(OpenError::Greeting(format!("closed ({code})")));
            }
            Some(Ok(other)) => return Err(OpenError::Greeting(format!("unexpected {other:?}"))),
            Some(Err(e)) => return Err(OpenError::Greeting(e.to_string())),
            None => return Err(OpenError::Greeting("connection ended".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn herald_takes_groups_from_the_token_and_peers_from_the_url() {
        let groups = vec!["bench".to_owned(), "b2".to_owned()];
        assert_eq!(Protocol::Herald.receiver_url("ws://h:1/ws", "T", &groups), "ws://h:1/ws?token=T");
        assert_eq!(Protocol::Plain.receiver_url("ws://h:1/ws", "T", &groups), "ws://h:1/ws?token=T&groups=bench,b2");
        assert_eq!(Protocol::Plain.receiver_url("ws://h:1/ws", "T", &[]), "ws://h:1/ws?token=T");
        let sio = "ws://h:1/socket.io/?EIO=4&transport=websocket";
        assert_eq!(Protocol::SocketIo.receiver_url(sio, "T", &groups[..1]), format!("{sio}&token=T&groups=bench"));
    }

    #[test]
    fn publishers_go_to_the_server_of_the_receivers() {
        assert_eq!(Protocol::Herald.publisher_url("ws://h:1/ws", "all"), Ok(None));
        assert_eq!(
            Protocol::Plain.publisher_url("ws://h:1/ws", "group.bench").unwrap().unwrap(),
            "ws://h:1/publish?to=group.bench"
        );
        assert_eq!(
            Protocol::SocketIo.publisher_url("ws://h:1/socket.io/?EIO=4&transport=websocket", "all").unwrap().unwrap(),
            "ws://h:1/socket.io/?EIO=4&transport=websocket&publisher=1&to=all"
        );
        assert!(Protocol::Plain.publisher_url("not a url", "all").is_err());
    }

    #[test]
    fn socket_io_events_are_unwrapped_and_pings_told_apart() {
        let frame = r#"{"action":"bench","details":{"t":1,"seq":2}}"#;
        let event = format!(r#"42["message",{frame}]"#);
        assert_eq!(Protocol::SocketIo.inbound(&event), Inbound::Frame(frame));
        assert_eq!(Protocol::SocketIo.inbound("2"), Inbound::Ping);
        assert_eq!(Protocol::SocketIo.inbound(r#"40{"sid":"x"}"#), Inbound::Other);
        assert_eq!(Protocol::SocketIo.inbound("42 not json"), Inbound::Other);
        assert_eq!(Protocol::Plain.inbound(frame), Inbound::Frame(frame));
        assert_eq!(Protocol::Herald.inbound("2"), Inbound::Frame("2"));
    }

    #[test]
    fn pusher_receivers_open_app_key_and_answer_pusher_pings() {
        let url = "ws://h:1/app/k";
        assert_eq!(
            Protocol::Pusher.receiver_url(url, "T", &["bench".to_owned()]),
            format!("{url}?protocol=7&client=js&version=8.4.0")
        );
        assert_eq!(Protocol::Pusher.publisher_url(url, "group.bench"), Ok(None));
        assert_eq!(Protocol::Pusher.inbound(r#"{"event":"pusher:ping","data":{}}"#), Inbound::Ping);
        assert_eq!(Protocol::Pusher.pong(), pusher::pong());
        assert_eq!(Protocol::SocketIo.pong(), Message::text("3"));
    }

    #[test]
    fn herald_socket_io_events_are_read_as_events() {
        let event = r#"42["bench",{"t":1,"seq":2}]"#;
        assert_eq!(
            Protocol::HeraldSocketIo.inbound(event),
            Inbound::Event { name: "bench".into(), data: r#"{"t":1,"seq":2}"#.into() }
        );
        assert_eq!(Protocol::HeraldSocketIo.inbound("2"), Inbound::Ping);
        assert_eq!(
            Protocol::HeraldSocketIo.receiver_url("ws://h:1/socket.io/?EIO=4", "T", &[]),
            "ws://h:1/socket.io/?EIO=4&token=T"
        );
    }

    #[test]
    fn a_socket_io_publisher_emits_publish_with_the_frame() {
        let frame = r#"{"action":"bench"}"#;
        assert_eq!(Protocol::SocketIo.published(frame), Message::text(r#"42["publish",{"action":"bench"}]"#));
        assert_eq!(Protocol::Plain.published(frame), Message::text(frame));
    }
}
