//! The Pusher client frame decoder: every text frame pusher-js, Laravel
//! Echo or anything else sends on the Pusher endpoint
//! (`herald_proto::pusher::frame`), and what the edge makes of it.
//!
//! - Reading never panics; a refusal is a `BadFrame` with a message, and
//!   the `pusher:error` that carries it is JSON.
//! - A subscription's channel name is refused or has a kind, and a valid
//!   name is one subject token as a group; its `channel_data` reads as a
//!   member or is refused, and the frames announcing a member
//!   (`subscription_succeeded`, `member_added`) are JSON whose `data` reads
//!   back with that member.
//! - A sign-in's `user_data` reads as a user or is refused, and
//!   `signin_success` gives the exact `user_data` back.
//! - Signatures: what `auth` signs, `verify` accepts, and nothing else.
//! - A client event goes Pusher → Herald → Pusher with its event name and
//!   its data as the sender wrote it (a string's text, or the JSON text).

use herald_proto::pusher::channel::ChannelKind;
use herald_proto::pusher::frame::{self, ClientMessage, Member};
use herald_proto::pusher::sign::Signed;
use herald_proto::subject::{Subjects, decode_token};
use serde_json::Value;

const KEY: &str = "fuzz-key";
const SECRET: &str = "fuzz-secret";
const SOCKET_ID: &str = "71776119061217290.42";
/// The edge's bound on a member's `user_info`.
const MAX_INFO_BYTES: usize = 1024;

pub fn run(data: &[u8]) {
    // WebSocket text is UTF-8.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ClientMessage::parse(text) {
        Ok(message) => accepted(message),
        Err(error) => {
            assert!(!error.0.is_empty());
            json(&frame::error(None, &error.0));
        }
    }
}

fn accepted(message: ClientMessage) {
    match message {
        ClientMessage::Ping | ClientMessage::Pong | ClientMessage::Unsubscribe { .. } => {}
        ClientMessage::Subscribe { channel, auth, channel_data } => subscribe(&channel, auth.as_deref(), channel_data),
        ClientMessage::SignIn { auth, user_data } => {
            let signed = Signed::SignIn { socket_id: SOCKET_ID, user_data: &user_data };
            signatures(&signed, &auth);
            if let Err(error) = frame::signed_in_user(&user_data) {
                assert!(!error.0.is_empty());
            }
            let success = json(&frame::signin_success(&user_data));
            assert_eq!(success["data"]["user_data"], user_data.as_str());
        }
        ClientMessage::ClientEvent { event, channel, data } => {
            let herald = frame::herald_from_event(&event, data.get());
            let back = json(&frame::event_from_herald(&herald, Some(&channel), None).expect("a Herald frame"));
            assert_eq!(back["event"], event.as_str());
            assert_eq!(back["channel"], channel.as_str());
            // A string's text, or any other JSON as written.
            let sent = serde_json::from_str::<String>(data.get()).unwrap_or_else(|_| data.get().to_owned());
            assert_eq!(back["data"], sent.as_str(), "data as the sender wrote it");
        }
    }
}

fn subscribe(channel: &str, auth: Option<&str>, channel_data: Option<String>) {
    if ChannelKind::of(channel).is_ok() {
        // One token of the group's subject, which reads back as the name.
        let subject = Subjects::default().group(channel);
        let token = subject.rsplit('.').next().expect("a subject has tokens");
        assert_eq!(decode_token(token).ok().as_deref(), Some(channel), "{subject:?}");
    }
    if let Some(auth) = auth {
        signatures(&Signed::Channel { socket_id: SOCKET_ID, channel }, auth);
    }
    let Some(channel_data) = channel_data else {
        json(&frame::subscription_succeeded(channel, None));
        return;
    };
    if let Some(auth) = auth {
        signatures(&Signed::Presence { socket_id: SOCKET_ID, channel, channel_data: &channel_data }, auth);
    }
    let member = match Member::parse(&channel_data, MAX_INFO_BYTES) {
        Ok(member) => member,
        Err(error) => return assert!(!error.0.is_empty()),
    };
    assert!(!member.user_id.is_empty());
    let succeeded = json(&frame::subscription_succeeded(channel, Some(std::slice::from_ref(&member))));
    let presence = json(succeeded["data"].as_str().expect("data is a JSON string"));
    assert_eq!(presence["presence"]["ids"][0], member.user_id.as_str());
    assert_eq!(presence["presence"]["count"], 1);
    let added = json(&frame::member_added(channel, &member));
    assert_eq!(json(added["data"].as_str().expect("data is a JSON string"))["user_id"], member.user_id.as_str());
    json(&frame::member_removed(channel, &member.user_id));
}

/// What `auth` signs, `verify` accepts; the client's own `auth` is
/// checked without a panic, and passes only if it is that signature.
fn signatures(signed: &Signed<'_>, given: &str) {
    let good = signed.auth(KEY, SECRET);
    assert!(signed.verify(KEY, SECRET, &good));
    assert!(!signed.verify("other-key", SECRET, &good));
    // Hex digits may come in either case.
    let is_good =
        given.split_once(':').is_some_and(|(key, hex)| key == KEY && hex.eq_ignore_ascii_case(&good[KEY.len() + 1..]));
    assert_eq!(signed.verify(KEY, SECRET, given), is_good, "{given:?}");
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
