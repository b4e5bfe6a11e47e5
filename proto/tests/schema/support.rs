//! What every schema's tests share: the schema files, checking documents
//! against a schema, the agreement tables, and Rust values more than one
//! schema uses.

use std::collections::BTreeSet;

use herald_proto::client::FrameId;
use herald_proto::conn_id::ConnId;
use herald_proto::handler::Claims;
use jsonschema::Validator;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Number, Value, json};

// ---------------------------------------------------------------------------
// Schemas

/// `(name, text)` of `proto/schema/<name>.schema.json`.
macro_rules! schema_file {
    ($name:literal) => {
        ($name, include_str!(concat!("../../schema/", $name, ".schema.json")))
    };
}

/// Every schema, by name.
pub const SCHEMAS: [(&str, &str); 6] = [
    schema_file!("client-frame"),
    schema_file!("server-frame"),
    schema_file!("handler-request"),
    schema_file!("handler-response"),
    schema_file!("control-op"),
    schema_file!("lifecycle-event"),
];

pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

pub struct Schema {
    pub name: &'static str,
    pub doc: Value,
    pub validator: Validator,
}

pub fn schema(name: &str) -> Schema {
    let (name, text) = SCHEMAS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no schema {name}"));
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.schema.json is not JSON: {e}"));
    compile(name, doc)
}

pub fn compile(name: &'static str, doc: Value) -> Schema {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .unwrap_or_else(|e| panic!("{name}: schema does not compile: {e}"));
    Schema { name, doc, validator }
}

impl Schema {
    /// Why `doc` is invalid; empty when it is valid.
    pub fn errors(&self, doc: &Value) -> Vec<String> {
        self.validator.iter_errors(doc).map(|e| format!("{e} (at {:?})", e.instance_path().to_string())).collect()
    }

    pub fn assert_valid(&self, doc: &Value, what: &str) {
        let errors = self.errors(doc);
        assert!(
            errors.is_empty(),
            "{}: {what} is refused by the schema:\n  {doc}\n  {}",
            self.name,
            errors.join("\n  ")
        );
    }

    pub fn at(&self, pointer: &str) -> &Value {
        self.doc.pointer(pointer).unwrap_or_else(|| panic!("{}: nothing at {pointer}", self.name))
    }

    pub fn examples(&self) -> &[Value] {
        self.at("/examples").as_array().unwrap_or_else(|| panic!("{}: examples is not an array", self.name))
    }

    /// The names under `properties` of the subschema at `pointer`.
    pub fn properties(&self, pointer: &str) -> BTreeSet<String> {
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
    pub fn assert_properties(&self, pointer: &str, full: &Value) {
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
    pub fn sub(&self, pointer: &str) -> Schema {
        let mut sub = self.at(pointer).clone();
        sub["$schema"] = json!(DRAFT_2020_12);
        compile(self.name, sub)
    }
}

/// A subschema without its annotations, to compare definitions that are
/// repeated across schemas (each file stands alone).
pub fn assertions_of(value: &Value) -> Value {
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
pub type Reader = fn(&str) -> Result<(), String>;

/// `(what the case shows, document)`.
pub type Cases = Vec<(&'static str, Value)>;

#[derive(Default)]
pub struct Tables {
    /// Accepted by both.
    pub valid: Cases,
    /// Refused by both.
    pub invalid: Cases,
    /// Refused by the schema, tolerated by the Rust reader: known and
    /// deliberate, the schema being the contract.
    pub lenient: Cases,
    /// Accepted by the schema, refused by the Rust reader: only what JSON
    /// Schema cannot express.
    pub inexpressible: Cases,
}

pub fn check_tables(schema: &Schema, read: Reader, tables: Tables) {
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
pub const POSITIONAL: &str = "serde reads a struct from a positional array";

/// `base` with `key` set to `value`.
pub fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut doc = base.clone();
    doc[key] = value;
    doc
}

/// `base` without `key`.
pub fn without(base: &Value, key: &str) -> Value {
    let mut doc = base.clone();
    doc.as_object_mut().expect("an object").remove(key);
    doc
}

pub fn read<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

pub fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serialises")
}

// ---------------------------------------------------------------------------
// Rust values more than one schema uses

pub fn frame_ids() -> Vec<Option<FrameId>> {
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

pub fn conn(n: u64) -> String {
    ConnId::new("3f9c2a7e1b0d4c85", n).to_string()
}

pub fn claims() -> Claims {
    json!({"plan": "pro", "nbf": 1_700_000_000, "roles": ["mod"], "org": {"id": 7}})
        .as_object()
        .expect("an object")
        .clone()
}
