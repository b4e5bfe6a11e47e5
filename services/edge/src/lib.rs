//! Herald's edge: holds WebSocket sessions and delivers to them what
//! backends publish on NATS.
//!
//! # Layout
//!
//! - [`edge`]: binds, serves, drains; the state every session shares.
//! - [`config`]: the edge's typed configuration.
//! - [`auth`]: JWT verification and the identity of a connection.
//! - `http`: the HTTP surface, `/ws` upgrades and health.
//! - `connect`: `$connect`, authenticating tokenless upgrades through the
//!   routers from headers and cookies.
//! - `session`: one task per WebSocket (an actor) with a bounded mailbox,
//!   its rate limit, system actions and client actions.
//! - `registry`: the index of local sessions by user and group, and the one
//!   bus subscription per user or group it keeps for them.
//! - `routers`: handler requests to the routers' queue group, and their
//!   answers.
//! - `events`: lifecycle events on connect and disconnect.
//! - `presence`: answers routers' presence queries; heartbeats.
//! - `metrics`: counters for `/metrics`.
//!
//! Why sessions are tokio tasks and not actix actors:
//! `docs/adr/0001-sessions-are-tokio-tasks.md`.

pub mod auth;
pub mod config;
mod connect;
mod edge;
mod events;
pub mod http;
mod metrics;
mod presence;
mod registry;
mod routers;
mod session;

pub use auth::{Identity, JwtKey, KeyError};
pub use config::{AuthConfig, EdgeConfig, Limits, OriginPolicy, Timing};
pub use edge::{Edge, EdgeError};
pub use http::{Body, BoxError, Fallback, full};
