use std::time::{Duration, SystemTime};

use herald_examples::Example;
use herald_examples::chat::SUBJECT;
use herald_proto::subject::Subjects;
use serde_json::{Value, json};

use crate::support::{Nats, Running, action, request_json};

#[tokio::test]
async fn joining_joins_the_group_and_tells_the_room() {
    let nats = Nats::start().await;
    let chat = Running::start(Example::Chat, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    let join = |groups| action("chat/join", json!({"room": "lobby"}), Some("ann"), groups);
    assert_eq!(
        request_json(&bus, SUBJECT, join(&["team"])).await,
        json!({
            "details": {"room": "lobby"},
            "effects": [
                {"join": "room:lobby"},
                {"publish": {
                    "to": {"groups": ["room:lobby"]},
                    "action": "chat/joined",
                    "details": {"room": "lobby", "user": "ann"},
                }},
            ],
        })
    );
    // Already in: a retried join changes nothing and announces nothing.
    assert_eq!(request_json(&bus, SUBJECT, join(&["room:lobby"])).await, json!({"details": {"room": "lobby"}}));

    chat.stop().await;
}

#[tokio::test]
async fn leaving_leaves_the_group_and_tells_the_room() {
    let nats = Nats::start().await;
    let chat = Running::start(Example::Chat, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    let leave = |groups| action("chat/leave", json!({"room": "lobby"}), Some("ann"), groups);
    assert_eq!(
        request_json(&bus, SUBJECT, leave(&["room:lobby", "team"])).await,
        json!({
            "details": {"room": "lobby"},
            "effects": [
                {"leave": "room:lobby"},
                {"publish": {
                    "to": {"groups": ["room:lobby"]},
                    "action": "chat/left",
                    "details": {"room": "lobby", "user": "ann"},
                }},
            ],
        })
    );
    // Not in: nothing to leave, nobody to tell.
    assert_eq!(request_json(&bus, SUBJECT, leave(&["team"])).await, json!({"details": {"room": "lobby"}}));

    chat.stop().await;
}

#[tokio::test]
async fn sending_publishes_the_message_to_the_room() {
    let nats = Nats::start().await;
    let chat = Running::start(Example::Chat, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    let before = SystemTime::now();
    let details = json!({"room": "lobby", "text": "héllo 🦀"});
    let mut answer = request_json(&bus, SUBJECT, action("chat/send", details, Some("ann"), &["room:lobby"])).await;
    let after = SystemTime::now();

    let message = answer.pointer_mut("/effects/0/publish/details").and_then(Value::as_object_mut).unwrap();
    let at = message.remove("at").expect("the message says when");
    let at = at.as_str().expect("at is a string");
    assert!(at.len() == 24 && at.ends_with('Z'), "RFC 3339 UTC with milliseconds: {at}");
    let at = humantime::parse_rfc3339_weak(at).unwrap();
    // `at` is cut to the millisecond.
    assert!(before - Duration::from_millis(1) <= at && at <= after, "{at:?} not in {before:?}..{after:?}");
    assert_eq!(
        answer,
        json!({
            "details": {"ok": true},
            "effects": [
                {"publish": {
                    "to": {"groups": ["room:lobby"]},
                    "action": "chat/message",
                    "details": {"room": "lobby", "user": "ann", "text": "héllo 🦀"},
                }},
            ],
        })
    );

    chat.stop().await;
}

#[tokio::test]
async fn refusals_are_error_replies_with_codes() {
    let nats = Nats::start().await;
    let chat = Running::start(Example::Chat, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;

    let bad_room = "a room name is 1 to 64 characters of A-Z a-z 0-9 _ -";
    let bad_text = "a message is 1 to 2000 characters";
    let (ann, member) = (Some("ann"), &["room:lobby"][..]);
    let hi = json!({"room": "lobby", "text": "hi"});
    let cases = [
        (action("chat/join", json!({"room": "lobby"}), None, &[]), 403, "sign in to chat"),
        (action("chat/send", hi.clone(), None, member), 403, "sign in to chat"),
        (
            action("chat/typing", json!({"room": "lobby"}), ann, member),
            404,
            r#"no chat action "chat/typing": expected chat/join, chat/leave, chat/send or chat/who"#,
        ),
        (action("chat/join", json!({"room": ""}), ann, &[]), 400, bad_room),
        (action("chat/join", json!({"room": "a.b"}), ann, &[]), 400, bad_room),
        (action("chat/join", json!({"room": "r".repeat(65)}), ann, &[]), 400, bad_room),
        (action("chat/leave", json!({"room": "lob by"}), ann, &[]), 400, bad_room),
        (action("chat/send", json!({"room": "*", "text": "hi"}), ann, member), 400, bad_room),
        (
            action("chat/join", json!({"name": "lobby"}), ann, &[]),
            400,
            "bad details for chat/join: missing field `room` at line 1 column 16",
        ),
        (
            action("chat/send", json!({"room": "lobby", "text": 5}), ann, member),
            400,
            "bad details for chat/send: invalid type: integer `5`, expected a string at line 1 column 24",
        ),
        (action("chat/send", hi.clone(), ann, &[]), 403, "join the room first"),
        (action("chat/send", hi, ann, &["lobby", "room:lobby2"]), 403, "join the room first"),
        (action("chat/send", json!({"room": "lobby", "text": ""}), ann, member), 400, bad_text),
        (action("chat/send", json!({"room": "lobby", "text": "x".repeat(2001)}), ann, member), 400, bad_text),
    ];
    for (request, code, message) in cases {
        let answer = request_json(&bus, SUBJECT, request.clone()).await;
        assert_eq!(answer, json!({"error": {"code": code, "message": message}}), "{request}");
    }

    chat.stop().await;
}
