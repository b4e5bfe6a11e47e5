//! The router: binds its HTTP listener, joins the routers' queue group on
//! NATS, serves until told to stop, then leaves the group and finishes what
//! it has.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use herald_bus::{Bus, BusError};
use thiserror::Error;
use tokio::net::TcpListener;

use crate::api;
use crate::config::RouterConfig;
use crate::dispatch::Dispatcher;
use crate::metrics::{Metrics, inc};
use crate::presence::EdgeDirectory;
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

/// A router, bound and subscribed, ready to [`run`](Router::run).
#[derive(Debug)]
pub struct Router {
    listener: TcpListener,
    shared: Arc<RouterShared>,
    actions: herald_bus::Subscription,
    events: herald_bus::Subscription,
    heartbeats: herald_bus::Subscription,
}

/// What every request of one router shares.
#[derive(Debug)]
pub(crate) struct RouterShared {
    pub config: RouterConfig,
    pub bus: Bus,
    pub dispatcher: Dispatcher,
    pub edges: EdgeDirectory,
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

impl Router {
    /// Binds the listener and subscribes: handler requests (queue group),
    /// disconnect events (queue group) and edge heartbeats (every router).
    pub async fn bind(config: RouterConfig, bus: Bus) -> Result<Router, RouterError> {
        check_webhook_secret(&config.routes, config.webhook_secret.is_some())?;
        // reqwest's TLS needs a process-wide crypto provider; ring is the
        // one NATS already uses. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| RouterError::Bind { addr: config.listen, source })?;
        let subjects = &config.subjects;
        let actions = bus.queue_subscribe(subjects.router_actions(), ACTIONS_QUEUE.to_owned()).await?;
        let events = bus.queue_subscribe(subjects.event_disconnect(), EVENTS_QUEUE.to_owned()).await?;
        let heartbeats = bus.subscribe(subjects.edge_heartbeat()).await?;
        if let Err(e) = bus.sync().await {
            // NATS is down: the client subscribes as soon as it is back.
            tracing::warn!(error = %e, "NATS has not confirmed the router's subscriptions; serving anyway");
        }
        let dispatcher = Dispatcher::new(bus.clone(), config.routes.clone(), config.webhook_secret.clone());
        let shared = Arc::new(RouterShared {
            config,
            bus,
            dispatcher,
            edges: EdgeDirectory::default(),
            metrics: Metrics::default(),
        });
        Ok(Router { listener, shared, actions, events, heartbeats })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn reloader(&self) -> RouteReloader {
        RouteReloader { shared: self.shared.clone() }
    }

    /// Serves until `shutdown` resolves; then stops taking handler requests
    /// (the other routers get them), finishes the ones in flight, and
    /// returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Router { listener, shared, actions, events, heartbeats } = self;
        tracing::info!(addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "router serving");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let http = axum::serve(listener, api::app(shared.clone())).with_graceful_shutdown(stopped(stop_rx.clone()));
        let notices = tokio::spawn(service::notify_disconnects(shared.clone(), events));
        let tracker = tokio::spawn(service::track_edges(shared.clone(), heartbeats));
        let serving = tokio::spawn(service::serve_actions(shared.clone(), actions, stopped(stop_rx)));
        let http = tokio::spawn(async move {
            if let Err(e) = http.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = serving.await;
        let _ = http.await;
        notices.abort();
        tracker.abort();
    }
}
