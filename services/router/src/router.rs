//! The router: binds its HTTP listener, joins the routers' queue group on
//! NATS, serves until told to stop, then leaves the group and finishes what
//! it has.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use herald_bus::{Bus, BusError};
use herald_handler::Presence;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::config::RouterConfig;
use crate::dispatch::Dispatcher;
use crate::metrics::{Metrics, inc};
use crate::routes::{RouteTable, RoutesError};
use crate::service::{self, ACTIONS_QUEUE, EVENTS_QUEUE};

/// Why a router could not start, or a reload was refused.
#[derive(Debug, Error)]
pub enum RouterError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("routes call HTTP handlers but no webhook secret is set (HERALD_WEBHOOK_SECRET)")]
    MissingWebhookSecret,
    #[error(transparent)]
    Routes(#[from] RoutesError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("no routes file to reload")]
    NoRoutesFile,
}

/// A router's work without an HTTP listener of its own: it answers handler
/// requests on NATS, and its HTTP API ([`RouterCore::app`]) can be served on
/// any listener (`herald dev` serves it on the edge's port).
#[derive(Debug)]
pub struct RouterCore {
    shared: Arc<RouterShared>,
    /// Handler requests from edges (queue group).
    actions: herald_bus::Subscription,
    /// Disconnect events, for `$disconnect` (queue group).
    events: herald_bus::Subscription,
}

/// A router with its own HTTP listener, ready to [`run`](Router::run).
#[derive(Debug)]
pub struct Router {
    listener: TcpListener,
    core: RouterCore,
}

/// What every request of one router shares.
#[derive(Debug)]
pub(crate) struct RouterShared {
    pub config: RouterConfig,
    pub bus: Bus,
    pub dispatcher: Dispatcher,
    /// Who is online, for the presence API.
    pub presence: Presence,
    pub metrics: Metrics,
}

/// Reloads a running router's routes (on SIGHUP).
#[derive(Debug, Clone)]
pub struct RouteReloader {
    shared: Arc<RouterShared>,
}

impl RouteReloader {
    /// Re-reads the routes file. A bad file keeps the old table; the error
    /// says why. Requests in flight finish with the table they started with.
    pub fn reload(&self) -> Result<(), RouterError> {
        let result = self.load();
        match &result {
            Ok(()) => inc(&self.shared.metrics.route_reloads_total),
            Err(_) => inc(&self.shared.metrics.route_reload_failures_total),
        }
        result
    }

    fn load(&self) -> Result<(), RouterError> {
        let path = self.shared.config.routes_file.as_ref().ok_or(RouterError::NoRoutesFile)?;
        let table = RouteTable::load(path)?;
        check_webhook_secret(&table, self.shared.dispatcher.has_webhook_secret())?;
        self.shared.dispatcher.replace_routes(table);
        Ok(())
    }
}

fn check_webhook_secret(table: &RouteTable, has_secret: bool) -> Result<(), RouterError> {
    if table.has_http_routes() && !has_secret {
        return Err(RouterError::MissingWebhookSecret);
    }
    Ok(())
}

impl RouterCore {
    /// Subscribes: handler requests (queue group), disconnect events (queue
    /// group) and edge heartbeats (every router, for presence).
    pub async fn start(config: RouterConfig, bus: Bus) -> Result<RouterCore, RouterError> {
        check_webhook_secret(&config.routes, config.webhook_secret.is_some())?;
        // reqwest's TLS needs a process-wide crypto provider; ring is the
        // one NATS already uses. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let subjects = &config.subjects;
        let actions = bus.queue_subscribe(subjects.router_actions(), ACTIONS_QUEUE.to_owned()).await?;
        let events = bus.queue_subscribe(subjects.event_disconnect(), EVENTS_QUEUE.to_owned()).await?;
        let presence = Presence::start(bus.clone(), subjects.clone(), config.presence_timeout).await?;
        if let Err(e) = bus.sync().await {
            // NATS is down: the client subscribes as soon as it is back.
            tracing::warn!(error = %e, "NATS has not confirmed the router's subscriptions; serving anyway");
        }
        let dispatcher = Dispatcher::new(bus.clone(), config.routes.clone(), config.webhook_secret.clone());
        let shared = Arc::new(RouterShared { config, bus, dispatcher, presence, metrics: Metrics::default() });
        Ok(RouterCore { shared, actions, events })
    }

    /// The backend HTTP API, health and metrics, to serve on a listener.
    pub fn app(&self) -> axum::Router {
        api::app(self.shared.clone())
    }

    pub fn reloader(&self) -> RouteReloader {
        RouteReloader { shared: self.shared.clone() }
    }

    /// Answers handler requests until `shutdown` resolves; then stops taking
    /// them (the other routers get them), finishes the ones in flight, and
    /// returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let RouterCore { shared, actions, events } = self;
        let stop = CancellationToken::new();
        let limit = shared.config.max_inflight;
        let serving = async {
            tokio::join!(
                service::notify_disconnects(shared.clone(), events, limit, stop.cancelled()),
                service::serve_actions(shared, actions, stop.cancelled()),
            )
        };
        tokio::pin!(serving);
        tokio::select! {
            _ = &mut serving => return,
            () = shutdown => stop.cancel(),
        }
        serving.await;
    }
}

impl Router {
    /// Binds the listener, then starts the router's work on NATS.
    pub async fn bind(config: RouterConfig, bus: Bus) -> Result<Router, RouterError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RouterError::Bind { addr: config.listen, source })?;
        let core = RouterCore::start(config, bus).await?;
        Ok(Router { listener, core })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn reloader(&self) -> RouteReloader {
        self.core.reloader()
    }

    /// Serves until `shutdown` resolves; then stops taking handler requests
    /// (the other routers get them), finishes the ones in flight, stops the
    /// HTTP server, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Router { listener, core } = self;
        tracing::info!(addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "router serving");
        let stop = CancellationToken::new();
        let app = core.app();
        let http = async {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        };
        let stopping = async {
            shutdown.await;
            stop.cancel();
        };
        tokio::join!(http, core.run(stop.cancelled()), stopping);
    }
}
