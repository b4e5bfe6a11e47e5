//! The router's settings. [`SETTINGS`] are `herald router`'s own;
//! [`ROUTES`], [`TUNING`] and [`PUSH_PORT`] are read by every role that runs
//! a router (`herald dev` too), and [`TUNING`] is `herald-router`'s defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::setting::settings;
use crate::value::{millis, path, socket_addr, whole};

settings! {
    /// Where `herald router` listens, its key and its routes.
    SETTINGS;
    /// Address to serve /api/*, /healthz, /readyz and /metrics on.
    LISTEN: SocketAddr = new("ADDR", "0.0.0.0:8081", socket_addr);
    /// Key backends send as `Authorization: Bearer <key>` to call /api/* (required).
    API_KEY: String = secret("KEY");
}

settings! {
    /// Where client actions go.
    ROUTES;
    /// TOML file mapping client actions to handlers (NATS subjects, or HTTP
    /// endpoints such as a PHP script), re-read on SIGHUP; without it,
    /// `herald router` answers every action 404 and `herald dev` routes to
    /// its examples.
    ROUTES_FILE: PathBuf = optional("PATH", path);
    /// Key signing requests to HTTP handlers (Herald-Signature); required
    /// when a route is http.
    WEBHOOK_SECRET: String = secret("SECRET");
}

settings! {
    /// How much a router takes on and how long it waits.
    TUNING;
    /// Handler requests worked on at once; more are answered 503.
    ROUTER_MAX_INFLIGHT: usize = new("N", "10000", whole::<usize, 1>);
    /// Largest backend API request body; a bigger one gets 413.
    MAX_API_BODY_BYTES: usize = new("BYTES", "1048576", whole::<usize, 1024>);
    /// Time a presence query waits for the edges' answers.
    PRESENCE_TIMEOUT_MS: Duration = new("MS", "500", millis::<1>);
}

settings! {
    /// The Workerman-style push port: a backend writes one JSON object with a
    /// `uid` per line and reads `ok` or `fail` back.
    PUSH_PORT;
    /// Address of the push port; off when unset.
    PUSH_PORT_LISTEN: SocketAddr = optional("ADDR", socket_addr);
    /// Push port connections open at once; one more is refused.
    PUSH_PORT_MAX_CONNECTIONS: usize = new("N", "1024", whole::<usize, 1>);
}
