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
//!
//! # Layout
//!
//! - `support`: the schema files, how a schema is checked, the agreement
//!   tables, and the Rust values more than one schema uses.
//! - `files`: the schema files themselves: listed, well formed, and agreeing
//!   with each other and with the Rust defaults.
//! - `conn_id`: the connection and edge id patterns.
//! - one module per schema: `client_frame`, `server_frame`,
//!   `handler_request`, `handler_response`, `control_op`, `lifecycle_event`,
//!   each with the Rust values and the reader it needs.

mod client_frame;
mod conn_id;
mod control_op;
mod files;
mod handler_request;
mod handler_response;
mod lifecycle_event;
mod server_frame;
mod support;
