//! Write a Herald handler in a few lines.
//!
//! ```no_run
//! use herald_handler::{Handler, Reply, Request};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//!
//! # async fn run(bus: herald_bus::Bus) -> Result<(), herald_bus::BusError> {
//! // Answers every action routed to `app.greet`, as one member of the queue
//! // group `app.greet`: start as many copies as you need.
//! Handler::new("app.greet")
//!     .serve(&bus, |request: Request<Greet>| async move {
//!         Reply::details(format!("hello, {}", request.details.name))
//!     }, std::future::pending())
//!     .await
//! # }
//! ```
//!
//! # Layout
//!
//! - [`Handler`]: serves client actions routed to a NATS subject.
//! - [`Request`] and [`Reply`]: what a handler gets and gives back, with
//!   effects (`join`, `leave`, `disconnect`, `publish`).
//! - [`Pusher`]: pushes to clients and moves them between groups from any
//!   backend, without a client action to answer.
//! - [`Presence`]: who is online, across every edge.
//! - [`edges`]: the live edges, from their heartbeats, and asking all of
//!   them at once (what presence and the router's Pusher channel queries
//!   are made of).

pub mod edges;
mod handler;
pub mod presence;
mod push;
mod reply;

pub use handler::{Handler, Request};
pub use herald_proto::handler::Target;
pub use presence::Presence;
pub use push::{PushError, Pusher};
pub use reply::Reply;
