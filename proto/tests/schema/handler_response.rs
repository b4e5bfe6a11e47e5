//! `handler-response`: what a handler answers, as a router reads it.

use std::collections::BTreeSet;

use herald_proto::client::ErrorDetails;
use herald_proto::close;
use herald_proto::handler::{Claims, DisconnectEffect, Effect, HandlerResponse, PublishEffect, Target};
use serde_json::{Value, json};

use crate::support::{POSITIONAL, Tables, check_tables, claims, conn, raw, read, schema, to_value};

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

fn read_handler_response(text: &str) -> Result<(), String> {
    read::<HandlerResponse>(text).map(drop)
}

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
