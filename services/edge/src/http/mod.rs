//! The edge's HTTP surface: `/ws` upgrades, `/healthz`, `/readyz`,
//! `/metrics`, and a [`Fallback`] for every other path.
//!
//! This file serves connections and routes requests by path; `upgrade`
//! decides upgrades. A client protocol is a path here and an upgrade there
//! (`/ws` Herald's, `/app/<key>` Pusher's, `/socket.io/` Socket.IO's), on
//! the same session machinery.

mod upgrade;

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use herald_bus::Bus;
use herald_proto::pusher::app::Apps;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::config::OriginPolicy;
use crate::drain::Drain;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::routers::Routers;
use crate::session::SessionContext;
use crate::tcp::ClientSocket;

/// Where Pusher clients connect: `/app/<key>`.
const PUSHER_PATH: &str = "/app/";

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of every response the edge serves.
pub type Body = BoxBody<Bytes, BoxError>;
/// What a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers the requests the edge does not serve itself, on the edge's own
/// port: `herald dev` puts the router's API and the demo page there.
pub type Fallback = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// What the HTTP surface needs from the edge.
pub(crate) struct HttpContext {
    /// Origins allowed to open a WebSocket.
    pub origins: OriginPolicy,
    /// Checks the token of an upgrade.
    pub verifier: Arc<Verifier>,
    /// Asks `$connect` about an upgrade without a token.
    pub routers: Routers,
    /// Gives out connection ids; counted in `/metrics`.
    pub registry: Arc<Registry>,
    /// Readiness follows it.
    pub bus: Bus,
    /// Upgrades are tracked by it and refused once it has begun.
    pub drain: Drain,
    pub metrics: Arc<Metrics>,
    /// The Pusher apps `/app/<key>` serves; none: that path is 404.
    pub pusher_apps: Apps,
    /// Handed to every session an upgrade starts.
    pub sessions: Arc<SessionContext>,
    /// Serves the paths the edge does not, if set.
    pub fallback: OnceLock<Fallback>,
}

/// Serves one TCP connection until it closes or is upgraded; once `closing`
/// is cancelled, it finishes the request it is serving and closes.
pub(crate) async fn serve_connection(ctx: Arc<HttpContext>, stream: TcpStream, closing: CancellationToken) {
    let service = service_fn(move |request| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(route(&ctx, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(ClientSocket(stream)), service)
        .with_upgrades();
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

async fn route(ctx: &Arc<HttpContext>, request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        // Tracked with the sessions: a drain waits for an upgrade in flight.
        (&Method::GET, "/ws") => ctx.drain.track_upgrade(upgrade::websocket(ctx, request)).await,
        // Decided without waiting on anything, so nothing for a drain to track.
        (&Method::GET, path) if path.starts_with(PUSHER_PATH) => {
            let key = path[PUSHER_PATH.len()..].to_owned();
            upgrade::pusher(ctx, request, &key)
        }
        // Any method: a long-polling POST is told to use WebSocket too.
        // Decided without waiting, like `/app/<key>`.
        (_, "/socket.io/" | "/socket.io") => upgrade::socketio(ctx, request),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => readiness(ctx),
        (&Method::GET, "/metrics") => metrics(ctx),
        (_, "/ws" | "/healthz" | "/readyz" | "/metrics") => text(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
        _ => match ctx.fallback.get() {
            Some(fallback) => fallback(request).await,
            None => text(StatusCode::NOT_FOUND, "not found"),
        },
    }
}

fn readiness(ctx: &HttpContext) -> Response<Body> {
    if ctx.drain.is_draining() {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready: draining")
    } else if !ctx.bus.is_connected() || !ctx.registry.deliveries_connected() {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready: NATS is unreachable")
    } else {
        text(StatusCode::OK, "ready")
    }
}

fn metrics(ctx: &HttpContext) -> Response<Body> {
    let metrics = &ctx.metrics;
    metrics.subscriptions.set(i64::try_from(ctx.registry.topics()).unwrap_or(i64::MAX));
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    metrics.tasks.set(i64::try_from(tasks).unwrap_or(i64::MAX));
    let connected = ctx.bus.is_connected() && ctx.registry.deliveries_connected();
    let draining = ctx.drain.is_draining();
    metrics.bus_connected.set(i64::from(connected));
    metrics.draining.set(i64::from(draining));
    metrics.ready.set(i64::from(connected && !draining));
    let mut response = Response::new(full(metrics.render()));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(herald_metrics::CONTENT_TYPE));
    response
}

/// A body of bytes known up front.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(full(format!("{body}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
