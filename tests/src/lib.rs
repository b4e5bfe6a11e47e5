//! Test harness for Herald's integration tests: a real `nats-server`, real
//! edges (in-process, or the `herald` binary as a child process) and real
//! WebSocket clients, all on 127.0.0.1 with ports the OS picks.
//!
//! Every test starts its own `nats-server` on its own port, so tests are
//! independent and run in parallel; nothing is shared and nothing is faked.
//!
//! # Layout
//!
//! - [`nats`]: [`NatsServer`], a `nats-server` child process on a free port,
//!   that can be stopped and started again on the same port (outage tests)
//!   and is killed on drop.
//! - [`edge`]: [`TestEdge`], an in-process edge built from an
//!   [`herald_edge::config::EdgeConfig`] with short timings, and
//!   [`HeraldProcess`], the real `herald` binary run with `HERALD_*`
//!   variables set on the child only.
//! - [`client`]: [`Client`], a WebSocket client that reads its socket in the
//!   background (so it answers the edge's pings) until told to
//!   [`Client::pause`], with assertions on what it receives.
//! - [`token`]: [`Token`], JWTs signed with HS256, RS256 or ES256 (test-only
//!   keys under `tests/fixtures/`), and the forgeries an edge must refuse.
//! - [`bus`]: [`TestBus`], a plain NATS client on the test server that plays
//!   the backends: publishes to Herald's subjects (with
//!   `Herald-Exclude-Conn`), sends control operations, watches lifecycle
//!   events and answers client actions as a router would.
//! - [`eventually`]: [`assert_eventually!`], for the few state changes that
//!   are asynchronous by design; sleeps are never used as assertions.
//! - [`http`]: a tiny HTTP/1.1 GET for `/healthz` and `/readyz`.
//!
//! "Exactly once" is asserted as: the expected frame arrives, then
//! [`Client::expect_silence`] for [`SILENCE`]. That short wait is the only
//! place where time stands in for an event.

pub mod bus;
pub mod client;
pub mod edge;
pub mod eventually;
pub mod http;
pub mod nats;
pub mod token;

use std::time::Duration;

pub use bus::{Responder, TestBus};
pub use client::{Client, ConnectError, Connected};
pub use edge::{HeraldProcess, TestEdge, TestEdgeBuilder};
pub use nats::NatsServer;
pub use token::{TEST_SECRET, Token};

/// How long "nothing else arrives" is watched for after an expected frame.
pub const SILENCE: Duration = Duration::from_millis(300);

/// How long a client waits for a frame before the test fails.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
