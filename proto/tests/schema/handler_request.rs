//! `handler-request`: what a router sends a handler.

use herald_proto::client::FrameId;
use herald_proto::handler::{Claims, HandlerRequest};
use serde_json::json;

use crate::support::{
    POSITIONAL, Tables, check_tables, claims, conn, frame_ids, raw, read, schema, to_value, with, without,
};

fn full_request(id: Option<FrameId>) -> HandlerRequest {
    HandlerRequest {
        action: "$connect".into(),
        details: raw(r#"{"b": 1, "a": [true, null]}"#),
        id,
        conn: conn(3),
        user: Some("alice".into()),
        groups: vec!["team:blue".into(), String::new()],
        claims: claims(),
        headers: Some([("origin".to_owned(), "https://app.example.com".to_owned())].into()),
        cookies: Some([("PHPSESSID".to_owned(), "k2v9qj4r8c1m5t7u0b3n6x".to_owned())].into()),
        timeout_ms: Some(10_000),
    }
}

fn minimal_request(id: Option<FrameId>) -> HandlerRequest {
    HandlerRequest {
        action: "chat/send".into(),
        details: raw("null"),
        id,
        conn: conn(0),
        user: None,
        groups: vec![],
        claims: Claims::new(),
        headers: None,
        cookies: None,
        timeout_ms: None,
    }
}

fn read_handler_request(text: &str) -> Result<(), String> {
    read::<HandlerRequest>(text).map(drop)
}

#[test]
fn handler_request_examples_round_trip() {
    let s = schema("handler-request");
    for example in s.examples() {
        let request: HandlerRequest = read(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(&to_value(&request), example, "re-encoded differently");
    }
}

#[test]
fn handler_requests_herald_sends_are_valid() {
    let s = schema("handler-request");
    s.assert_properties("", &to_value(&full_request(Some(FrameId::Number(1.into())))));
    for id in frame_ids() {
        for request in [full_request(id.clone()), minimal_request(id)] {
            let text = serde_json::to_string(&request).unwrap();
            s.assert_valid(&read(&text).unwrap(), "a request");
            let back: HandlerRequest = read(&text).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
    }
}

#[test]
fn handler_request_schema_and_type_agree() {
    let base = json!({
        "action": "chat/send", "details": null, "conn": "e1.1", "user": "u", "groups": [], "claims": {}
    });
    let b = &base;
    let tables = Tables {
        valid: vec![
            ("fewest fields", base.clone()),
            ("string id", with(b, "id", json!("r1"))),
            ("fractional id", with(b, "id", json!(1.5))),
            ("any details", with(b, "details", json!([{"a": null}]))),
            ("anonymous", with(b, "user", json!(null))),
            ("empty headers and cookies", with(&with(b, "headers", json!({})), "cookies", json!({}))),
            ("lower-case header names", with(b, "headers", json!({"x-forwarded-for": "10.0.0.1", "cookie": "a=b"}))),
            ("unknown properties are allowed", with(b, "trace", json!("abc"))),
            ("128-character action", with(b, "action", json!("x".repeat(128)))),
            ("nested claims", with(b, "claims", json!({"org": {"id": 7}, "roles": ["a"]}))),
            ("the edge's timeout", with(b, "timeout_ms", json!(10000))),
        ],
        invalid: vec![
            ("array", json!([])),
            ("no action", without(b, "action")),
            ("no details", without(b, "details")),
            ("no conn", without(b, "conn")),
            ("no groups", without(b, "groups")),
            ("no claims", without(b, "claims")),
            ("number action", with(b, "action", json!(1))),
            ("number conn", with(b, "conn", json!(1))),
            ("number user", with(b, "user", json!(1))),
            ("string groups", with(b, "groups", json!("a"))),
            ("number group", with(b, "groups", json!([1]))),
            ("null groups", with(b, "groups", json!(null))),
            ("array claims", with(b, "claims", json!([]))),
            ("string claims", with(b, "claims", json!("x"))),
            ("null claims", with(b, "claims", json!(null))),
            ("boolean id", with(b, "id", json!(true))),
            ("object id", with(b, "id", json!({}))),
            ("string headers", with(b, "headers", json!("x"))),
            ("number header value", with(b, "headers", json!({"a": 1}))),
            ("array headers", with(b, "headers", json!([]))),
            ("null cookie value", with(b, "cookies", json!({"a": null}))),
            ("number cookies", with(b, "cookies", json!(1))),
            ("string timeout", with(b, "timeout_ms", json!("10000"))),
            ("negative timeout", with(b, "timeout_ms", json!(-1))),
        ],
        lenient: vec![
            ("missing user reads as anonymous", without(b, "user")),
            ("empty action", with(b, "action", json!(""))),
            ("129-character action", with(b, "action", json!("x".repeat(129)))),
            ("malformed conn", with(b, "conn", json!("nope"))),
            ("null id reads as no id", with(b, "id", json!(null))),
            ("null headers read as none", with(b, "headers", json!(null))),
            ("null cookies read as none", with(b, "cookies", json!(null))),
            ("upper-case header name", with(b, "headers", json!({"Content-Type": "text/plain"}))),
            ("zero timeout", with(b, "timeout_ms", json!(0))),
            ("null timeout reads as none", with(b, "timeout_ms", json!(null))),
            (POSITIONAL, json!(["chat/send", null, null, "e1.1", "u", [], {}])),
        ],
        inexpressible: vec![],
    };
    check_tables(&schema("handler-request"), read_handler_request, tables);
}
