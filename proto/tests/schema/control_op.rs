//! `control-op`: what a backend sends an edge to act on its connections.

use std::collections::BTreeSet;

use herald_proto::close;
use herald_proto::control::ControlOp;
use serde_json::{Value, json};

use crate::support::{POSITIONAL, Schema, Tables, check_tables, read, schema, to_value};

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

fn read_control_op(text: &str) -> Result<(), String> {
    read::<ControlOp>(text).map(drop)
}

/// The pointer of the control-op branch for `op`.
pub fn control_branch(s: &Schema, op: &str) -> String {
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
