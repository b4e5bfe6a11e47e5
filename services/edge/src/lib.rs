//! Herald's edge: holds WebSocket sessions and delivers to them what
//! backends publish on NATS.
//!
//! # Layout
//!
//! - `edge`: binds, serves, drains; builds the parts below, handing each
//!   only what it uses.
//! - [`config`]: the edge's typed configuration.
//! - [`auth`]: JWT verification, the identity of a connection, and who may
//!   connect ([`AuthConfig`]).
//! - [`http`]: the HTTP surface; `http::upgrade` decides upgrades (draining,
//!   origin, token or `$connect`) before the `101`.
//! - `connect`: `$connect`, authenticating tokenless upgrades through the
//!   routers from headers and cookies.
//! - `session`: one task per WebSocket (an actor), its rate limit, system
//!   actions and client actions; `SessionContext` is what sessions get.
//! - `handle`: how the rest of the edge reaches a session: a bounded
//!   mailbox and a close request; the session's socket.
//! - [`frames`]: WebSocket frames as a server reads and writes them, with
//!   no I/O (the session's socket drives them).
//! - `registry`: the index of local sessions by user and group, the one bus
//!   subscription per user or group it keeps for them (topics, each handing
//!   its messages to its members as they arrive; a pump task where a topic
//!   keeps a history), and the edge-wide subscriptions and control
//!   operations.
//! - `history`: missed-message recovery's stream on JetStream, its
//!   epoch and bounded reads (the topics that use it: `registry::recovery`).
//! - `drain`: what a drain needs to reach every session and upgrade.
//! - `routers`: handler requests to the routers' queue group, and their
//!   answers.
//! - `events`: lifecycle events on connect and disconnect.
//! - `presence`: answers routers' presence queries; heartbeats.
//! - `pusher`: Pusher channels across the cluster: presence members on
//!   every edge, answers to channel queries.
//! - `metrics`: counters for `/metrics`.
//! - `tcp`: vectored writes to client sockets with `sendmsg`, cheaper
//!   than the `writev` a tokio stream makes.
//!
//! No module takes another's whole context, so the dependencies run one
//! way: `edge` → `http` → `session` → `registry` → `handle`.
//!
//! Why sessions are tokio tasks and not actix actors:
//! `docs/adr/0001-sessions-are-tokio-tasks.md`.

pub mod auth;
pub mod config;
mod connect;
mod drain;
mod edge;
mod events;
pub mod frames;
mod handle;
mod history;
pub mod http;
mod metrics;
mod presence;
mod pusher;
mod registry;
mod routers;
mod session;
mod tcp;

pub use auth::{AuthConfig, Identity, JwtKey, KeyError};
pub use config::{EdgeConfig, HistoryConfig, Limits, OriginPolicy, Timing};
pub use edge::{Edge, EdgeError};
pub use http::{Body, BoxError, Fallback, full};
