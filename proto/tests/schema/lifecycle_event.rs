//! `lifecycle-event`: what an edge publishes when a connection comes or goes.

use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::event::{CloseInfo, LifecycleEvent};
use herald_proto::handler::Claims;
use serde_json::{Value, json};

use crate::support::{Tables, check_tables, claims, conn, read, schema, to_value, with, without};

fn disconnect_event() -> LifecycleEvent {
    LifecycleEvent {
        conn: conn(17),
        user: Some("alice".into()),
        groups: vec!["team:blue".into()],
        claims: claims(),
        edge: "3f9c2a7e1b0d4c85".into(),
        at: "2026-03-01T10:02:45.008Z".into(),
        close: Some(CloseInfo { code: close::ABNORMAL, reason: String::new() }),
    }
}

fn events() -> Vec<LifecycleEvent> {
    let connect = LifecycleEvent { close: None, ..disconnect_event() };
    let anonymous = LifecycleEvent { user: None, groups: vec![], claims: Claims::new(), ..connect.clone() };
    let mut events = vec![disconnect_event(), connect, anonymous];
    for code in [
        close::NORMAL,
        close::GOING_AWAY,
        close::POLICY_VIOLATION,
        close::MESSAGE_TOO_BIG,
        close::INTERNAL_ERROR,
        close::SERVICE_RESTART,
        close::TRY_AGAIN_LATER,
        close::BACKEND_DISCONNECT,
        close::AUTH_EXPIRED,
    ] {
        events.push(LifecycleEvent { close: Some(CloseInfo { code, reason: "r".into() }), ..disconnect_event() });
    }
    events
}

fn read_lifecycle_event(text: &str) -> Result<(), String> {
    read::<LifecycleEvent>(text).map(drop)
}

#[test]
fn lifecycle_event_examples_round_trip() {
    let s = schema("lifecycle-event");
    for example in s.examples() {
        let event: LifecycleEvent = read(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(&to_value(&event), example, "re-encoded differently");
        let edge = event.conn.parse::<ConnId>().expect("a connection id");
        assert_eq!(edge.edge(), event.edge, "the edge is the connection id's edge");
    }
}

#[test]
fn lifecycle_events_edges_publish_are_valid() {
    let s = schema("lifecycle-event");
    s.assert_properties("", &to_value(&disconnect_event()));
    for event in events() {
        let doc = to_value(&event);
        s.assert_valid(&doc, "an event");
        assert_eq!(read::<LifecycleEvent>(&doc.to_string()).unwrap(), event);
    }
}

#[test]
fn lifecycle_event_schema_and_type_agree() {
    let base = to_value(&LifecycleEvent { close: None, ..disconnect_event() });
    let b = &base;
    let closed = |code: Value, reason: Value| with(&with(b, "code", code), "reason", reason);
    let tables = Tables {
        valid: vec![
            ("connect", base.clone()),
            ("anonymous", with(b, "user", json!(null))),
            ("no groups", with(b, "groups", json!([]))),
            ("disconnect", closed(json!(1000), json!("bye"))),
            ("disconnect with an empty reason", closed(json!(1006), json!(""))),
            ("unknown properties are allowed", with(b, "region", json!("eu-west-1"))),
            ("no claims", without(b, "claims")),
        ],
        invalid: vec![
            ("array", json!([])),
            ("array claims", with(b, "claims", json!(["plan"]))),
            ("string claims", with(b, "claims", json!("x"))),
            ("no conn", without(b, "conn")),
            ("no groups", without(b, "groups")),
            ("no edge", without(b, "edge")),
            ("no at", without(b, "at")),
            ("number conn", with(b, "conn", json!(1))),
            ("number user", with(b, "user", json!(5))),
            ("string groups", with(b, "groups", json!("a"))),
            ("number group", with(b, "groups", json!([1]))),
            ("number edge", with(b, "edge", json!(1))),
            ("number at", with(b, "at", json!(1_700_000_000))),
            ("null at", with(b, "at", json!(null))),
        ],
        lenient: vec![
            ("missing user reads as anonymous", without(b, "user")),
            ("malformed conn", with(b, "conn", json!("nope"))),
            ("malformed edge", with(b, "edge", json!("a.b"))),
            ("at without milliseconds", with(b, "at", json!("2026-03-01T09:30:12Z"))),
            ("at with an offset", with(b, "at", json!("2026-03-01T10:30:12.345+01:00"))),
            ("at that is not a time", with(b, "at", json!("yesterday"))),
            ("impossible date", with(b, "at", json!("2026-02-30T09:30:12.345Z"))),
            // The close information is read whole or not at all.
            ("code without reason reads as a connect", with(b, "code", json!(1000))),
            ("reason without code reads as a connect", with(b, "reason", json!("bye"))),
            ("string code reads as a connect", closed(json!("1000"), json!(""))),
            ("number reason reads as a connect", closed(json!(1000), json!(5))),
            ("code beyond 16 bits reads as a connect", closed(json!(70000), json!(""))),
            ("close code below 1000", closed(json!(999), json!(""))),
            ("close code above 4999", closed(json!(5000), json!(""))),
        ],
        inexpressible: vec![],
    };
    check_tables(&schema("lifecycle-event"), read_lifecycle_event, tables);
}
