//! The edge's HTTP surface: `/ws` upgrades, `/healthz`, `/readyz`,
//! `/metrics`.
//!
//! Everything about an upgrade is decided before the `101` (origin, token,
//! draining), so a refused client gets a plain HTTP status it can act on and
//! costs no session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::header::{
    AUTHORIZATION, CONNECTION, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use herald_proto::conn_id::ConnId;

use crate::auth::Identity;
use crate::connect::{self, Refusal};
use crate::edge::EdgeShared;
use crate::metrics::{Gauges, inc};
use crate::session;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of every response the edge serves.
pub type Body = BoxBody<Bytes, BoxError>;
/// What a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers the requests the edge does not serve itself, on the edge's own
/// port: `herald dev` puts the router's API and the demo page there.
pub type Fallback = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<'static, Response<Body>> + Send + Sync>;

/// Serves one TCP connection until it closes or is upgraded.
pub(crate) async fn serve_connection(ctx: Arc<EdgeShared>, stream: TcpStream) {
    let service = service_fn(move |request| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(route(&ctx, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

async fn route(ctx: &Arc<EdgeShared>, request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        // Tracked with the sessions: a drain waits for an upgrade in flight.
        (&Method::GET, "/ws") => ctx.sessions.track_future(upgrade(ctx, request)).await,
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

fn readiness(ctx: &EdgeShared) -> Response<Body> {
    if ctx.is_draining() {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready: draining")
    } else if !ctx.bus.is_connected() {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready: NATS is unreachable")
    } else {
        text(StatusCode::OK, "ready")
    }
}

fn metrics(ctx: &EdgeShared) -> Response<Body> {
    let gauges = Gauges {
        sessions: ctx.registry.sessions(),
        subscriptions: ctx.registry.topics(),
        bus_connected: ctx.bus.is_connected(),
        draining: ctx.is_draining(),
    };
    let mut response = Response::new(full(ctx.metrics.render(&gauges)));
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// Answers an upgrade request: `101` and a session, or the reason why not.
async fn upgrade(ctx: &Arc<EdgeShared>, mut request: Request<Incoming>) -> Response<Body> {
    let conn = ctx.registry.new_conn_id();
    let (identity, accept_key) = match admit(ctx, &conn, &request).await {
        Ok(admitted) => admitted,
        Err((status, message)) => {
            inc(&ctx.metrics.upgrades_refused_total);
            let mut refusal = text(status, &message);
            if status == StatusCode::UNAUTHORIZED {
                refusal.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            return refusal;
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    session::start(ctx, on_upgrade, conn, identity);
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept_key).expect("base64 is a valid header value"));
    response
}

/// Decides whether an upgrade request becomes a session: a valid token is
/// used as it is; without one, the `$connect` route decides.
async fn admit(ctx: &EdgeShared, conn: &ConnId, request: &Request<Incoming>) -> Result<(Identity, String), Refusal> {
    let refuse = |status, message: &str| Err((status, message.to_owned()));
    if ctx.is_draining() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "draining: connect to another server");
    }
    let headers = request.headers();
    if !has_token(headers, &UPGRADE, "websocket") || !has_token(headers, &CONNECTION, "upgrade") {
        return refuse(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade request");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return refuse(StatusCode::BAD_REQUEST, "only WebSocket version 13 is supported");
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let origin = headers.get(ORIGIN).and_then(|origin| origin.to_str().ok());
    if !ctx.config.origins.allows(origin) {
        return refuse(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let identity = match token_of(request) {
        Some(token) => ctx.verifier.verify(&token).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?,
        None => connect::authenticate(ctx, conn, headers).await?,
    };
    // A drain may have begun while `$connect` was asked.
    if ctx.is_draining() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "draining: connect to another server");
    }
    Ok((identity, derive_accept_key(key.as_bytes())))
}

/// The token of an upgrade: `?token=` or `Authorization: Bearer`.
fn token_of<B>(request: &Request<B>) -> Option<String> {
    if let Some(query) = request.uri().query() {
        let token = form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "token");
        if let Some((_, token)) = token {
            return Some(token.into_owned());
        }
    }
    let authorization = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// Whether a comma-separated header holds `token` (compared without case).
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, authorization: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn finds_the_token_in_the_query_or_the_header() {
        assert_eq!(token_of(&request("/ws?a=1&token=x%2By", None)).as_deref(), Some("x+y"));
        assert_eq!(token_of(&request("/ws", Some("Bearer abc"))).as_deref(), Some("abc"));
        assert_eq!(token_of(&request("/ws", Some("bearer  abc "))).as_deref(), Some("abc"));
        assert_eq!(token_of(&request("/ws", Some("Basic abc"))), None);
        assert_eq!(token_of(&request("/ws", None)), None);
    }

    #[test]
    fn header_tokens_are_matched_in_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, &CONNECTION, "upgrade"));
        assert!(!has_token(&headers, &UPGRADE, "websocket"));
    }
}
