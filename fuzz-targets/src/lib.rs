//! The bodies of Herald's fuzz targets: one module per parser of untrusted
//! bytes, each with a `run(&[u8])` that feeds it any input and asserts the
//! properties that matter (a panic or a failed assertion is a crash).
//!
//! Two things run them: libFuzzer, through the two-line targets in
//! `fuzz/fuzz_targets/` (`just fuzz`, an instrumented build), and
//! `cargo test` (`tests/corpus.rs`), which replays every committed input in
//! `fuzz/corpus/<target>/` through the same function on the ordinary
//! build, so a regression shows in CI without building anything twice.
//! docs/fuzzing.md lists each target's properties.
//!
//! # Layout
//!
//! One module per target, named as its corpus directory and libFuzzer
//! binary; [`TARGETS`] lists them all.

pub mod client_frame;
pub mod conn_id;
pub mod control_op;
pub mod handler_response;
pub mod jwt;
pub mod push_line;
pub mod pusher_cluster;
pub mod pusher_frame;
pub mod pusher_rest;
pub mod routes;
pub mod settings_file;
pub mod socketio_frame;
pub mod subject_token;
pub mod websocket_frames;

/// A fuzz target: its name (corpus directory, libFuzzer binary) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("client_frame", client_frame::run),
    ("conn_id", conn_id::run),
    ("control_op", control_op::run),
    ("handler_response", handler_response::run),
    ("jwt", jwt::run),
    ("push_line", push_line::run),
    ("pusher_cluster", pusher_cluster::run),
    ("pusher_frame", pusher_frame::run),
    ("pusher_rest", pusher_rest::run),
    ("routes", routes::run),
    ("settings_file", settings_file::run),
    ("socketio_frame", socketio_frame::run),
    ("subject_token", subject_token::run),
    ("websocket_frames", websocket_frames::run),
];
