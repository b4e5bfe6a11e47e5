//! Herald's router: maps client actions to handlers, and serves the backend
//! HTTP API.
//!
//! Routers are stateless: edges reach them through one NATS queue group, so
//! any number of them share the load and any one can go away.
//!
//! # Layout
//!
//! - [`router`]: binds, serves, drains; route reloads.
//! - [`config`]: the router's typed configuration.
//! - [`routes`]: the routes table (TOML), validated and matched.
//! - `dispatch`: calls the handler of a route, over NATS or HTTP, and turns
//!   every outcome into a handler response for the edge.
//! - `service`: the NATS side: handler requests, `$disconnect` notices, edge
//!   heartbeats.
//! - `api`: the backend HTTP API.
//! - `metrics`: counters for `/metrics`.
//! - [`push_port`]: the Workerman-compatible push port (a JSON object per
//!   line on plain TCP, answered `ok`/`fail`), off unless configured.
//! - `pusher`: Pusher's HTTP API under `/apps/<id>/`, and Pusher webhooks.

mod api;
pub mod config;
mod dispatch;
mod metrics;
pub mod push_port;
mod pusher;
mod router;
pub mod routes;
mod service;

pub use config::RouterConfig;
pub use herald_handler::presence::DEAD_AFTER_BEATS;
pub use push_port::PushPortConfig;
pub use router::{RouteReloader, Router, RouterCore, RouterError};
pub use routes::{MAX_ROUTE_TIMEOUT, RouteTable, RoutesError};
