//! `client-frame`: what a client sends, as the edge reads it.

use herald_proto::client::{AuthDetails, ClientFrame, GroupDetails, MAX_ACTION_CHARS, action};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::support::{POSITIONAL, Tables, check_tables, frame_ids, read, schema, to_value};

/// A client frame as the edge reads it: [`ClientFrame::parse`], then the
/// details of the system actions a client may send.
fn read_client_frame(text: &str) -> Result<(), String> {
    let frame = ClientFrame::parse(text).map_err(|e| e.message)?;
    let details = frame.details.as_deref().map_or("null", RawValue::get);
    match frame.action.as_str() {
        action::PING => Ok(()),
        action::JOIN | action::LEAVE => read::<GroupDetails>(details).map(drop),
        action::AUTH => read::<AuthDetails>(details).map(drop),
        other if action::is_system(other) => Err(format!("{other} is not an action a client may send")),
        _ => Ok(()),
    }
}

#[test]
fn client_frame_examples_are_read_by_the_edge() {
    let s = schema("client-frame");
    for example in s.examples() {
        let text = example.to_string();
        read_client_frame(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
        let frame = ClientFrame::parse(&text).unwrap();
        assert_eq!(json!(frame.action), example["action"]);
        let details = frame.details.as_deref().map_or(Value::Null, |d| read(d.get()).unwrap());
        assert_eq!(&details, example.get("details").unwrap_or(&Value::Null), "{example}");
        assert_eq!(frame.id.as_ref().map(to_value), example.get("id").cloned(), "{example}");
    }
}

#[test]
fn client_frames_built_from_rust_values_are_valid() {
    let s = schema("client-frame");
    let group = GroupDetails { group: "room:42".into(), resume: None };
    let auth = AuthDetails { token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln".into() };
    s.assert_properties("/$defs/groupDetails", &to_value(&group));
    let join = GroupDetails { group: "room:42".into(), resume: Some("1.2.3".into()) };
    s.assert_properties("/$defs/joinDetails", &to_value(&join));
    s.assert_properties("/$defs/authDetails", &to_value(&auth));
    let frames = [
        json!({"action": action::PING}),
        json!({"action": action::PING, "details": null}),
        json!({"action": action::JOIN, "details": group}),
        json!({"action": action::JOIN, "details": join}),
        json!({"action": action::LEAVE, "details": GroupDetails { group: "a.b c".into(), resume: None }}),
        json!({"action": action::AUTH, "details": auth}),
        json!({"action": "chat/send", "details": {"text": "hi"}}),
        json!({"action": "é".repeat(MAX_ACTION_CHARS)}),
    ];
    for frame in frames {
        for id in frame_ids() {
            let mut doc = frame.clone();
            if let Some(id) = &id {
                doc["id"] = to_value(id);
            }
            s.assert_valid(&doc, "a frame");
            read_client_frame(&doc.to_string()).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(ClientFrame::parse(&doc.to_string()).unwrap().id, id);
        }
    }
}

#[test]
fn client_frame_schema_and_edge_agree() {
    let chars = |c: &str, n: usize| json!({"action": c.repeat(n)});
    let tables = Tables {
        valid: vec![
            ("one character", json!({"action": "a"})),
            ("128 ASCII characters", chars("x", 128)),
            ("128 two-byte characters", chars("é", 128)),
            ("128 characters outside the BMP", chars("😀", 128)),
            ("null details", json!({"action": "a", "details": null})),
            ("empty string id", json!({"action": "a", "id": ""})),
            ("fractional negative id", json!({"action": "a", "id": -1.5})),
            ("unknown properties are ignored", json!({"action": "a", "extra": {"nested": true}})),
            ("$ping with details", json!({"action": "$ping", "details": {"t": 1}})),
            ("empty group name", json!({"action": "$join", "details": {"group": ""}})),
            ("a : in an action", json!({"action": "chat:error"})),
        ],
        invalid: vec![
            ("null", json!(null)),
            ("array", json!([{"action": "a"}])),
            ("string", json!("a")),
            ("number", json!(1)),
            ("no action", json!({})),
            ("details without action", json!({"details": 1, "id": 2})),
            ("null action", json!({"action": null})),
            ("number action", json!({"action": 5})),
            ("array action", json!({"action": ["a"]})),
            ("empty action", json!({"action": ""})),
            ("129 ASCII characters", chars("x", 129)),
            ("129 two-byte characters", chars("é", 129)),
            ("129 characters outside the BMP", chars("😀", 129)),
            ("boolean id", json!({"action": "a", "id": true})),
            ("array id", json!({"action": "a", "id": []})),
            ("object id", json!({"action": "a", "id": {}})),
            ("$join without details", json!({"action": "$join"})),
            ("$join with null details", json!({"action": "$join", "details": null})),
            ("$join with a string", json!({"action": "$join", "details": "room"})),
            ("$join without group", json!({"action": "$join", "details": {}})),
            ("$join with a number group", json!({"action": "$join", "details": {"group": 1}})),
            ("$leave with an unknown field", json!({"action": "$leave", "details": {"group": "g", "x": 1}})),
            ("$auth without details", json!({"action": "$auth"})),
            ("$auth without token", json!({"action": "$auth", "details": {}})),
            ("$auth with a null token", json!({"action": "$auth", "details": {"token": null}})),
            ("server-only $connected", json!({"action": "$connected"})),
            ("server-only $pong", json!({"action": "$pong"})),
            ("route name $connect", json!({"action": "$connect"})),
            ("unknown system action", json!({"action": "$subscribe", "details": {}})),
            ("system names are case-sensitive", json!({"action": "$PING"})),
            ("bare $", json!({"action": "$"})),
        ],
        lenient: vec![
            ("null id reads as no id", json!({"action": "a", "id": null})),
            (POSITIONAL, json!({"action": "$join", "details": ["g"]})),
            (POSITIONAL, json!({"action": "$auth", "details": ["eyJ.e30.c2ln"]})),
        ],
        inexpressible: vec![],
    };
    check_tables(&schema("client-frame"), read_client_frame, tables);
}
