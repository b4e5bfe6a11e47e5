//! The router: binds its HTTP listener, joins the routers' queue groups on
//! NATS, serves until told to stop, then leaves the groups and finishes what
//! it has.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use herald_bus::{Bus, QueueSubscription};
use herald_handler::Presence;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::actions::{self, ACTIONS_QUEUE};
use crate::api::{self, ApiState};
use crate::config::RouterConfig;
use crate::dispatch::Dispatcher;
use crate::error::RouterError;
use crate::metrics::Metrics;
use crate::notices::{self, EVENTS_QUEUE};
use crate::push_port::{PushPort, PushTarget};
use crate::pusher::PusherApi;
use crate::pusher::webhooks::WebhookSender;
use crate::reload::{RouteReloader, check_webhook_secret};

/// A router's work without an HTTP listener of its own: it answers handler
/// requests on NATS, and its HTTP API ([`RouterCore::app`]) can be served on
/// any listener (`herald dev` serves it on the edge's port).
#[derive(Debug)]
pub struct RouterCore {
    /// What the backend HTTP API uses.
    api: Arc<ApiState>,
    /// Calls handlers; its routes are replaced on reload.
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    /// Where answers are published.
    bus: Bus,
    /// Handler requests (and `$disconnect` notices) worked on at once.
    max_inflight: usize,
    /// Where the routes came from, for reloads.
    routes_file: Option<PathBuf>,
    /// Handler requests from edges (queue group).
    actions: QueueSubscription,
    /// Disconnect events, for `$disconnect` (queue group).
    events: QueueSubscription,
    /// The push port, bound, when configured.
    push_port: Option<PushPort>,
    /// Sends Pusher webhooks, when an app has a webhook URL.
    webhooks: Option<WebhookSender>,
}

/// A router with its own HTTP listener, ready to [`run`](Router::run).
#[derive(Debug)]
pub struct Router {
    listener: TcpListener,
    core: RouterCore,
}

impl RouterCore {
    /// Subscribes: handler requests (queue group), disconnect events (queue
    /// group) and edge heartbeats (every router, for presence).
    pub async fn start(config: RouterConfig, bus: Bus) -> Result<RouterCore, RouterError> {
        check_webhook_secret(&config.routes, config.webhook_secret.is_some())?;
        let push_port = match &config.push_port {
            Some(push_config) => {
                let port = PushPort::bind(push_config.clone()).await?;
                // Not "listening on": that names the HTTP address in the logs.
                tracing::info!("push port serving on {}", port.local_addr());
                Some(port)
            }
            None => None,
        };
        // reqwest's TLS needs a process-wide crypto provider; ring is the
        // one NATS already uses. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let RouterConfig {
            subjects,
            api_key,
            routes,
            routes_file,
            webhook_secret,
            max_inflight,
            max_body_bytes,
            pusher_apps,
            ..
        } = config;
        let actions = bus.queue_subscribe(subjects.router_actions(), ACTIONS_QUEUE.to_owned()).await?;
        let events = bus.queue_subscribe(subjects.event_disconnect(), EVENTS_QUEUE.to_owned()).await?;
        let presence = Presence::start(bus.clone(), subjects.clone(), config.presence_timeout).await?;
        let pusher = PusherApi::new(pusher_apps, bus.clone(), subjects.clone(), presence.edges().clone());
        let webhooks =
            WebhookSender::subscribe(&bus, &subjects, pusher.apps().iter().cloned(), pusher.metrics().clone()).await?;
        if let Err(e) = bus.sync().await {
            // NATS is down: the client subscribes as soon as it is back.
            tracing::warn!(error = %e, "NATS has not confirmed the router's subscriptions; serving anyway");
        }
        let metrics = Arc::new(Metrics::new(&bus, pusher.metrics()));
        let dispatcher = Arc::new(Dispatcher::new(bus.clone(), routes, webhook_secret, metrics.clone()));
        let api = Arc::new(ApiState {
            bus: bus.clone(),
            subjects,
            api_key,
            max_body_bytes,
            presence,
            metrics: metrics.clone(),
            pusher: Arc::new(pusher),
        });
        Ok(RouterCore {
            api,
            dispatcher,
            metrics,
            bus,
            max_inflight,
            routes_file,
            actions,
            events,
            push_port,
            webhooks,
        })
    }

    /// Where the push port listens, when it is on.
    pub fn push_port_addr(&self) -> Option<SocketAddr> {
        self.push_port.as_ref().map(PushPort::local_addr)
    }

    /// The backend HTTP API, health and metrics, to serve on a listener.
    pub fn app(&self) -> axum::Router {
        api::app(self.api.clone())
    }

    pub fn reloader(&self) -> RouteReloader {
        RouteReloader {
            dispatcher: self.dispatcher.clone(),
            routes_file: self.routes_file.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Answers handler requests until `shutdown` resolves; then stops taking
    /// them (the other routers get them), finishes the ones in flight and
    /// the `$disconnect` notices on their way, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let RouterCore { api, dispatcher, metrics, bus, max_inflight, actions, events, push_port, webhooks, .. } = self;
        let stop = CancellationToken::new();
        let working = async {
            tokio::join!(
                notices::notify(dispatcher.clone(), metrics.clone(), max_inflight, events, stop.cancelled()),
                actions::serve(&bus, dispatcher, metrics, max_inflight, actions, stop.cancelled()),
            );
            // Stopped, or the bus ended both subscriptions: the push port
            // stops with them.
            stop.cancel();
        };
        let pushing = async {
            if let Some(port) = push_port {
                port.run(PushTarget::of(&api), stop.clone()).await;
            }
        };
        let sending = async {
            if let Some(sender) = webhooks {
                sender.run(stop.cancelled()).await;
            }
        };
        let stopping = async {
            tokio::select! {
                () = shutdown => stop.cancel(),
                () = stop.cancelled() => {}
            }
        };
        tokio::join!(working, pushing, sending, stopping);
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

    /// Where the push port listens, when it is on.
    pub fn push_port_addr(&self) -> Option<SocketAddr> {
        self.core.push_port_addr()
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
