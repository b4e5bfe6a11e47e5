//! Chat rooms on Herald's groups.
//!
//! Room `R` is the group `room:R`: joining puts the connection in it, and
//! messages are published to it. Herald sends the connection's groups with
//! every action, so the service needs no state of its own: any number of
//! copies can share `examples.chat` in its queue group, and a copy can stop
//! or crash without losing a room.
//!
//! | action | details | effects | reply |
//! | --- | --- | --- | --- |
//! | `chat/join` | `{"room"}` | join `room:R`; `chat/joined` `{"room", "user"}` to `room:R` | `{"room"}` |
//! | `chat/leave` | `{"room"}` | leave `room:R`; `chat/left` `{"room", "user"}` to `room:R` | `{"room"}` |
//! | `chat/send` | `{"room", "text"}` | `chat/message` `{"room", "user", "text", "at"}` to `room:R` | `{"ok": true}` |
//! | `chat/who` | `{"room"}` | | `{"room", "users"}`: who is in the room now, on every edge |
//! | `$disconnect` | (from Herald) | `chat/left` to each room the connection was in | |
//!
//! `chat/who` asks Herald's presence (the edges answer for their own
//! connections), so it stays right across edges and crashes without any
//! state here. A connection that goes away is announced with `chat/left` when
//! the `$disconnect` route points here; a user with another tab still in the
//! room is still listed by `chat/who`.
//!
//! `at` is when the service took the message, RFC 3339 UTC with
//! milliseconds, as in Herald's lifecycle events. Joining a room the
//! connection is already in, or leaving one it is not in, has no effects,
//! so a retried request is not announced twice.
//!
//! Refused with an error reply: anonymous connections (403; a chat message
//! needs an author), other actions (404), room names other
//! than 1 to 64 characters of `A-Z a-z 0-9 _ -` (400), texts other than 1 to
//! 2000 characters (400), and sending to a room the connection has not
//! joined (403).
//!
//! Wire it up in the routes file:
//!
//! ```toml
//! [[routes]]
//! action = "chat/*"
//! nats = "examples.chat"
//!
//! [[routes]]
//! action = "$disconnect"
//! nats = "examples.chat"
//! ```

use std::future::Future;
use std::time::{Duration, SystemTime};

use herald_bus::{Bus, BusError};
use herald_handler::{Handler, Presence, Pusher, Reply, Request, Target};
use herald_proto::client::action;
use herald_proto::subject::Subjects;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use thiserror::Error;

/// The subject the `chat/*` route points at.
pub const SUBJECT: &str = "examples.chat";

/// Longest room name, in characters.
const MAX_ROOM_CHARS: usize = 64;

/// Longest message, in characters.
const MAX_TEXT_CHARS: usize = 2000;

/// How long `chat/who` waits for the edges' answers. Live edges answer in
/// milliseconds and the wait ends with the last of them; the whole timeout
/// passes only while an edge that died unannounced still counts as live.
/// 300 ms proved too short on a starved machine (the soak saw empty rooms).
const WHO_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `examples.chat` until `stop` resolves.
pub async fn serve(bus: &Bus, subjects: &Subjects, stop: impl Future<Output = ()>) -> Result<(), BusError> {
    let presence = Presence::start(bus.clone(), subjects.clone(), WHO_TIMEOUT).await?;
    let pusher = Pusher::new(bus.clone(), subjects.clone());
    Handler::new(SUBJECT)
        .serve(
            bus,
            move |request| {
                let (presence, pusher) = (presence.clone(), pusher.clone());
                async move {
                    answer(&request, &presence, &pusher)
                        .await
                        .unwrap_or_else(|refusal| Reply::error(refusal.code(), refusal.to_string()))
                }
            },
            stop,
        )
        .await
}

/// Why a chat action was refused; the message is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
enum Refusal {
    #[error("sign in to chat")]
    Anonymous,
    #[error("no chat action {0:?}: expected chat/join, chat/leave, chat/send or chat/who")]
    UnknownAction(String),
    #[error("bad details for {action}: {reason}")]
    BadDetails { action: String, reason: String },
    #[error("a room name is 1 to {MAX_ROOM_CHARS} characters of A-Z a-z 0-9 _ -")]
    BadRoom,
    #[error("a message is 1 to {MAX_TEXT_CHARS} characters")]
    BadText,
    #[error("join the room first")]
    NotInRoom,
    #[error("cannot reach Herald: {0}")]
    Unavailable(String),
}

impl Refusal {
    /// The error reply's code, as HTTP would have it.
    fn code(&self) -> u16 {
        match self {
            Refusal::UnknownAction(_) => 404,
            Refusal::BadDetails { .. } | Refusal::BadRoom | Refusal::BadText => 400,
            Refusal::Anonymous | Refusal::NotInRoom => 403,
            Refusal::Unavailable(_) => 503,
        }
    }
}

/// A room name that is valid. The character set keeps `room:R` a plain
/// subject token (`herald.group.room:R`), readable in NATS tooling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
struct Room(String);

impl Room {
    fn new(name: String) -> Result<Room, Refusal> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
        // Every allowed character is one byte, so bytes count characters.
        if (1..=MAX_ROOM_CHARS).contains(&name.len()) && name.bytes().all(allowed) {
            Ok(Room(name))
        } else {
            Err(Refusal::BadRoom)
        }
    }

    /// The group of the connections in the room.
    fn group(&self) -> String {
        format!("room:{}", self.0)
    }

    /// Whether a connection in `groups` is in the room.
    fn has_member(&self, groups: &[String]) -> bool {
        groups.contains(&self.group())
    }

    /// Everyone in the room.
    fn audience(&self) -> Target {
        Target { groups: vec![self.group()], ..Target::default() }
    }

    /// The room a group is, if it is one.
    fn of_group(group: &str) -> Option<Room> {
        Room::new(group.strip_prefix("room:")?.to_owned()).ok()
    }
}

/// Checks a message's length in characters, not bytes, so that a message in
/// any script gets the same allowance.
fn check_text(text: &str) -> Result<(), Refusal> {
    if (1..=MAX_TEXT_CHARS).contains(&text.chars().count()) { Ok(()) } else { Err(Refusal::BadText) }
}

/// Details of `chat/join` and `chat/leave`.
#[derive(Deserialize)]
struct RoomDetails {
    room: String,
}

/// Details of `chat/send`.
#[derive(Deserialize)]
struct SendDetails {
    room: String,
    text: String,
}

/// Answers one chat action, or says why it is refused. Details are read per
/// action, so a bad one gets a message naming the action.
async fn answer(request: &Request<Box<RawValue>>, presence: &Presence, pusher: &Pusher) -> Result<Reply, Refusal> {
    let user = request.user.as_deref().ok_or(Refusal::Anonymous)?;
    match request.action.as_str() {
        "chat/who" => {
            let room = Room::new(read::<RoomDetails>(request)?.room)?;
            let present = presence.group(&room.group()).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
            Ok(Reply::details(json!({ "room": room, "users": present.users })))
        }
        // Herald's notice that a connection ended: nobody to reply to, so
        // the rooms hear of it through the bus directly.
        action::DISCONNECT => {
            for room in request.groups.iter().filter_map(|group| Room::of_group(group)) {
                let left = json!({ "room": room, "user": user });
                pusher
                    .publish(&room.audience(), "chat/left", left)
                    .await
                    .map_err(|e| Refusal::Unavailable(e.to_string()))?;
            }
            Ok(Reply::noreply())
        }
        "chat/join" => {
            let room = Room::new(read::<RoomDetails>(request)?.room)?;
            let reply = Reply::details(json!({ "room": room }));
            if room.has_member(&request.groups) {
                return Ok(reply);
            }
            Ok(reply.join(room.group()).publish(room.audience(), "chat/joined", json!({ "room": room, "user": user })))
        }
        "chat/leave" => {
            let room = Room::new(read::<RoomDetails>(request)?.room)?;
            let reply = Reply::details(json!({ "room": room }));
            if !room.has_member(&request.groups) {
                return Ok(reply);
            }
            Ok(reply.leave(room.group()).publish(room.audience(), "chat/left", json!({ "room": room, "user": user })))
        }
        "chat/send" => {
            let SendDetails { room, text } = read(request)?;
            let room = Room::new(room)?;
            if !room.has_member(&request.groups) {
                return Err(Refusal::NotInRoom);
            }
            check_text(&text)?;
            let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            let message = json!({ "room": room, "user": user, "text": text, "at": at });
            Ok(Reply::details(json!({ "ok": true })).publish(room.audience(), "chat/message", message))
        }
        other => Err(Refusal::UnknownAction(other.to_owned())),
    }
}

/// Reads the details of one chat action.
fn read<D: DeserializeOwned>(request: &Request<Box<RawValue>>) -> Result<D, Refusal> {
    serde_json::from_str(request.details.get())
        .map_err(|e| Refusal::BadDetails { action: request.action.clone(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_1_to_64_plain_characters() {
        for name in ["a", "Z", "0", "_", "-", "lobby", "Team_42-ops", &"r".repeat(64)] {
            assert_eq!(Room::new(name.to_owned()), Ok(Room(name.to_owned())), "{name:?}");
        }
        for name in ["", &"r".repeat(65), "a b", "a.b", "a:b", "a*", ">", "é", "room\n", "ｒｏｏｍ"] {
            assert_eq!(Room::new(name.to_owned()), Err(Refusal::BadRoom), "{name:?}");
        }
    }

    #[test]
    fn a_room_is_its_group() {
        let room = Room::new("lobby".to_owned()).unwrap();
        assert_eq!(room.group(), "room:lobby");
        assert!(room.has_member(&["team".to_owned(), "room:lobby".to_owned()]));
        assert!(!room.has_member(&["lobby".to_owned(), "room:lobby2".to_owned()]));
        assert_eq!(room.audience(), Target { groups: vec!["room:lobby".to_owned()], ..Target::default() });
    }

    #[test]
    fn texts_are_1_to_2000_characters() {
        for text in ["x", " ", &"x".repeat(2000), &"é".repeat(2000), &"🦀".repeat(2000)] {
            assert_eq!(check_text(text), Ok(()), "{} chars", text.chars().count());
        }
        for text in ["", &"x".repeat(2001), &"é".repeat(2001)] {
            assert_eq!(check_text(text), Err(Refusal::BadText), "{} chars", text.chars().count());
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        assert_eq!(Refusal::BadRoom.to_string(), "a room name is 1 to 64 characters of A-Z a-z 0-9 _ -");
        assert_eq!(Refusal::BadText.to_string(), "a message is 1 to 2000 characters");
        assert_eq!(Refusal::NotInRoom.to_string(), "join the room first");
        let codes = [
            (Refusal::Anonymous, 403),
            (Refusal::NotInRoom, 403),
            (Refusal::UnknownAction("chat/x".to_owned()), 404),
            (Refusal::BadRoom, 400),
            (Refusal::BadText, 400),
        ];
        for (refusal, code) in codes {
            assert_eq!(refusal.code(), code, "{refusal:?}");
        }
    }
}
