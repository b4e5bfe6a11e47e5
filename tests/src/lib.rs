//! Test harness for Herald's integration tests: a real `nats-server`, real
//! edges (in-process, or the `herald` binary as a child process) and real
//! WebSocket clients, all on 127.0.0.1 with ports the OS picks.
//!
//! Every test starts its own bus, so tests are independent and run in
//! parallel; nothing is shared and nothing is faked. Most tests run twice,
//! written once with [`both_buses!`]: on a `nats-server` of their own and on
//! an in-process bus of their own (what `herald dev` runs on), so the two
//! buses cannot drift apart unnoticed. Tests that need a real server (an
//! outage, `herald` processes) run on NATS only.
//!
//! # Layout
//!
//! - [`setup`]: [`BusSetup`], the bus under test, and [`both_buses!`]; every
//!   component below takes its bus from a [`BusSource`] (a [`BusSetup`] or
//!   a [`NatsServer`]).
//! - [`nats`]: [`NatsServer`], a `nats-server` child process on a free port,
//!   that can be stopped and started again on the same port (outage tests)
//!   and is killed on drop.
//! - [`edge`]: [`TestEdge`], an in-process edge built from an
//!   [`herald_edge::config::EdgeConfig`] with short timings.
//! - [`process`]: [`HeraldProcess`], the real `herald` binary (an edge, a
//!   router, any command line) run with `HERALD_*` variables set on the
//!   child only.
//! - [`client`]: [`Client`], a WebSocket client that reads its socket in the
//!   background (so it answers the edge's pings) until told to
//!   [`Client::pause`], with assertions on what it receives.
//! - [`token`]: [`Token`], JWTs signed with HS256, RS256 or ES256 (test-only
//!   keys under `tests/fixtures/`), and the forgeries an edge must refuse.
//! - [`bus`]: [`TestBus`], the test's own client of the bus, that plays the
//!   backends: publishes to Herald's subjects (with
//!   `Herald-Exclude-Conn`), sends control operations, watches lifecycle
//!   events and answers client actions as a router would.
//! - [`eventually`]: [`assert_eventually!`], for the few state changes that
//!   are asynchronous by design; sleeps are never used as assertions.
//! - [`router`]: [`TestRouter`], an in-process router built from a
//!   [`herald_router::RouterConfig`] with its routes in a [`RoutesFile`]
//!   (reloadable), and helpers for its backend HTTP API. The `herald router`
//!   binary runs as a [`HeraldProcess`] too.
//! - [`handlers`]: the handlers routers call: [`NatsHandler`] (written with
//!   the handler SDK), [`RawHandler`] (answers anything, late or twice) and
//!   [`HttpHandler`] (an HTTP server that records requests and checks
//!   `Herald-Signature`).
//! - [`http`]: a tiny HTTP/1.1 client for health, metrics and the backend
//!   API.
//! - [`push`]: [`PushClient`], a client of the router's Workerman-style push
//!   port.
//! - [`json_lines`]: a driver process spoken to one JSON line at a time.
//! - [`pusher_sdk`]: Pusher's own server SDKs (npm `pusher`, PyPI
//!   `pusher`) driven one call per line, and [`both_sdks!`].
//! - [`php`]: real `php`: [`PhpServer`] (`php -S`) and [`PhpDriver`], which
//!   runs PHP SDK calls one JSON line at a time.
//!
//! "Exactly once" is asserted as: the expected frame arrives, then
//! [`Client::expect_silence`] for [`SILENCE`]. That short wait is the only
//! place where time stands in for an event.

mod background;
pub mod bus;
pub mod client;
pub mod edge;
pub mod eventually;
pub mod handlers;
pub mod http;
pub mod json_lines;
pub mod nats;
pub mod php;
pub mod process;
pub mod push;
pub mod pusher_sdk;
pub mod router;
pub mod setup;
pub mod token;

use std::time::Duration;

pub use bus::{Responder, TestBus};
pub use client::{Client, ConnectError, Connected};
pub use edge::{TestEdge, TestEdgeBuilder};
pub use handlers::{HttpAnswer, HttpHandler, HttpRequest, NatsHandler, RawHandler, Recorder, closed_port_url};
pub use nats::NatsServer;
pub use php::{Php, PhpDriver, PhpServer};
pub use process::HeraldProcess;
pub use push::PushClient;
pub use router::{RoutesFile, TEST_API_KEY, TEST_WEBHOOK_SECRET, TestRouter, TestRouterBuilder};
pub use setup::{BusSetup, BusSource};
pub use token::{TEST_SECRET, Token};

/// How long "nothing else arrives" is watched for after an expected frame.
pub const SILENCE: Duration = Duration::from_millis(300);

/// How long a client waits for a frame before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
