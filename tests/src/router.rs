//! Routers under test.
//!
//! [`TestRouter`] runs `herald_router::Router` inside the test's runtime,
//! built directly from a [`RouterConfig`] (no environment involved),
//! listening on 127.0.0.1 with a port the OS picks, on the bus under test
//! (see [`crate::setup`]). Its routes are written to a [`RoutesFile`] of
//! its own, so [`TestRouter::reload`] re-reads them exactly as SIGHUP does
//! in `herald router`. Dropping it triggers its shutdown.
//!
//! ```ignore
//! let router = TestRouter::builder(&setup)
//!     .routes(r#"
//!         [[routes]]
//!         action = "chat/*"
//!         nats = "app.chat"
//!     "#)
//!     .spawn()
//!     .await;
//! let (status, answer) = router.post("/api/publish", &json!({...})).await;
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use herald_router::{RouteReloader, RouteTable, Router, RouterConfig, RouterError};
use serde_json::Value;

use crate::background::Background;
use crate::bus::unique;
use crate::setup::BusSource;

/// The API key test routers take unless told otherwise.
pub const TEST_API_KEY: &str = "herald-tests-api-key";

/// The webhook secret test routers sign HTTP handler requests with unless
/// told otherwise.
pub const TEST_WEBHOOK_SECRET: &[u8] = b"herald-tests-webhook-secret";

/// A routes file in the temporary directory, removed on drop.
#[derive(Debug)]
pub struct RoutesFile {
    path: PathBuf,
}

impl RoutesFile {
    /// A new file holding `text`.
    pub fn new(text: &str) -> RoutesFile {
        let name = format!("herald-tests-routes-{}-{}.toml", std::process::id(), unique());
        let file = RoutesFile { path: std::env::temp_dir().join(name) };
        file.write(text);
        file
    }

    /// Replaces the file's contents (atomically: a reload never reads half
    /// a file).
    pub fn write(&self, text: &str) {
        let partial = self.path.with_extension(format!("partial-{}", unique()));
        std::fs::write(&partial, text).unwrap_or_else(|e| panic!("write {}: {e}", partial.display()));
        std::fs::rename(&partial, &self.path).unwrap_or_else(|e| panic!("rename to {}: {e}", self.path.display()));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as text, for `HERALD_ROUTES_FILE`.
    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for RoutesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A change to a router's configuration, applied before it binds.
type Adjust = Box<dyn FnOnce(&mut RouterConfig) + Send>;

/// Builds a [`TestRouter`].
#[must_use]
pub struct TestRouterBuilder {
    bus: BusSource,
    api_key: String,
    routes: String,
    webhook_secret: Option<Vec<u8>>,
    adjust: Vec<Adjust>,
}

impl std::fmt::Debug for TestRouterBuilder {
    /// Everything but the adjustments, which are closures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRouterBuilder")
            .field("bus", &self.bus)
            .field("routes", &self.routes)
            .field("adjustments", &self.adjust.len())
            .finish_non_exhaustive()
    }
}

impl TestRouterBuilder {
    /// The key backends must present (default [`TEST_API_KEY`]).
    pub fn api_key(mut self, key: &str) -> Self {
        self.api_key = key.to_owned();
        self
    }

    /// The routes file's text (TOML; default: no routes).
    pub fn routes(mut self, toml: &str) -> Self {
        self.routes = toml.to_owned();
        self
    }

    /// The webhook secret (default [`TEST_WEBHOOK_SECRET`]).
    pub fn webhook_secret(mut self, secret: &[u8]) -> Self {
        self.webhook_secret = Some(secret.to_vec());
        self
    }

    /// No webhook secret at all.
    pub fn no_webhook_secret(mut self) -> Self {
        self.webhook_secret = None;
        self
    }

    /// Anything else.
    pub fn config(mut self, adjust: impl FnOnce(&mut RouterConfig) + Send + 'static) -> Self {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Writes the routes file, connects the router's bus, binds (which
    /// subscribes and confirms the subscriptions with the bus) and runs the
    /// router in the background. Once this returns, edges' actions reach it.
    pub async fn spawn(self) -> TestRouter {
        self.try_spawn().await.unwrap_or_else(|e| panic!("Router::bind: {e}"))
    }

    /// Like [`TestRouterBuilder::spawn`], returning why the router refused
    /// to start.
    pub async fn try_spawn(self) -> Result<TestRouter, RouterError> {
        let routes_file = RoutesFile::new(&self.routes);
        let routes = RouteTable::load(routes_file.path()).unwrap_or_else(|e| panic!("test routes: {e}"));
        let mut config = RouterConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), self.api_key.clone(), routes);
        config.routes_file = Some(routes_file.path().to_path_buf());
        config.webhook_secret = self.webhook_secret;
        for adjust in self.adjust {
            adjust(&mut config);
        }
        let bus = self.bus.connect("herald-tests-router").await;
        let router = Router::bind(config, bus).await?;
        let addr = router.local_addr();
        let push_port = router.push_port_addr();
        let reloader = router.reloader();
        let running = Background::spawn(|stopped| router.run(stopped));
        Ok(TestRouter { addr, push_port, api_key: self.api_key, routes_file, reloader, running })
    }
}

/// A router running in this process.
pub struct TestRouter {
    addr: SocketAddr,
    /// Where its push port listens, when configured.
    push_port: Option<SocketAddr>,
    api_key: String,
    routes_file: RoutesFile,
    reloader: RouteReloader,
    running: Background,
}

impl std::fmt::Debug for TestRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRouter").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl TestRouter {
    /// A router on the bus under test (a [`BusSetup`](crate::BusSetup) or a
    /// [`NatsServer`](crate::NatsServer)) with [`TEST_API_KEY`],
    /// [`TEST_WEBHOOK_SECRET`] and no routes.
    pub fn builder(bus: impl Into<BusSource>) -> TestRouterBuilder {
        TestRouterBuilder {
            bus: bus.into(),
            api_key: TEST_API_KEY.to_owned(),
            routes: String::new(),
            webhook_secret: Some(TEST_WEBHOOK_SECRET.to_vec()),
            adjust: Vec::new(),
        }
    }

    /// A router with every test default and these routes.
    pub async fn start(bus: impl Into<BusSource>, routes: &str) -> TestRouter {
        TestRouter::builder(bus).routes(routes).spawn().await
    }

    /// Where its HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where its push port listens; panics when it has none.
    pub fn push_port(&self) -> SocketAddr {
        self.push_port.expect("this router has no push port: set RouterConfig::push_port")
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A call to the backend API: `body` as JSON, with
    /// `Authorization: Bearer <key>` when `key` is given; the status and the
    /// JSON answer.
    pub async fn api(&self, method: &str, path: &str, body: Option<&Value>, key: Option<&str>) -> (u16, Value) {
        crate::http::api(self.addr, method, path, body, key).await
    }

    /// `POST path` with `body` and the right key.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.api("POST", path, Some(body), Some(&self.api_key)).await
    }

    /// `GET path` with the right key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.api("GET", path, None, Some(&self.api_key)).await
    }

    /// `POST path` with `body` and the right key, which must succeed.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 200, "POST {path} {body}: {answer}");
        answer
    }

    /// A plain `GET path` (health, metrics): status and body.
    pub async fn http(&self, path: &str) -> (u16, String) {
        crate::http::get(self.addr, path).await
    }

    /// The value of an unlabelled metric on its `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let (status, page) = self.http("/metrics").await;
        assert_eq!(status, 200, "GET /metrics: {page}");
        crate::http::metric(&page, name).unwrap_or_else(|| panic!("no metric {name} in:\n{page}"))
    }

    /// Its routes file.
    pub fn routes_file(&self) -> &RoutesFile {
        &self.routes_file
    }

    /// Rewrites its routes file (takes effect on [`TestRouter::reload`]).
    pub fn write_routes(&self, toml: &str) {
        self.routes_file.write(toml);
    }

    /// Re-reads the routes file, as SIGHUP does in `herald router`.
    pub fn reload(&self) -> Result<(), RouterError> {
        self.reloader.reload()
    }

    /// Triggers the shutdown and waits until the router has stopped.
    pub async fn shutdown(&mut self) {
        self.running.stop("router", Duration::from_secs(15)).await;
    }
}
