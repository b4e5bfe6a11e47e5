//! Herald's router: maps client actions to handlers, and serves the backend
//! HTTP API.
//!
//! Routers are stateless: edges reach them through one NATS queue group, so
//! any number of them share the load and any one can go away.
//!
//! # Layout
//!
//! - `router`: binds, serves, drains; builds the parts below, handing each
//!   only what it uses.
//! - [`config`]: the router's typed configuration.
//! - [`routes`]: the routes table (TOML), validated and matched.
//! - `dispatch`: calls the handler of a route, over NATS or HTTP, and turns
//!   every outcome into a handler response for the edge.
//! - `actions`: handler requests from edges (a queue group).
//! - `notices`: `$disconnect` notices from disconnect events (a queue group),
//!   bounded.
//! - `reload`: replacing the routes of a running router.
//! - `api`: the backend HTTP API; `ApiState` is what it gets.
//! - `error`: why a router could not start or reload.
//! - `metrics`: counters for `/metrics`.
//! - [`push_port`]: the Workerman-compatible push port (a JSON object per
//!   line on plain TCP, answered `ok`/`fail`), off unless configured.
//! - `pusher`: Pusher's HTTP API under `/apps/<id>/`, and Pusher webhooks.

mod actions;
mod api;
pub mod config;
mod dispatch;
mod error;
mod metrics;
mod notices;
pub mod push_port;
mod pusher;
mod reload;
mod router;
pub mod routes;

pub use config::RouterConfig;
pub use dispatch::check_answer;
pub use error::RouterError;
pub use herald_handler::presence::DEAD_AFTER_BEATS;
pub use push_port::PushPortConfig;
pub use reload::RouteReloader;
pub use router::{Router, RouterCore};
pub use routes::{MAX_ROUTE_TIMEOUT, RouteTable, RoutesError};
