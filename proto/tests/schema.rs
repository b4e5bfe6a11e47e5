//! Keeps the JSON Schemas in `proto/schema/` and the wire types in agreement.
//!
//! For every schema:
//!
//! - each entry of its `examples` is valid, is read by the Rust type, and
//!   (where the type keeps everything it reads) encodes back to the same JSON;
//! - Rust values covering every enum variant and every optional field encode
//!   to documents the schema accepts, and the properties the schema lists are
//!   exactly the ones the fullest of those values carries, so a field added on
//!   either side fails here;
//! - tables of documents are checked against both sides: `valid` ones must be
//!   accepted by both, `invalid` ones refused by both. Where the schema is
//!   deliberately stricter than the Rust reader (a field the reader defaults
//!   when missing, a range or format it does not check, a struct written as a
//!   positional array), the case is listed in `lenient` with its reason, and
//!   `inexpressible` lists what JSON Schema cannot say (an integer written as
//!   `400.0`). Every list is asserted both ways, so a change to either side
//!   that moves a case fails the test.
//!
//! The structs and enums are built with exhaustive literals and matches, so a
//! new field or variant in `herald-proto` does not compile here until it is
//! covered, and then fails until the schema describes it.

use std::collections::BTreeSet;
use std::path::Path;

use herald_proto::client::{
    self, AuthDetails, AuthState, ClientFrame, ConnectedDetails, ERROR_SUFFIX, ErrorDetails, FrameId, GroupDetails,
    MAX_ACTION_CHARS, action,
};
use herald_proto::close;
use herald_proto::conn_id::{self, ConnId};
use herald_proto::control::ControlOp;
use herald_proto::event::{CloseInfo, LifecycleEvent};
use herald_proto::handler::{Claims, DisconnectEffect, Effect, HandlerRequest, HandlerResponse, PublishEffect, Target};
use jsonschema::Validator;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Number, Value, json};

// ---------------------------------------------------------------------------
// Schemas

/// `(name, text)` of `proto/schema/<name>.schema.json`.
macro_rules! schema_file {
    ($name:literal) => {
        ($name, include_str!(concat!("../schema/", $name, ".schema.json")))
    };
}

/// Every schema, by name.
const SCHEMAS: [(&str, &str); 6] = [
    schema_file!("client-frame"),
    schema_file!("server-frame"),
    schema_file!("handler-request"),
    schema_file!("handler-response"),
    schema_file!("control-op"),
    schema_file!("lifecycle-event"),
];

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

struct Schema {
    name: &'static str,
    doc: Value,
    validator: Validator,
}

fn schema(name: &str) -> Schema {
    let (name, text) = SCHEMAS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no schema {name}"));
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.schema.json is not JSON: {e}"));
    compile(name, doc)
}

fn compile(name: &'static str, doc: Value) -> Schema {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .unwrap_or_else(|e| panic!("{name}: schema does not compile: {e}"));
    Schema { name, doc, validator }
}

impl Schema {
    /// Why `doc` is invalid; empty when it is valid.
    fn errors(&self, doc: &Value) -> Vec<String> {
        self.validator.iter_errors(doc).map(|e| format!("{e} (at {:?})", e.instance_path().to_string())).collect()
    }

    fn assert_valid(&self, doc: &Value, what: &str) {
        let errors = self.errors(doc);
        assert!(
            errors.is_empty(),
            "{}: {what} is refused by the schema:\n  {doc}\n  {}",
            self.name,
            errors.join("\n  ")
        );
    }

    fn at(&self, pointer: &str) -> &Value {
        self.doc.pointer(pointer).unwrap_or_else(|| panic!("{}: nothing at {pointer}", self.name))
    }

    fn examples(&self) -> &[Value] {
        self.at("/examples").as_array().unwrap_or_else(|| panic!("{}: examples is not an array", self.name))
    }

    /// The names under `properties` of the subschema at `pointer`.
    fn properties(&self, pointer: &str) -> BTreeSet<String> {
        let properties = self.at(&format!("{pointer}/properties"));
        properties
            .as_object()
            .unwrap_or_else(|| panic!("{}: {pointer}/properties", self.name))
            .keys()
            .cloned()
            .collect()
    }

    /// Asserts that the subschema at `pointer` lists exactly the properties
    /// of `full`, a value with every optional field present.
    fn assert_properties(&self, pointer: &str, full: &Value) {
        let produced: BTreeSet<String> =
            full.as_object().unwrap_or_else(|| panic!("{full} is not an object")).keys().cloned().collect();
        assert_eq!(
            self.properties(pointer),
            produced,
            "{}: the properties at {pointer:?} differ from what the Rust type writes",
            self.name
        );
    }

    /// The subschema at `pointer` as a schema of its own.
    fn sub(&self, pointer: &str) -> Schema {
        let mut sub = self.at(pointer).clone();
        sub["$schema"] = json!(DRAFT_2020_12);
        compile(self.name, sub)
    }
}

/// A subschema without its annotations, to compare definitions that are
/// repeated across schemas (each file stands alone).
fn assertions_of(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "title" | "examples" | "default"))
                .map(|(k, v)| (k.clone(), assertions_of(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(assertions_of).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Agreement tables

/// Reads a document's JSON text the way Herald does.
type Reader = fn(&str) -> Result<(), String>;

/// `(what the case shows, document)`.
type Cases = Vec<(&'static str, Value)>;

#[derive(Default)]
struct Tables {
    /// Accepted by both.
    valid: Cases,
    /// Refused by both.
    invalid: Cases,
    /// Refused by the schema, tolerated by the Rust reader: known and
    /// deliberate, the schema being the contract.
    lenient: Cases,
    /// Accepted by the schema, refused by the Rust reader: only what JSON
    /// Schema cannot express.
    inexpressible: Cases,
}

fn check_tables(schema: &Schema, read: Reader, tables: Tables) {
    let mut failures = Vec::new();
    let lists = [
        ("valid", tables.valid, true, true),
        ("invalid", tables.invalid, false, false),
        ("lenient", tables.lenient, false, true),
        ("inexpressible", tables.inexpressible, true, false),
    ];
    for (list, cases, schema_ok, rust_ok) in lists {
        for (why, doc) in cases {
            let errors = schema.errors(&doc);
            let rust = read(&doc.to_string());
            if errors.is_empty() != schema_ok {
                let detail = if schema_ok { errors.join("; ") } else { "accepted".to_owned() };
                failures.push(format!("[{list}] {why}: schema {detail}\n    {doc}"));
            }
            if rust.is_ok() != rust_ok {
                let detail = rust.err().unwrap_or_else(|| "accepted".to_owned());
                failures.push(format!("[{list}] {why}: Rust {detail}\n    {doc}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}: {} disagreement(s):\n  {}", schema.name, failures.len(), failures.join("\n  "));
}

/// Serde reads a struct from an array of its fields in order, so every
/// struct without `flatten` also takes that form (`[]` reads as `{}` when
/// every field has a default). The schemas describe objects only.
const POSITIONAL: &str = "serde reads a struct from a positional array";

/// `base` with `key` set to `value`.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut doc = base.clone();
    doc[key] = value;
    doc
}

/// `base` without `key`.
fn without(base: &Value, key: &str) -> Value {
    let mut doc = base.clone();
    doc.as_object_mut().expect("an object").remove(key);
    doc
}

fn read<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serialises")
}

// ---------------------------------------------------------------------------
// Rust values covering every variant and optional field

fn frame_ids() -> Vec<Option<FrameId>> {
    let ids = vec![
        None,
        Some(FrameId::Text("r-1".into())),
        Some(FrameId::Text(String::new())),
        Some(FrameId::Number(7.into())),
        Some(FrameId::Number(Number::from_f64(-2.5).expect("finite"))),
    ];
    for id in ids.iter().flatten() {
        // A new variant fails to compile here until the list covers it.
        match id {
            FrameId::Text(_) | FrameId::Number(_) => {}
        }
    }
    ids
}

fn conn(n: u64) -> String {
    ConnId::new("3f9c2a7e1b0d4c85", n).to_string()
}

fn claims() -> Claims {
    json!({"plan": "pro", "nbf": 1_700_000_000, "roles": ["mod"], "org": {"id": 7}})
        .as_object()
        .expect("an object")
        .clone()
}

fn full_target() -> Target {
    Target {
        users: vec!["alice".into(), "a.b c".into()],
        groups: vec!["room:42".into()],
        conns: vec![conn(17)],
        all: true,
    }
}

fn full_publish() -> PublishEffect {
    PublishEffect { to: full_target(), action: "room/joined".into(), details: json!({"user": "alice"}) }
}

fn full_disconnect() -> DisconnectEffect {
    DisconnectEffect { code: 4003, reason: "banned".into() }
}

/// Every effect variant, with empty and full payloads.
fn every_effect() -> Vec<Effect> {
    vec![
        Effect::Join("room:42".into()),
        Effect::Join(String::new()),
        Effect::Leave("lobby".into()),
        Effect::Disconnect(full_disconnect()),
        Effect::Disconnect(DisconnectEffect { code: close::NORMAL, reason: String::new() }),
        Effect::Publish(full_publish()),
        Effect::Publish(PublishEffect { to: Target::default(), action: "x".into(), details: Value::Null }),
        Effect::Publish(PublishEffect {
            to: Target { users: vec![], groups: vec!["g".into()], conns: vec![], all: false },
            action: "chat/message".into(),
            details: json!("hi"),
        }),
    ]
}

/// The key an effect is written under.
fn effect_key(effect: &Effect) -> &'static str {
    match effect {
        Effect::Join(_) => "join",
        Effect::Leave(_) => "leave",
        Effect::Disconnect(_) => "disconnect",
        Effect::Publish(_) => "publish",
    }
}

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

fn full_response() -> HandlerResponse {
    HandlerResponse {
        details: Some(raw(r#"{"ok":true}"#)),
        error: Some(ErrorDetails { code: 409, message: "name taken".into() }),
        noreply: true,
        effects: every_effect(),
        user: Some(Some("alice".into())),
        groups: Some(vec!["team:blue".into()]),
        claims: Some(claims()),
    }
}

fn responses() -> Vec<HandlerResponse> {
    vec![
        full_response(),
        HandlerResponse::default(),
        HandlerResponse { user: Some(None), groups: Some(vec![]), claims: Some(Claims::new()), ..Default::default() },
        HandlerResponse { details: Some(raw(r#""text""#)), ..Default::default() },
        HandlerResponse { error: Some(ErrorDetails { code: 100, message: String::new() }), ..Default::default() },
        HandlerResponse { error: Some(ErrorDetails { code: 4999, message: "x".into() }), ..Default::default() },
    ]
}

fn every_control_op() -> Vec<ControlOp> {
    vec![
        ControlOp::Join { group: "room:42".into() },
        ControlOp::Leave { group: "a.b c".into() },
        ControlOp::Disconnect { code: close::BACKEND_DISCONNECT, reason: String::new() },
        ControlOp::Disconnect { code: close::NORMAL, reason: "bye".into() },
    ]
}

/// The `op` a control operation is written with.
fn control_op_name(op: &ControlOp) -> &'static str {
    match op {
        ControlOp::Join { .. } => "join",
        ControlOp::Leave { .. } => "leave",
        ControlOp::Disconnect { .. } => "disconnect",
    }
}

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

// ---------------------------------------------------------------------------
// Readers: how Herald reads each document

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
        action::JOIN | action::LEAVE => client::encode(name, &read::<GroupDetails>(details)?, id),
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

fn read_handler_request(text: &str) -> Result<(), String> {
    read::<HandlerRequest>(text).map(drop)
}

fn read_handler_response(text: &str) -> Result<(), String> {
    read::<HandlerResponse>(text).map(drop)
}

fn read_control_op(text: &str) -> Result<(), String> {
    read::<ControlOp>(text).map(drop)
}

fn read_lifecycle_event(text: &str) -> Result<(), String> {
    read::<LifecycleEvent>(text).map(drop)
}

// ---------------------------------------------------------------------------
// The schema files themselves

#[test]
fn every_schema_file_is_checked_and_well_formed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("proto/schema exists")
        .map(|entry| entry.expect("readable").file_name().into_string().expect("UTF-8 name"))
        .collect();
    let checked: BTreeSet<String> = SCHEMAS.iter().map(|(name, _)| format!("{name}.schema.json")).collect();
    assert_eq!(on_disk, checked, "every file in proto/schema must be listed in SCHEMAS");

    let mut ids = BTreeSet::new();
    for (name, _) in SCHEMAS {
        let s = schema(name);
        jsonschema::draft202012::meta::validate(&s.doc)
            .unwrap_or_else(|e| panic!("{name}: not a valid draft 2020-12 schema: {e}"));
        assert_eq!(s.at("/$schema"), DRAFT_2020_12, "{name}: $schema");
        assert_eq!(s.at("/$id"), &json!(format!("urn:herald:schema:v1:{name}")), "{name}: $id");
        assert!(ids.insert(s.at("/$id").to_string()), "{name}: $id is not unique");
        for key in ["/title", "/description"] {
            let text = s.at(key).as_str().unwrap_or_else(|| panic!("{name}: {key} is not a string"));
            assert!(!text.trim().is_empty(), "{name}: {key} is empty");
        }
        assert!(!s.examples().is_empty(), "{name}: no examples");
        for (i, example) in s.examples().iter().enumerate() {
            s.assert_valid(example, &format!("example {i}"));
        }
        if let Some(defs) = s.doc.get("$defs").and_then(Value::as_object) {
            for def in defs.keys() {
                let reference = format!("\"#/$defs/{def}\"");
                assert!(s.doc.to_string().contains(&reference), "{name}: $defs/{def} is never used");
            }
        }
    }
}

#[test]
fn repeated_definitions_agree_across_schemas() {
    let same = |pointer: &str, names: &[&str]| {
        let first = assertions_of(schema(names[0]).at(pointer));
        for name in &names[1..] {
            assert_eq!(assertions_of(schema(name).at(pointer)), first, "{pointer} differs in {name} and {}", names[0]);
        }
    };
    same("/$defs/connId", &["server-frame", "handler-request", "handler-response", "lifecycle-event"]);
    same("/$defs/errorDetails", &["server-frame", "handler-response"]);
    same("/$defs/groupDetails", &["client-frame", "server-frame"]);

    let client = schema("client-frame");
    let request = schema("handler-request");
    for s in [&client, &request] {
        assert_eq!(s.at("/properties/action/minLength"), 1, "{}", s.name);
        assert_eq!(s.at("/properties/action/maxLength"), &json!(MAX_ACTION_CHARS), "{}", s.name);
    }
}

#[test]
fn schema_defaults_are_the_rust_defaults() {
    let response = schema("handler-response");
    let effect: DisconnectEffect = read("{}").unwrap();
    assert_eq!(response.at("/$defs/disconnect/properties/code/default"), &json!(effect.code));
    assert_eq!(response.at("/$defs/disconnect/properties/reason/default"), &json!(effect.reason));
    assert_eq!(effect.code, close::BACKEND_DISCONNECT);

    let control = schema("control-op");
    let ControlOp::Disconnect { code, reason } = read(r#"{"op":"disconnect"}"#).unwrap() else {
        panic!("not a disconnect");
    };
    let branch = control_branch(&control, "disconnect");
    assert_eq!(control.at(&format!("{branch}/properties/code/default")), &json!(code));
    assert_eq!(control.at(&format!("{branch}/properties/reason/default")), &json!(reason));
}

// ---------------------------------------------------------------------------
// Connection and edge ids

#[test]
fn conn_id_pattern_agrees_with_conn_id() {
    let pattern = schema("server-frame").sub("/$defs/connId");
    let edge_pattern = schema("lifecycle-event").sub("/properties/edge");

    let mut accepted = vec![
        "3f9c2a7e1b0d4c85.17".to_owned(),
        "a1b2.42".to_owned(),
        "e.0".to_owned(),
        "A_b-9.1".to_owned(),
        ConnId::new(&"f".repeat(64), 9_999_999_999_999_999_999).to_string(),
    ];
    accepted.extend((0..20).map(|n| conn(n * 7919)));
    for id in &accepted {
        pattern.assert_valid(&json!(id), "a connection id");
        let parsed: ConnId = id.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&parsed.to_string(), id);
    }

    let long_edge = format!("{}.1", "f".repeat(65));
    let refused = [
        "", "a", "a.", ".1", "a.b", "a.1.2", "a*.1", "a.>", "a.01", "a.-1", "a b.1", "a.1\n", "é.1", "a.1 ",
        &long_edge, "a.+1",
    ];
    for id in refused {
        assert!(!pattern.errors(&json!(id)).is_empty(), "the schema accepts {id:?}");
        assert!(id.parse::<ConnId>().is_err(), "ConnId accepts {id:?}");
    }

    // Lenient: counters of 20 digits parse but are beyond the pattern, which
    // stays a subset of what ConnId reads. No edge counts that far.
    for id in ["a.10000000000000000000", "a.18446744073709551615"] {
        assert!(!pattern.errors(&json!(id)).is_empty(), "the schema accepts {id:?}");
        assert!(id.parse::<ConnId>().is_ok(), "ConnId refuses {id:?}");
    }

    for edge in ["3f9c2a7e1b0d4c85", "a", "A_-9", &"x".repeat(64)] {
        edge_pattern.assert_valid(&json!(edge), "an edge id");
        assert!(conn_id::is_valid_edge_id(edge), "{edge:?}");
    }
    for edge in ["", "a.b", "a*", ">", "a b", "é", "a\n", &"x".repeat(65)] {
        assert!(!edge_pattern.errors(&json!(edge)).is_empty(), "the schema accepts edge {edge:?}");
        assert!(!conn_id::is_valid_edge_id(edge), "{edge:?}");
    }
}

// ---------------------------------------------------------------------------
// client-frame

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
    let group = GroupDetails { group: "room:42".into() };
    let auth = AuthDetails { token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln".into() };
    s.assert_properties("/$defs/groupDetails", &to_value(&group));
    s.assert_properties("/$defs/authDetails", &to_value(&auth));
    let frames = [
        json!({"action": action::PING}),
        json!({"action": action::PING, "details": null}),
        json!({"action": action::JOIN, "details": group}),
        json!({"action": action::LEAVE, "details": GroupDetails { group: "a.b c".into() }}),
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

// ---------------------------------------------------------------------------
// server-frame

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
    let group = GroupDetails { group: "room:42".into() };
    let auth = AuthState { user: Some("alice".into()), exp: Some(4_102_444_800) };
    let error = ErrorDetails { code: 404, message: "no route".into() };
    s.assert_properties("/$defs/connectedDetails", &to_value(&connected));
    s.assert_properties("/$defs/groupDetails", &to_value(&group));
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
        frames.push(client::encode(action::LEAVE, &GroupDetails { group: String::new() }, id));
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

// ---------------------------------------------------------------------------
// handler-request

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

// ---------------------------------------------------------------------------
// handler-response

#[test]
fn handler_response_examples_are_read() {
    let s = schema("handler-response");
    for example in s.examples() {
        let response: HandlerResponse = read(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        // Written again (defaults filled in), it is still valid and stable.
        let written = to_value(&response);
        s.assert_valid(&written, "a re-encoded example");
        assert_eq!(to_value(&read::<HandlerResponse>(&written.to_string()).unwrap()), written);
    }
    let defaults: HandlerResponse = read(r#"{"effects":[{"disconnect":{}}]}"#).unwrap();
    assert_eq!(
        defaults.effects,
        [Effect::Disconnect(DisconnectEffect { code: close::BACKEND_DISCONNECT, reason: String::new() })]
    );
}

#[test]
fn handler_responses_built_in_rust_are_valid() {
    let s = schema("handler-response");
    s.assert_properties("", &to_value(&full_response()));
    s.assert_properties("/$defs/errorDetails", &to_value(&ErrorDetails { code: 400, message: "m".into() }));
    s.assert_properties("/$defs/disconnect", &to_value(&full_disconnect()));
    s.assert_properties("/$defs/publish", &to_value(&full_publish()));
    s.assert_properties("/$defs/target", &to_value(&full_target()));

    // The effect branches are exactly the effect variants.
    let branches = s.at("/$defs/effect/oneOf").as_array().expect("oneOf");
    let mut branch_keys = BTreeSet::new();
    for (i, branch) in branches.iter().enumerate() {
        let keys = s.properties(&format!("/$defs/effect/oneOf/{i}"));
        assert_eq!(keys.len(), 1, "effect branch {i} must have one property");
        assert_eq!(branch["required"], json!(keys.iter().collect::<Vec<_>>()), "effect branch {i}");
        branch_keys.extend(keys);
    }
    let effects = every_effect();
    let variant_keys: BTreeSet<String> = effects.iter().map(|e| effect_key(e).to_owned()).collect();
    assert_eq!(branch_keys, variant_keys, "effect branches differ from the Effect variants");

    for effect in &effects {
        let doc = to_value(effect);
        let keys: Vec<&String> = doc.as_object().expect("an object").keys().collect();
        assert_eq!(keys, [effect_key(effect)], "{doc}");
        s.assert_valid(&json!({"effects": [doc]}), "an effect");
        assert_eq!(&read::<Effect>(&doc.to_string()).unwrap(), effect);
    }
    for response in responses() {
        let text = serde_json::to_string(&response).unwrap();
        s.assert_valid(&read(&text).unwrap(), "a response");
        assert_eq!(serde_json::to_string(&read::<HandlerResponse>(&text).unwrap()).unwrap(), text);
    }
}

#[test]
fn handler_response_schema_and_type_agree() {
    let effects = |effect: Value| json!({"effects": [effect]});
    let publish = |publish: Value| effects(json!({"publish": publish}));
    let disconnect = |disconnect: Value| effects(json!({"disconnect": disconnect}));
    let error = |error: Value| json!({"error": error});
    let tables = Tables {
        valid: vec![
            ("nothing", json!({})),
            ("null details", json!({"details": null})),
            ("array details", json!({"details": [1]})),
            ("explicit noreply false", json!({"noreply": false})),
            ("no effects", json!({"effects": []})),
            ("anonymous user", json!({"user": null})),
            ("no groups", json!({"groups": []})),
            ("no claims", json!({"claims": {}})),
            ("details and error together", json!({"details": 1, "error": {"code": 500, "message": "m"}})),
            ("empty target", publish(json!({"to": {}, "action": "a"}))),
            ("explicit all false", publish(json!({"to": {"all": false, "users": []}, "action": "a"}))),
            ("null publish details", publish(json!({"to": {"all": true}, "action": "a", "details": null}))),
            ("disconnect with code only", disconnect(json!({"code": 1000}))),
            ("disconnect with reason only", disconnect(json!({"reason": "bye"}))),
            ("lowest error code", error(json!({"code": 100, "message": "m"}))),
            ("highest error code", error(json!({"code": 4999, "message": "m"}))),
            // PHP's json_encode([]) is `[]`: an empty object where one may be empty.
            ("PHP's empty answer", json!([])),
            ("PHP's empty claims", json!({"claims": []})),
            ("PHP's empty disconnect", disconnect(json!([]))),
            ("PHP's empty target", publish(json!({"to": [], "action": "a"}))),
        ],
        invalid: vec![
            ("string", json!("x")),
            ("null", json!(null)),
            ("unknown field", json!({"detail": 1})),
            ("unknown field next to known ones", json!({"details": 1, "status": 200})),
            ("string error", error(json!("nope"))),
            ("string error code", error(json!({"code": "x", "message": "m"}))),
            ("error without message", error(json!({"code": 400}))),
            ("error without code", error(json!({"message": "m"}))),
            ("error with an unknown field", error(json!({"code": 400, "message": "m", "x": 1}))),
            ("error code beyond 16 bits", error(json!({"code": 70000, "message": "m"}))),
            ("negative error code", error(json!({"code": -1, "message": "m"}))),
            ("fractional error code", error(json!({"code": 400.5, "message": "m"}))),
            ("number error message", error(json!({"code": 400, "message": 5}))),
            ("string noreply", json!({"noreply": "yes"})),
            ("number noreply", json!({"noreply": 1})),
            ("null noreply", json!({"noreply": null})),
            ("object effects", json!({"effects": {}})),
            ("null effects", json!({"effects": null})),
            ("string effect", json!({"effects": ["join"]})),
            ("null effect", json!({"effects": [null]})),
            ("effect without a key", effects(json!({}))),
            ("effect with two keys", effects(json!({"join": "a", "leave": "b"}))),
            ("unknown effect", effects(json!({"explode": 1}))),
            ("effect keys are lower case", effects(json!({"Join": "a"}))),
            ("number join", effects(json!({"join": 1}))),
            ("null join", effects(json!({"join": null}))),
            ("array leave", effects(json!({"leave": ["a"]}))),
            ("null disconnect", disconnect(json!(null))),
            ("string disconnect", disconnect(json!("bye"))),
            ("string close code", disconnect(json!({"code": "4000"}))),
            ("close code beyond 16 bits", disconnect(json!({"code": 70000}))),
            ("negative close code", disconnect(json!({"code": -1}))),
            ("fractional close code", disconnect(json!({"code": 4000.5}))),
            ("number reason", disconnect(json!({"reason": 5}))),
            ("unknown disconnect field", disconnect(json!({"why": "x"}))),
            ("null publish", publish(json!(null))),
            ("empty publish", publish(json!({}))),
            ("publish without action", publish(json!({"to": {}}))),
            ("publish without target", publish(json!({"action": "a"}))),
            ("number publish action", publish(json!({"to": {}, "action": 1}))),
            ("unknown publish field", publish(json!({"to": {}, "action": "a", "exclude_conn": "e.1"}))),
            ("string target users", publish(json!({"to": {"users": "a"}, "action": "a"}))),
            ("number target user", publish(json!({"to": {"users": [1]}, "action": "a"}))),
            ("null target groups", publish(json!({"to": {"groups": null}, "action": "a"}))),
            ("string target all", publish(json!({"to": {"all": "yes"}, "action": "a"}))),
            ("unknown target field", publish(json!({"to": {"everyone": true}, "action": "a"}))),
            ("number user", json!({"user": 5})),
            ("array user", json!({"user": []})),
            ("string groups", json!({"groups": "a"})),
            ("number group", json!({"groups": [1]})),
            ("null group", json!({"groups": [null]})),
            ("array claims", json!({"claims": ["plan"]})),
            ("string claims", json!({"claims": "x"})),
            ("positional disconnect", disconnect(json!([4003, "banned"]))),
            ("positional target", publish(json!({"to": [["alice"]], "action": "a"}))),
        ],
        lenient: vec![
            ("null error reads as none", json!({"error": null})),
            ("null groups read as none", json!({"groups": null})),
            ("null claims read as none", json!({"claims": null})),
            ("error code below 100", error(json!({"code": 99, "message": "m"}))),
            ("error code above 4999", error(json!({"code": 5000, "message": "m"}))),
            ("close code 0", disconnect(json!({"code": 0}))),
            ("close code below 1000", disconnect(json!({"code": 999}))),
            ("close code above 4999", disconnect(json!({"code": 5000}))),
            ("empty publish action", publish(json!({"to": {}, "action": ""}))),
            ("malformed conn id in a target", publish(json!({"to": {"conns": ["e1.01"]}, "action": "a"}))),
            (POSITIONAL, json!(["hi", null, true])),
            (POSITIONAL, error(json!([400, "m"]))),
            (POSITIONAL, publish(json!([{}, "a"]))),
        ],
        inexpressible: vec![
            ("integer error code written as 400.0", error(json!({"code": 400.0, "message": "m"}))),
            ("integer close code written as 4000.0", disconnect(json!({"code": 4000.0}))),
        ],
    };
    check_tables(&schema("handler-response"), read_handler_response, tables);
}

// ---------------------------------------------------------------------------
// control-op

/// The pointer of the control-op branch for `op`.
fn control_branch(s: &Schema, op: &str) -> String {
    let branches = s.at("/oneOf").as_array().expect("oneOf");
    let i = branches
        .iter()
        .position(|b| b.pointer("/properties/op/const") == Some(&json!(op)))
        .unwrap_or_else(|| panic!("no control-op branch for {op:?}"));
    format!("/oneOf/{i}")
}

#[test]
fn control_op_examples_round_trip() {
    let s = schema("control-op");
    for example in s.examples() {
        let op: ControlOp = read(&example.to_string()).unwrap_or_else(|e| panic!("{example}: {e}"));
        let written = to_value(&op);
        s.assert_valid(&written, "a re-encoded example");
        assert_eq!(read::<ControlOp>(&written.to_string()).unwrap(), op);
    }
}

#[test]
fn control_ops_built_in_rust_are_valid() {
    let s = schema("control-op");
    let branches: BTreeSet<String> = s
        .at("/oneOf")
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|b| {
            b.pointer("/properties/op/const").and_then(Value::as_str).expect("each branch names its op").to_owned()
        })
        .collect();
    let ops = every_control_op();
    let names: BTreeSet<String> = ops.iter().map(|op| control_op_name(op).to_owned()).collect();
    assert_eq!(branches, names, "control-op branches differ from the ControlOp variants");
    for op in &ops {
        let doc = to_value(op);
        assert_eq!(doc["op"], control_op_name(op));
        s.assert_properties(&control_branch(&s, control_op_name(op)), &doc);
        s.assert_valid(&doc, "an operation");
        assert_eq!(&read::<ControlOp>(&doc.to_string()).unwrap(), op);
    }
}

#[test]
fn control_op_schema_and_type_agree() {
    let disconnect = |fields: Value| {
        let mut doc = json!({"op": "disconnect"});
        doc.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        doc
    };
    let tables = Tables {
        valid: vec![
            ("disconnect with code only", disconnect(json!({"code": 4001}))),
            ("disconnect with reason only", disconnect(json!({"reason": "bye"}))),
            ("empty group name", json!({"op": "join", "group": ""})),
            ("lowest close code", disconnect(json!({"code": 1000}))),
            ("highest close code", disconnect(json!({"code": 4999}))),
        ],
        invalid: vec![
            ("empty array", json!([])),
            ("null", json!(null)),
            ("no op", json!({"group": "g"})),
            ("empty object", json!({})),
            ("unknown op", json!({"op": "explode"})),
            ("ops are lower case", json!({"op": "JOIN", "group": "g"})),
            ("number op", json!({"op": 1})),
            ("null op", json!({"op": null})),
            ("join without group", json!({"op": "join"})),
            ("join with a number group", json!({"op": "join", "group": 1})),
            ("join with a null group", json!({"op": "join", "group": null})),
            ("join with an unknown field", json!({"op": "join", "group": "g", "x": 1})),
            ("leave without group", json!({"op": "leave"})),
            ("leave with a code", json!({"op": "leave", "group": "g", "code": 4000})),
            ("string code", disconnect(json!({"code": "4000"}))),
            ("null code", disconnect(json!({"code": null}))),
            ("code beyond 16 bits", disconnect(json!({"code": 70000}))),
            ("negative code", disconnect(json!({"code": -1}))),
            ("fractional code", disconnect(json!({"code": 4000.5}))),
            ("number reason", disconnect(json!({"reason": 5}))),
            ("null reason", disconnect(json!({"reason": null}))),
            ("disconnect with a group", disconnect(json!({"group": "g"}))),
        ],
        lenient: vec![
            ("close code 0", disconnect(json!({"code": 0}))),
            ("close code below 1000", disconnect(json!({"code": 999}))),
            ("close code above 4999", disconnect(json!({"code": 5000}))),
            ("largest 16-bit close code", disconnect(json!({"code": 65535}))),
            (POSITIONAL, json!(["join", "g"])),
            (POSITIONAL, json!(["disconnect"])),
        ],
        inexpressible: vec![("integer code written as 4000.0", disconnect(json!({"code": 4000.0})))],
    };
    check_tables(&schema("control-op"), read_control_op, tables);
}

// ---------------------------------------------------------------------------
// lifecycle-event

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
