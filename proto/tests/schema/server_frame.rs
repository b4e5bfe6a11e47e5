//! `server-frame`: what the edge sends a client, as Herald encodes it.

use herald_proto::client::{
    self, AuthState, ConnectedDetails, ERROR_SUFFIX, ErrorDetails, FrameId, GroupDetails, action,
};
use herald_proto::history::{JoinedDetails, RecoveredDetails};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::support::{POSITIONAL, Tables, check_tables, conn, frame_ids, read, schema, to_value};

/// The envelope of a server frame. [`client::ServerFrame`] only serialises,
/// so it is read back with the same field types and the details with the
/// type Herald writes for the action.
#[derive(Deserialize)]
struct ServerFrameIn {
    action: String,
    details: Box<RawValue>,
    #[serde(default)]
    id: Option<FrameId>,
}

/// Reads a server frame and encodes it again with Herald's encoder.
fn reencode_server_frame(text: &str) -> Result<String, String> {
    let frame: ServerFrameIn = read(text)?;
    let (name, details, id) = (frame.action.as_str(), frame.details.get(), frame.id.as_ref());
    Ok(match name {
        action::CONNECTED => client::encode(name, &read::<ConnectedDetails>(details)?, id),
        // A `$join` on a group with a history says more (recovery).
        action::JOIN | action::LEAVE => match read::<GroupDetails>(details) {
            Ok(group) => client::encode(name, &group, id),
            Err(_) => client::encode(name, &read::<JoinedDetails>(details)?, id),
        },
        action::RECOVERED => client::encode(name, &read::<RecoveredDetails>(details)?, id),
        action::AUTH | action::REAUTH => client::encode(name, &read::<AuthState>(details)?, id),
        action::ERROR => {
            let error: ErrorDetails = read(details)?;
            client::encode_error(None, error.code, &error.message, id)
        }
        _ => match name.strip_suffix(ERROR_SUFFIX) {
            Some(request) => {
                let error: ErrorDetails = read(details)?;
                client::encode_error(Some(request), error.code, &error.message, id)
            }
            None => client::encode(name, &read::<Value>(details)?, id),
        },
    })
}

fn read_server_frame(text: &str) -> Result<(), String> {
    reencode_server_frame(text).map(drop)
}

#[test]
fn server_frame_examples_are_what_herald_encodes() {
    let s = schema("server-frame");
    for example in s.examples() {
        let encoded = reencode_server_frame(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(&read::<Value>(&encoded).unwrap(), example, "re-encoded differently");
    }
}

#[test]
fn server_frames_herald_encodes_are_valid() {
    let s = schema("server-frame");
    let connected = ConnectedDetails { conn: conn(17), user: Some("alice".into()), groups: vec!["team:blue".into()] };
    let group = GroupDetails { group: "room:42".into(), resume: None };
    let auth = AuthState { user: Some("alice".into()), exp: Some(4_102_444_800) };
    let error = ErrorDetails { code: 404, message: "no route".into() };
    s.assert_properties("/$defs/connectedDetails", &to_value(&connected));
    s.assert_properties("/$defs/groupDetails", &to_value(&group));
    let joined = JoinedDetails {
        group: "room:42".into(),
        recovered: true,
        offsets: [("group:room:42".into(), "1.2.3".into())].into(),
    };
    let recovered = RecoveredDetails { recovered: false, offsets: [("user".into(), "1.0.3".into())].into() };
    s.assert_properties("/$defs/joinedDetails", &to_value(&joined));
    s.assert_properties("/$defs/recoveredDetails", &to_value(&recovered));
    s.assert_properties("/$defs/authState", &to_value(&auth));
    s.assert_properties("/$defs/errorDetails", &to_value(&error));
    let id = FrameId::Text("r-1".into());
    s.assert_properties("", &read(&client::encode("x", &(), Some(&id))).unwrap());

    let mut frames = vec![
        client::encode(action::CONNECTED, &connected, None),
        client::encode(action::CONNECTED, &ConnectedDetails { conn: conn(0), user: None, groups: vec![] }, None),
        client::encode("chat/message", &json!({"from": "bob", "text": "hi"}), None),
    ];
    for id in frame_ids() {
        let id = id.as_ref();
        frames.push(client::encode(action::PONG, &(), id));
        frames.push(client::encode(action::JOIN, &group, id));
        frames.push(client::encode(action::JOIN, &joined, id));
        frames.push(client::encode(action::RECOVERED, &recovered, id));
        frames.push(client::encode(action::LEAVE, &GroupDetails { group: String::new(), resume: None }, id));
        frames.push(client::encode(action::AUTH, &auth, id));
        frames.push(client::encode(action::REAUTH, &AuthState { user: None, exp: None }, id));
        frames.push(client::encode("chat/send", &json!([1, "two"]), id));
        frames.push(client::encode_error(None, 400, "not valid JSON", id));
        for code in [400, 401, 403, 404, 413, 429, 503, 504] {
            frames.push(client::encode_error(Some("chat/send"), code, "m", id));
            frames.push(client::encode_error(Some(action::JOIN), code, "m", id));
        }
    }
    for frame in frames {
        let doc: Value = read(&frame).unwrap();
        s.assert_valid(&doc, "an encoded frame");
        assert_eq!(reencode_server_frame(&frame).unwrap(), frame);
    }
}

#[test]
fn server_frame_schema_and_herald_agree() {
    let frame = |action: &str, details: Value| json!({"action": action, "details": details});
    let error = |details: Value| frame("$error", details);
    let connected = |details: Value| frame("$connected", details);
    let tables = Tables {
        valid: vec![
            ("null details", frame("x", json!(null))),
            ("any details", json!({"action": "chat/message", "details": [1, {"a": 2}], "id": "a"})),
            ("unknown properties are ignored", json!({"action": "x", "details": 1, "v": 2})),
            ("anonymous $auth state", frame("$auth", json!({"user": null, "exp": null}))),
            ("lowest error code", error(json!({"code": 100, "message": ""}))),
            ("highest error code", frame("chat/send:error", json!({"code": 4999, "message": "m"}))),
            ("only a final :error is an error", frame("a:error:b", json!("free"))),
            (
                "$connected may gain properties",
                connected(json!({"conn": "e.0", "user": null, "groups": [], "region": "eu"})),
            ),
        ],
        invalid: vec![
            ("array", json!([])),
            ("no action", json!({"details": null})),
            ("no details", json!({"action": "$pong"})),
            ("number action", json!({"action": 1, "details": null})),
            ("boolean id", json!({"action": "x", "details": null, "id": true})),
            ("array id", json!({"action": "x", "details": null, "id": [1]})),
            ("$connected without details", connected(json!(null))),
            ("$connected without groups", connected(json!({"conn": "e.1", "user": "u"}))),
            ("$connected without conn", connected(json!({"user": "u", "groups": []}))),
            ("$connected with a number user", connected(json!({"conn": "e.1", "user": 5, "groups": []}))),
            ("$connected with a string groups", connected(json!({"conn": "e.1", "user": "u", "groups": "g"}))),
            ("$connected with a number group", connected(json!({"conn": "e.1", "user": "u", "groups": [1]}))),
            ("$connected with a number conn", connected(json!({"conn": 17, "user": "u", "groups": []}))),
            ("$error without details", error(json!(null))),
            ("error code as a string", error(json!({"code": "400", "message": "m"}))),
            ("error without message", error(json!({"code": 400}))),
            ("error without code", error(json!({"message": "m"}))),
            ("error with an unknown field", error(json!({"code": 400, "message": "m", "hint": "h"}))),
            ("fractional error code", error(json!({"code": 400.5, "message": "m"}))),
            ("negative error code", error(json!({"code": -1, "message": "m"}))),
            ("error code beyond 16 bits", error(json!({"code": 70000, "message": "m"}))),
            ("error reply with a string", frame("chat/send:error", json!("oops"))),
            ("$join reply with a number group", frame("$join", json!({"group": 1}))),
            ("$leave reply with an unknown field", frame("$leave", json!({"group": "g", "x": 1}))),
            ("$join reply without group", frame("$join", json!({}))),
            ("$auth with a number user", frame("$auth", json!({"user": 5, "exp": 1}))),
            ("$auth with a negative exp", frame("$auth", json!({"user": "a", "exp": -1}))),
            ("$auth with a string exp", frame("$auth", json!({"user": "a", "exp": "soon"}))),
            ("$reauth with a fractional exp", frame("$reauth", json!({"user": "a", "exp": 1.5}))),
        ],
        lenient: vec![
            ("error code below 100", error(json!({"code": 99, "message": "m"}))),
            ("error code 0", error(json!({"code": 0, "message": "m"}))),
            ("error code above 4999", error(json!({"code": 5000, "message": "m"}))),
            ("$connected with a malformed conn", connected(json!({"conn": "nope", "user": "u", "groups": []}))),
            ("$connected without user reads as anonymous", connected(json!({"conn": "e.1", "groups": []}))),
            ("$auth state without fields reads as nulls", frame("$auth", json!({}))),
            ("$reauth state without exp reads as null", frame("$reauth", json!({"user": "alice"}))),
            ("$auth state without user reads as anonymous", frame("$auth", json!({"exp": 1}))),
            (POSITIONAL, error(json!([400, "m"]))),
            (POSITIONAL, connected(json!(["e.1", null, []]))),
            (POSITIONAL, frame("$join", json!(["g"]))),
            (POSITIONAL, frame("$auth", json!(["alice", 1]))),
        ],
        inexpressible: vec![("integer error code written as 400.0", error(json!({"code": 400.0, "message": "m"})))],
    };
    check_tables(&schema("server-frame"), read_server_frame, tables);
}
