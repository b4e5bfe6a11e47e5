//! The edge: binds its listener, builds the parts every session and request
//! uses (each gets only what it needs), serves until told to stop, then
//! drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald_bus::{Bus, DeliverySubscription};
use herald_handler::edges::Edges;
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use crate::auth::Verifier;
use crate::config::EdgeConfig;
use crate::drain::{Drain, restart};
use crate::events::Events;
use crate::handle::Alarms;
use crate::history::History;
use crate::http::{self, Fallback, HttpContext};
use crate::metrics::Metrics;
use crate::presence;
use crate::pusher;
use crate::registry::{Delivering, Registry};
use crate::routers::Routers;
use crate::session::{Clock, SessionContext};

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections waiting to be accepted (capped by the kernel's somaxconn).
const LISTEN_BACKLOG: u32 = 4096;
/// How long an edge waits for the other edges' members of a presence
/// channel it begins to hold (all live edges answer well before; only a
/// dead edge not yet taken for dead makes it wait this long).
const MEMBERS_QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long HTTP connections still open after the drain (health checks,
/// keep-alive) get to finish the request they are serving.
const CLOSE_CONNECTIONS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why an edge could not start.
#[derive(Debug, Error)]
pub enum EdgeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot make the deliveries' NATS connection: {0}")]
    Deliveries(herald_bus::BusError),
    #[error("cannot follow the edges' heartbeats: {0}")]
    Heartbeats(herald_bus::BusError),
    /// Recovery needs JetStream, which the in-process bus does not have.
    #[error("message history needs NATS with JetStream; the in-process bus (herald dev) has none: turn history off")]
    HistoryNeedsJetStream,
}

/// An edge, bound and subscribed, ready to [`run`](Edge::run).
pub struct Edge {
    listener: TcpListener,
    /// Serves every HTTP connection.
    http: Arc<HttpContext>,
    /// Sessions and upgrades, for the drain.
    drain: Drain,
    /// Closes every session when the drain begins.
    registry: Arc<Registry>,
    /// Says goodbye on it when the edge stops.
    bus: Bus,
    /// Where heartbeats go.
    heartbeat_subject: String,
    /// How long the drain may take.
    drain_timeout: Duration,
    /// The edge-wide subscriptions (everyone, single connections, control
    /// operations): they live as long as the edge.
    edge_wide: Vec<DeliverySubscription>,
    /// Presence answers, heartbeats and the history's keeper: they live as
    /// long as the edge.
    pumps: Vec<AbortOnDropHandle<()>>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("id", &self.id()).field("addr", &self.listener.local_addr()).finish()
    }
}

impl Edge {
    /// Binds the listener and subscribes the edge's own subjects.
    pub async fn bind(config: EdgeConfig, bus: Bus) -> Result<Edge, EdgeError> {
        let listener = listen(config.listen).map_err(|source| EdgeError::Bind { addr: config.listen, source })?;
        let EdgeConfig { subjects, auth, origins, limits, timing, pusher_apps, history, flushers, .. } = config;
        let metrics = Arc::new(Metrics::new(&bus));
        let edge_id = new_edge_id();
        let history = History::start(&bus, &subjects, &history).await?;
        let (history, keeper) = history.unzip();
        let deliveries = bus.deliveries().map_err(EdgeError::Deliveries)?;
        let registry = Registry::new(
            edge_id.clone(),
            subjects.clone(),
            deliveries,
            bus.clone(),
            history,
            Delivering { flushers, slow_consumer_grace: timing.slow_consumer_grace },
            metrics.clone(),
        );
        let edge_wide = registry.subscribe_edge_wide().await;
        let mut pumps: Vec<_> = keeper.into_iter().collect();
        match bus.subscribe(subjects.presence_query()).await {
            Ok(queries) => {
                let answering = presence::answer_queries(registry.clone(), bus.clone(), queries);
                pumps.push(AbortOnDropHandle::new(tokio::spawn(answering)));
            }
            Err(e) => tracing::error!(error = %e, "cannot answer presence queries"),
        }
        let (pusher_presence, pusher_webhooks) = start_pusher(&registry, &bus, &subjects, &mut pumps).await?;
        // Beating after `start_pusher` called the roll (`Edges::start`):
        // this edge's answer to its own roll call is not a second beat.
        let heartbeat_subject = subjects.edge_heartbeat();
        let roll_calls = bus
            .subscribe(subjects.edge_roll_call())
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot answer roll calls; beating every second only"))
            .ok();
        let beating = presence::beat(bus.clone(), heartbeat_subject.clone(), roll_calls, edge_id.clone());
        pumps.push(AbortOnDropHandle::new(tokio::spawn(beating)));
        let verifier = Arc::new(Verifier::new(&auth));
        let routers = Routers::new(bus.clone(), &subjects, timing.action_timeout);
        let drain = Drain::default();
        let drain_timeout = timing.drain_timeout;
        let sessions = Arc::new(SessionContext {
            registry: registry.clone(),
            pusher_presence,
            pusher_webhooks,
            routers: routers.clone(),
            events: Events::new(bus.clone(), subjects.clone(), edge_id),
            verifier: verifier.clone(),
            bus: bus.clone(),
            subjects,
            limits,
            timing,
            clock: Clock::new(),
            alarms: Alarms::start(),
            drain: drain.clone(),
            metrics: metrics.clone(),
        });
        let http = Arc::new(HttpContext {
            origins,
            pusher_apps,
            verifier,
            routers,
            registry: registry.clone(),
            bus: bus.clone(),
            drain: drain.clone(),
            metrics,
            sessions,
            fallback: OnceLock::new(),
        });
        Ok(Edge { listener, http, drain, registry, bus, heartbeat_subject, drain_timeout, edge_wide, pumps })
    }

    /// Serves every request for a path the edge does not serve itself
    /// with `fallback`, on the edge's port.
    pub fn serve_also(self, fallback: Fallback) -> Edge {
        if self.http.fallback.set(fallback).is_err() {
            tracing::warn!("the edge already had a fallback; keeping the first");
        }
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// This edge's id, the first part of its connection ids.
    pub fn id(&self) -> &str {
        self.registry.edge_id()
    }

    /// Serves until `shutdown` resolves, then drains: readiness turns false,
    /// new upgrades are refused, and every session is closed with 1012; after
    /// at most the drain timeout the edge stops, and the HTTP connections
    /// left finish the request they serve.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Edge { listener, http, drain, registry, bus, heartbeat_subject, drain_timeout, edge_wide, pumps } = self;
        tracing::info!(edge = registry.edge_id(), addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "edge serving");
        let connections = TaskTracker::new();
        let closing = CancellationToken::new();
        let accept = accept_loop(&listener, &http, &connections, &closing);
        tokio::pin!(accept);
        tokio::select! {
            () = &mut accept => {}
            () = shutdown => {}
        }
        // Health and readiness stay answerable while the sessions go.
        tokio::select! {
            () = &mut accept => {}
            () = run_drain(&drain, &registry, drain_timeout) => {}
        }
        closing.cancel();
        connections.close();
        if tokio::time::timeout(CLOSE_CONNECTIONS_TIMEOUT, connections.wait()).await.is_err() {
            tracing::debug!(left = connections.len(), "HTTP connections still open at the stop");
        }
        drop(edge_wide);
        drop(pumps);
        presence::leave(&bus, &heartbeat_subject, registry.edge_id()).await;
    }
}

/// Starts what Pusher channels need across the cluster: following the
/// edges' heartbeats, presence members, webhooks, and answering channel
/// queries.
async fn start_pusher(
    registry: &Arc<Registry>,
    bus: &Bus,
    subjects: &herald_proto::subject::Subjects,
    pumps: &mut Vec<AbortOnDropHandle<()>>,
) -> Result<(Arc<pusher::Presence>, Arc<pusher::Webhooks>), EdgeError> {
    let edges = Edges::start(bus.clone(), subjects, MEMBERS_QUERY_TIMEOUT).await.map_err(EdgeError::Heartbeats)?;
    let edge = registry.edge_id();
    let webhooks = pusher::Webhooks::new(edge, bus.clone(), subjects.clone(), edges.clone());
    let presence =
        pusher::Presence::new(edge, bus.clone(), subjects.clone(), edges, registry.clone(), webhooks.clone());
    pumps.push(AbortOnDropHandle::new(tokio::spawn(presence.clone().sweep())));
    pumps.push(AbortOnDropHandle::new(tokio::spawn(webhooks.clone().forget())));
    match bus.subscribe(subjects.pusher_query()).await {
        Ok(queries) => {
            let answering =
                pusher::queries::answer(registry.clone(), presence.clone(), webhooks.clone(), bus.clone(), queries);
            pumps.push(AbortOnDropHandle::new(tokio::spawn(answering)));
        }
        Err(e) => tracing::error!(error = %e, "cannot answer Pusher channel queries"),
    }
    Ok((presence, webhooks))
}

/// Binds with a deep accept queue: clients reconnecting together after a
/// drain or an outage arrive in bursts, and the default of 128 would make
/// the rest wait for a SYN retry (a second or more).
///
/// `TCP_NODELAY` is set here, once: accepted connections inherit it from
/// their listener (Linux and the BSDs), which saves each connect a
/// `setsockopt` (BENCHMARKS.md, "Connect rate").
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections (without Nagle's delay, see [`listen`]) and serves
/// each on a task of `connections`, until `closing` ends them.
async fn accept_loop(
    listener: &TcpListener,
    http: &Arc<HttpContext>,
    connections: &TaskTracker,
    closing: &CancellationToken,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(http::serve_connection(http.clone(), stream, closing.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Closes every session with 1012 and waits, at most `timeout`, until the
/// last is gone: the drain begins first, so a session set up meanwhile
/// closes itself, and an upgrade still on its way is refused.
async fn run_drain(drain: &Drain, registry: &Registry, timeout: Duration) {
    drain.begin();
    tracing::info!(sessions = registry.sessions(), "draining");
    registry.close_all(&restart());
    match drain.wait(timeout).await {
        0 => tracing::info!("drained"),
        left => tracing::warn!(left, "drain timed out; dropping the remaining sessions"),
    }
}

/// A fresh id per process: a restarted edge never receives messages meant
/// for the connections of its previous life.
fn new_edge_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY comes from the listener");
    }
}
