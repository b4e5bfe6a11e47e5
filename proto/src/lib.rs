//! Herald's wire types: everything that crosses a process boundary.
//!
//! Serde lives here, at the boundary; the services convert these types into
//! their own core types as soon as a frame or a bus message is read.
//!
//! # Layout
//!
//! - [`client`]: frames on the WebSocket, both directions, and the system
//!   (`$`) actions.
//! - [`close`]: WebSocket close codes Herald uses and what each means.
//! - [`subject`]: NATS subject naming, including the token encoding that lets
//!   any user id or group name travel as exactly one subject token.
//! - [`conn_id`]: connection ids, which embed the edge that holds them so a
//!   message for one connection needs no per-connection subscription.
//! - [`control`]: operations backends send to users and connections.
//! - [`event`]: lifecycle events edges publish.
//! - [`handler`]: the request a handler receives and the response it gives.
//! - [`history`]: recovery's positions, offsets, `resume` and `$recovered`.
//! - [`json`]: reading bus messages, which are always JSON objects.
//! - [`pattern`]: exact-or-prefix name patterns (routes, joinable groups).
//! - [`presence`]: how routers ask edges who is online, and edge heartbeats.
//! - [`published_at`]: the publish time a message to clients carries, for
//!   the edges' publish → delivery lag.
//! - [`pusher`]: the Pusher Channels protocol: frames, names, signatures.
//! - [`socketio`]: Socket.IO 5 over Engine.IO 4 (WebSocket only): packets
//!   both ways and the handshake query.
//! - [`status`]: HTTP-like status codes (error replies, handler errors,
//!   refused upgrades), and how each hop turns an outcome into one.
//! - [`webhook`]: the signature on requests to HTTP handlers.
//!
//! The JSON Schemas under `proto/schema/` describe the client frame and the
//! handler request/response for people writing clients and handlers in other
//! languages; `tests/schema/` keeps them and these types in agreement.

pub mod client;
pub mod close;
pub mod conn_id;
pub mod control;
pub mod event;
pub mod handler;
pub mod history;
pub mod json;
pub mod pattern;
pub mod presence;
pub mod published_at;
pub mod pusher;
pub mod socketio;
pub mod status;
pub mod subject;
pub mod webhook;
