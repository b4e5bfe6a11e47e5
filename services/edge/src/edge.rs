//! The edge: binds its listener, holds the shared state every session uses,
//! serves until told to stop, then drains.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use herald_bus::Bus;
use herald_proto::close;
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

use crate::auth::Verifier;
use crate::config::EdgeConfig;
use crate::http::{self, Fallback};
use crate::metrics::Metrics;
use crate::presence;
use crate::registry::Registry;
use crate::routers::Routers;
use crate::session::handle::CloseRequest;

/// Bytes read from a socket at a time. Small on purpose: tungstenite
/// allocates this buffer eagerly for every connection and keeps it for the
/// connection's life, idle or not, and client frames are small (an action
/// is typically a few hundred bytes); bigger frames are read in several
/// steps of this size.
const READ_BUFFER_BYTES: usize = 512;
/// Frames are gathered up to this size before a write to the socket.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// Bound on a session's write buffer: one gathered batch plus one frame as
/// large as NATS lets a backend publish (1 MiB by default, 8 MiB at most
/// unless NATS is configured beyond its recommendations).
const MAX_WRITE_BUFFER_BYTES: usize = WRITE_BUFFER_BYTES + 8 * 1024 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections waiting to be accepted (capped by the kernel's somaxconn).
const LISTEN_BACKLOG: u32 = 4096;

/// Why an edge could not start.
#[derive(Debug, Error)]
pub enum EdgeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// An edge, bound and subscribed, ready to [`run`](Edge::run).
pub struct Edge {
    listener: TcpListener,
    shared: Arc<EdgeShared>,
    /// The edge-wide subscriptions (everyone, single connections).
    pumps: Vec<AbortOnDropHandle<()>>,
}

/// What every session and request of one edge shares.
pub(crate) struct EdgeShared {
    pub config: EdgeConfig,
    pub verifier: Verifier,
    pub bus: Bus,
    /// Where client actions and `$connect` go.
    pub routers: Routers,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Socket settings of every session.
    pub ws_config: WebSocketConfig,
    /// Cancelled once a drain starts: readiness fails, upgrades are refused,
    /// and a session set up meanwhile closes itself.
    pub draining: CancellationToken,
    /// Every session, and every upgrade on its way to becoming one: the
    /// drain waits for them.
    pub sessions: TaskTracker,
    /// Serves the paths the edge does not, if set.
    pub fallback: OnceLock<Fallback>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("id", &self.id()).field("addr", &self.listener.local_addr()).finish()
    }
}

impl EdgeShared {
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }
}

impl Edge {
    /// Binds the listener and subscribes the edge's own subjects.
    pub async fn bind(config: EdgeConfig, bus: Bus) -> Result<Edge, EdgeError> {
        let listener = listen(config.listen).map_err(|source| EdgeError::Bind { addr: config.listen, source })?;
        let metrics = Arc::new(Metrics::default());
        let registry = Registry::new(
            new_edge_id(),
            config.subjects.clone(),
            bus.clone(),
            config.timing.slow_consumer_grace,
            metrics.clone(),
        );
        let mut pumps = registry.start_edge_pumps().await;
        match bus.subscribe(config.subjects.presence_query()).await {
            Ok(queries) => {
                let answering = presence::answer_queries(registry.clone(), bus.clone(), queries);
                pumps.push(AbortOnDropHandle::new(tokio::spawn(answering)));
            }
            Err(e) => tracing::error!(error = %e, "cannot answer presence queries"),
        }
        let heartbeat_subject = config.subjects.edge_heartbeat();
        let beating = presence::beat(bus.clone(), heartbeat_subject, registry.edge_id().to_owned());
        pumps.push(AbortOnDropHandle::new(tokio::spawn(beating)));
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
            .max_message_size(Some(config.limits.max_message_bytes))
            .max_frame_size(Some(config.limits.max_message_bytes));
        let shared = Arc::new(EdgeShared {
            verifier: Verifier::new(&config.auth),
            routers: Routers::new(bus.clone(), &config.subjects, config.timing.action_timeout),
            config,
            bus,
            registry,
            metrics,
            ws_config,
            draining: CancellationToken::new(),
            sessions: TaskTracker::new(),
            fallback: OnceLock::new(),
        });
        Ok(Edge { listener, shared, pumps })
    }

    /// Serves every request for a path the edge does not serve itself
    /// with `fallback`, on the edge's port.
    pub fn serve_also(self, fallback: Fallback) -> Edge {
        if self.shared.fallback.set(fallback).is_err() {
            tracing::warn!("the edge already had a fallback; keeping the first");
        }
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// This edge's id, the first part of its connection ids.
    pub fn id(&self) -> &str {
        self.shared.registry.edge_id()
    }

    /// Serves until `shutdown` resolves, then drains: readiness turns false,
    /// new upgrades are refused, and every session is closed with 1012; after
    /// at most the drain timeout the edge stops.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Edge { listener, shared, pumps } = self;
        tracing::info!(edge = shared.registry.edge_id(), addr = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "edge serving");
        let accept = accept_loop(&listener, &shared);
        tokio::pin!(accept);
        tokio::select! {
            () = &mut accept => {}
            () = shutdown => {}
        }
        // Health and readiness stay answerable while the sessions go.
        tokio::select! {
            () = &mut accept => {}
            () = drain(&shared) => {}
        }
        drop(pumps);
        let heartbeat_subject = shared.config.subjects.edge_heartbeat();
        presence::leave(&shared.bus, &heartbeat_subject, shared.registry.edge_id()).await;
    }
}

/// Binds with a deep accept queue: clients reconnecting together after a
/// drain or an outage arrive in bursts, and the default of 128 would make
/// the rest wait for a SYN retry (a second or more).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn accept_loop(listener: &TcpListener, shared: &Arc<EdgeShared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(http::serve_connection(shared.clone(), stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Closes every session with 1012 and waits, at most the drain timeout,
/// until the last is gone. Sessions are tracked from the upgrade request
/// on, so one whose upgrade was still waiting (on `$connect`, say) is
/// waited for too: it is refused before its `101`, or closes itself as
/// soon as it exists.
async fn drain(shared: &EdgeShared) {
    shared.draining.cancel();
    let registry = &shared.registry;
    tracing::info!(sessions = registry.sessions(), "draining");
    registry.close_all(&restart());
    shared.sessions.close();
    match tokio::time::timeout(shared.config.timing.drain_timeout, shared.sessions.wait()).await {
        Ok(()) => tracing::info!("drained"),
        Err(_) => tracing::warn!(left = shared.sessions.len(), "drain timed out; dropping the remaining sessions"),
    }
}

/// How a drain closes a session.
pub(crate) fn restart() -> CloseRequest {
    CloseRequest::new(close::SERVICE_RESTART, "server restart")
}

/// A fresh id per process: a restarted edge never receives messages meant
/// for the connections of its previous life.
fn new_edge_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}
