//! Upgrades: everything is decided before the `101` (draining, origin,
//! token or `$connect`), so a refused client gets a plain HTTP status it can
//! act on and costs no session.
//!
//! Two steps, kept apart: [`handshake_key`] checks the request is a
//! WebSocket upgrade at all, and [`admit`] decides who the connection is,
//! whatever protocol it will speak. [`websocket`] puts them together for
//! `/ws`, Herald's own protocol; [`pusher`] for `/app/<key>`, where the
//! app key is the gate and the session's protocol is Pusher's; [`socketio`]
//! for `/socket.io/`, where who the client is waits for its CONNECT packet,
//! after the `101`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, CONTENT_TYPE, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use herald_proto::conn_id::ConnId;
use herald_proto::history::{RESUME_PARAM, Resume, parse_resume};
use herald_proto::pusher::app::App;
use herald_proto::pusher::codes;
use herald_proto::pusher::socket_id::SocketId;
use herald_proto::socketio::engine;

use super::{Body, HttpContext, full, text};
use crate::auth::Identity;
use crate::connect::{self, Refusal};
use crate::session::{self, Protocol, PusherSession, SocketIoUpgrade};

/// The only Pusher protocol version spoken.
const PUSHER_PROTOCOL: &str = "7";

/// Answers an upgrade request on `/ws`: `101` and a session, or the reason
/// why not.
pub(super) async fn websocket(ctx: &Arc<HttpContext>, mut request: Request<Incoming>) -> Response<Body> {
    let conn = ctx.registry.new_conn_id();
    // Checked before `$connect`, so a bad one costs no handler request.
    let checked = taking_upgrades(ctx).and_then(|()| handshake_key(request.headers()));
    let checked = checked.and_then(|key| resume_of(&request).map(|resume| (key, resume.map(Box::new))));
    let admitted = match checked {
        Ok((key, resume)) => admit(ctx, &conn, &request).await.map(|identity| (identity, key, resume)),
        Err(refusal) => Err(refusal),
    };
    let (identity, accept_key, resume) = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(ctx, refusal),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    session::start(&ctx.sessions, on_upgrade, conn, identity, Protocol::Herald(resume));
    switching_protocols(&accept_key)
}

/// Answers an upgrade request on `/app/<key>`. A request that is no
/// WebSocket upgrade, from a refused origin, or while draining gets a plain
/// status like on `/ws`; with no Pusher app configured the path is 404.
/// An unknown key or protocol version is answered the way Pusher clients
/// understand: the upgrade succeeds, then `pusher:error` and a close with
/// its code (4001, 4007, 4008), so pusher-js does not retry.
pub(super) fn pusher(ctx: &Arc<HttpContext>, mut request: Request<Incoming>, key: &str) -> Response<Body> {
    if ctx.pusher_apps.is_empty() {
        return text(StatusCode::NOT_FOUND, "no Pusher app is configured");
    }
    let conn = ctx.registry.new_conn_id();
    let accept_key = match upgrade_from_anyone(ctx, &request) {
        Ok(accept_key) => accept_key,
        Err(refusal) => return refuse(ctx, refusal),
    };
    let Some(socket_id) = SocketId::of(&conn) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "this edge's connection ids have no socket id");
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    match pusher_app(ctx, key, request.uri().query()) {
        Ok(app) => {
            let protocol = Protocol::Pusher(Box::new(PusherSession::new(app.clone(), socket_id)));
            session::start(&ctx.sessions, on_upgrade, conn, Identity::default(), protocol);
        }
        Err((code, message)) => {
            let reason = if code == codes::APP_NOT_FOUND { "unknown_app" } else { "unsupported_protocol" };
            ctx.metrics.upgrade_refused_for(reason);
            session::refuse_pusher(&ctx.sessions, on_upgrade, code, message);
        }
    }
    switching_protocols(&accept_key)
}

/// Answers a request on `/socket.io/`. Only `EIO=4&transport=websocket`
/// is served: a long-polling request (socket.io-client's default first
/// transport) gets 400 with Engine.IO's error body saying to set
/// `transports: ["websocket"]`. Draining, origin and the WebSocket
/// handshake are decided here, as on `/ws`; who the client is waits for
/// its CONNECT packet, with the upgrade's token and headers kept for it.
pub(super) fn socketio(ctx: &Arc<HttpContext>, mut request: Request<Incoming>) -> Response<Body> {
    if let Err(e) = engine::check_handshake(request.uri().query()) {
        ctx.metrics.upgrade_refused_for("unsupported_transport");
        let mut refusal = Response::new(full(e.body()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        refusal.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return refusal;
    }
    let accept_key = match upgrade_from_anyone(ctx, &request) {
        Ok(accept_key) => accept_key,
        Err(refusal) => return refuse(ctx, refusal),
    };
    let upgrade = SocketIoUpgrade { token: token_of(&request), headers: request.headers().clone() };
    let conn = ctx.registry.new_conn_id();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let protocol = Protocol::SocketIo(Some(Box::new(upgrade)));
    session::start(&ctx.sessions, on_upgrade, conn, Identity::default(), protocol);
    switching_protocols(&accept_key)
}

/// Everything about an upgrade but who the client is (draining, the
/// WebSocket handshake, the origin): the `Sec-WebSocket-Accept`, or why not.
fn upgrade_from_anyone<B>(ctx: &HttpContext, request: &Request<B>) -> Result<String, Refusal> {
    taking_upgrades(ctx)?;
    let accept_key = handshake_key(request.headers())?;
    check_origin(ctx, request)?;
    Ok(accept_key)
}

/// The app a Pusher connection is for, or the Pusher close code and
/// message that refuse it.
fn pusher_app<'a>(ctx: &'a HttpContext, key: &str, query: Option<&str>) -> Result<&'a Arc<App>, (u16, String)> {
    let protocol = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "protocol")
        .map(|(_, version)| version.into_owned());
    match protocol.as_deref() {
        None => return Err((codes::NO_PROTOCOL, "no protocol version given: connect with ?protocol=7".to_owned())),
        Some(PUSHER_PROTOCOL) => {}
        Some(other) => {
            return Err((
                codes::UNSUPPORTED_PROTOCOL,
                format!("unsupported protocol version {other:?}: this server speaks 7"),
            ));
        }
    }
    ctx.pusher_apps.by_key(key).ok_or_else(|| (codes::APP_NOT_FOUND, format!("no app with key {key:?}")))
}

/// The `101` that completes a WebSocket handshake.
fn switching_protocols(accept_key: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(accept_key).expect("base64 is a valid header value"));
    response
}

fn refuse(ctx: &HttpContext, (status, message): Refusal) -> Response<Body> {
    ctx.metrics.upgrade_refused(status);
    let mut refusal = text(status, &message);
    if status == StatusCode::UNAUTHORIZED {
        refusal.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    refusal
}

/// The `Sec-WebSocket-Accept` of a WebSocket upgrade request, or why it is
/// not one.
fn handshake_key(headers: &HeaderMap) -> Result<String, Refusal> {
    let refuse = |message: &str| Err((StatusCode::BAD_REQUEST, message.to_owned()));
    if !has_token(headers, &UPGRADE, "websocket") || !has_token(headers, &CONNECTION, "upgrade") {
        return refuse("expected a WebSocket upgrade request");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return refuse("only WebSocket version 13 is supported");
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(derive_accept_key(key.as_bytes())),
        None => refuse("missing Sec-WebSocket-Key"),
    }
}

/// Refuses upgrades once the drain has begun.
fn taking_upgrades(ctx: &HttpContext) -> Result<(), Refusal> {
    if ctx.drain.is_draining() {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "draining: connect to another server".to_owned()));
    }
    Ok(())
}

/// Decides whether an upgrade becomes a session, and who it is: a valid
/// token is used as it is; without one, the `$connect` route decides.
async fn admit(ctx: &HttpContext, conn: &ConnId, request: &Request<Incoming>) -> Result<Identity, Refusal> {
    check_origin(ctx, request)?;
    let identity = match token_of(request) {
        Some(token) => ctx.verifier.verify(&token).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?,
        None => connect::authenticate(&ctx.routers, &ctx.verifier, conn, request.headers()).await?,
    };
    // A drain may have begun while `$connect` was asked.
    taking_upgrades(ctx)?;
    Ok(identity)
}

/// Refuses browsers on origins that are not allowed.
fn check_origin<B>(ctx: &HttpContext, request: &Request<B>) -> Result<(), Refusal> {
    let origin = request.headers().get(ORIGIN).and_then(|origin| origin.to_str().ok());
    if !ctx.origins.allows(origin) {
        return Err((StatusCode::FORBIDDEN, "origin not allowed".to_owned()));
    }
    Ok(())
}

/// The token of an upgrade: `?token=` or `Authorization: Bearer`.
fn token_of<B>(request: &Request<B>) -> Option<String> {
    if let Some(token) = query_param(request, "token") {
        return Some(token);
    }
    let authorization = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// The positions a reconnecting client resumes from (`?resume=`), or why
/// they cannot be read.
fn resume_of<B>(request: &Request<B>) -> Result<Option<Resume>, Refusal> {
    match query_param(request, RESUME_PARAM) {
        Some(resume) => parse_resume(&resume).map(Some).map_err(|e| (StatusCode::BAD_REQUEST, e)),
        None => Ok(None),
    }
}

/// The first value of query parameter `wanted`, decoded as
/// `form_urlencoded` decodes a whole query. Only what is looked for is
/// decoded, and only if it is encoded: a query carries a token of a few
/// hundred bytes, and decoding every pair for each parameter read was a
/// tenth of an upgrade's instructions (BENCHMARKS.md, "Connect rate").
fn query_param<B>(request: &Request<B>, wanted: &str) -> Option<String> {
    let encoded = |text: &str| text.contains(['%', '+']);
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let matches = if encoded(name) {
            form_urlencoded::parse(name.as_bytes()).next().is_some_and(|(name, _)| name == wanted)
        } else {
            name == wanted
        };
        if !matches {
            None
        } else if encoded(value) {
            form_urlencoded::parse(pair.as_bytes()).next().map(|(_, value)| value.into_owned())
        } else {
            Some(value.to_owned())
        }
    })
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
    fn query_parameters_read_as_form_urlencoded_reads_them() {
        let queries = [
            "token=a.b.c&resume=x",
            "resume=r1&token=t&resume=r2",
            "to%6Ben=encoded-name&token=plain",
            "a+b=1&token=x+y%20z&&=&token",
            "token",
            "token=&resume",
            "x=1&tok=2&tokens=3",
            "token=%E2%82%AC%zz",
            "",
        ];
        for query in queries {
            let request = request(&format!("/ws?{query}"), None);
            for name in ["token", "resume", "a b", "x"] {
                let expected = form_urlencoded::parse(query.as_bytes())
                    .find(|(found, _)| found == name)
                    .map(|(_, value)| value.into_owned());
                assert_eq!(query_param(&request, name), expected, "{name} in {query:?}");
            }
        }
    }

    #[test]
    fn header_tokens_are_matched_in_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, &CONNECTION, "upgrade"));
        assert!(!has_token(&headers, &UPGRADE, "websocket"));
    }
}
