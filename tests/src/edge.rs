//! Edges under test: [`TestEdge`] runs `herald_edge::Edge` inside the
//! test's runtime, built directly from an [`EdgeConfig`] (no environment
//! involved), listening on 127.0.0.1 with a port the OS picks, with timings
//! short enough to keep tests fast, on the bus under test (see
//! [`crate::setup`]). Dropping it triggers its shutdown.
//!
//! The `herald` binary, as a child process, is [`crate::process`].

use std::net::SocketAddr;
use std::time::Duration;

use herald_edge::Edge;
use herald_edge::auth::JwtKey;
use herald_edge::config::{EdgeConfig, Limits, OriginPolicy, Timing};

use crate::background::Background;
use crate::client::{Client, ConnectError};
use crate::setup::BusSource;
use crate::token::{Token, hs256_key};

/// Timings of test edges: short, so that timers fire within a test, yet
/// with room for a loaded CI machine where a timer would otherwise race.
pub fn test_timing() -> Timing {
    Timing {
        ping_interval: Duration::from_millis(250),
        pong_timeout: Duration::from_secs(2),
        reauth_grace: Duration::from_millis(600),
        slow_consumer_grace: Duration::from_millis(300),
        drain_timeout: Duration::from_secs(2),
        action_timeout: Duration::from_millis(600),
    }
}

/// Builds a [`TestEdge`].
#[must_use]
#[derive(Debug)]
pub struct TestEdgeBuilder {
    bus: BusSource,
    config: EdgeConfig,
}

impl TestEdgeBuilder {
    /// Verifies HS256 tokens signed with `secret`.
    pub fn secret(self, secret: &[u8]) -> Self {
        self.key(JwtKey::hs256(secret).expect("HS256 secret"))
    }

    /// Verifies tokens with `key` (see `token::rs256_key`, `es256_key`).
    pub fn key(mut self, key: JwtKey) -> Self {
        self.config.auth.key = Some(key);
        self
    }

    /// Takes no tokens at all.
    pub fn no_key(mut self) -> Self {
        self.config.auth.key = None;
        self
    }

    pub fn anonymous(mut self, allow: bool) -> Self {
        self.config.auth.allow_anonymous = allow;
        self
    }

    pub fn audience(mut self, audience: &str) -> Self {
        self.config.auth.audience = Some(audience.to_owned());
        self
    }

    pub fn issuer(mut self, issuer: &str) -> Self {
        self.config.auth.issuer = Some(issuer.to_owned());
        self
    }

    /// Only these `Origin`s may open a WebSocket.
    pub fn origins(mut self, origins: &[&str]) -> Self {
        self.config.origins = OriginPolicy::List(origins.iter().map(|o| (*o).to_owned()).collect());
        self
    }

    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.config.limits.max_message_bytes = bytes;
        self
    }

    pub fn mailbox_capacity(mut self, frames: usize) -> Self {
        self.config.limits.mailbox_capacity = frames;
        self
    }

    /// Rate limit: average frames per second, burst, refusals before 1008.
    pub fn rate(mut self, per_sec: u32, burst: u32, strikes: u32) -> Self {
        self.config.limits.rate_per_sec = per_sec;
        self.config.limits.rate_burst = burst;
        self.config.limits.rate_strikes = strikes;
        self
    }

    pub fn limits(mut self, adjust: impl FnOnce(&mut Limits)) -> Self {
        adjust(&mut self.config.limits);
        self
    }

    pub fn timing(mut self, adjust: impl FnOnce(&mut Timing)) -> Self {
        adjust(&mut self.config.timing);
        self
    }

    /// Anything else.
    pub fn config(mut self, adjust: impl FnOnce(&mut EdgeConfig)) -> Self {
        adjust(&mut self.config);
        self
    }

    /// Connects the edge's bus, binds and runs the edge in the background,
    /// and waits until it is ready (`/readyz` 200: its bus is connected),
    /// as a load balancer would before sending it clients.
    pub async fn spawn(self) -> TestEdge {
        let edge = self.spawn_unready().await;
        let ready = async {
            loop {
                if edge.http("/readyz").await.0 == 200 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), ready).await.is_err() {
            panic!("edge {} did not become ready within 10 s", edge.id);
        }
        edge
    }

    /// Like [`TestEdgeBuilder::spawn`], without waiting for readiness.
    pub async fn spawn_unready(self) -> TestEdge {
        let bus = self.bus.connect("herald-tests-edge").await;
        let edge = Edge::bind(self.config, bus).await.unwrap_or_else(|e| panic!("Edge::bind: {e}"));
        let addr = edge.local_addr();
        let id = edge.id().to_string();
        let running = Background::spawn(|stopped| edge.run(stopped));
        TestEdge { addr, id, running }
    }
}

/// An edge running in this process.
#[derive(Debug)]
pub struct TestEdge {
    addr: SocketAddr,
    id: String,
    running: Background,
}

impl TestEdge {
    /// An edge on the bus under test (a [`BusSetup`](crate::BusSetup) or a
    /// [`NatsServer`](crate::NatsServer)) with the test HS256 key and [`test_timing`].
    pub fn builder(bus: impl Into<BusSource>) -> TestEdgeBuilder {
        let mut config = EdgeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), Some(hs256_key()));
        config.timing = test_timing();
        TestEdgeBuilder { bus: bus.into(), config }
    }

    /// An edge with every test default.
    pub async fn start(bus: impl Into<BusSource>) -> TestEdge {
        TestEdge::builder(bus).spawn().await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The edge's id, the first part of its connection ids.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `ws://<addr>/ws`, with `?token=` when given.
    pub fn ws_url(&self, token: Option<&str>) -> String {
        ws_url(self.addr, token)
    }

    /// `GET path`: status and body.
    pub async fn http(&self, path: &str) -> (u16, String) {
        crate::http::get(self.addr, path).await
    }

    /// Opens a WebSocket with `token` in the query.
    pub async fn connect(&self, token: &str) -> Result<Client, ConnectError> {
        Client::connect(&self.ws_url(Some(token))).await
    }

    /// Opens a WebSocket with `token`, reads `$connected` and checks that
    /// the connection id belongs to this edge.
    pub async fn client(&self, token: &str) -> Client {
        let mut client = self.connect(token).await.unwrap_or_else(|e| panic!("edge {}: {e}", self.id));
        let connected = client.connected().await;
        assert_eq!(connected.conn_id().edge(), self.id, "conn id {} does not name edge {}", connected.conn, self.id);
        client
    }

    /// A client for `user` in `groups`, with an HS256 test token.
    pub async fn user(&self, user: &str, groups: &[&str]) -> Client {
        let client = self.client(&Token::user(user).groups(groups.iter().copied()).hs256()).await;
        assert_eq!(client.info().user.as_deref(), Some(user));
        client
    }

    /// Triggers the shutdown and waits until the edge has stopped.
    pub async fn shutdown(&mut self) {
        self.running.stop(&format!("edge {}", self.id), Duration::from_secs(15)).await;
    }
}

/// `ws://<addr>/ws`, with `?token=` when given.
pub(crate) fn ws_url(addr: SocketAddr, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("ws://{addr}/ws?token={token}"),
        None => format!("ws://{addr}/ws"),
    }
}
