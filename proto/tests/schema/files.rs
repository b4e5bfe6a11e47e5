//! The schema files themselves: every one listed and well formed, repeated
//! definitions equal, and defaults the Rust defaults.

use std::collections::BTreeSet;
use std::path::Path;

use herald_proto::client::MAX_ACTION_CHARS;
use herald_proto::close;
use herald_proto::control::ControlOp;
use herald_proto::handler::DisconnectEffect;
use serde_json::{Value, json};

use crate::control_op::control_branch;
use crate::support::{DRAFT_2020_12, SCHEMAS, assertions_of, read, schema};

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
