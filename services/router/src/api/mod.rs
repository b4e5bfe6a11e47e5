//! The backend HTTP API: how a backend that cannot speak NATS (a PHP script,
//! say) publishes to clients, moves them between groups, disconnects them,
//! and asks who is online.
//!
//! Every call turns into the same NATS messages a backend on NATS would
//! send, so the two ways in behave the same.

mod error;
mod extract;
mod state;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use bytes::Bytes;
use herald_proto::client::{self, MAX_ACTION_CHARS};
use herald_proto::close;
use herald_proto::conn_id::ConnId;
use herald_proto::control::ControlOp;
use herald_proto::handler::Target;
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::subject::EXCLUDE_CONN_HEADER;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use self::error::ApiError;
use self::extract::{ApiJson, require_api_key};
pub(crate) use self::state::ApiState;

/// The router's HTTP app: the API behind the key, health and metrics open.
pub(crate) fn app(state: Arc<ApiState>) -> Router {
    let api = Router::new()
        .route("/api/publish", post(publish))
        .route("/api/groups/join", post(groups_join))
        .route("/api/groups/leave", post(groups_leave))
        .route("/api/disconnect", post(disconnect))
        .route("/api/presence/users/{user}", get(presence_user))
        .route("/api/presence/groups/{group}", get(presence_group))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    Router::new()
        .merge(api)
        .merge(crate::pusher::routes(state.pusher.clone(), state.max_body_bytes))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed for this endpoint")
        })
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    to: Target,
    action: String,
    #[serde(default)]
    details: Value,
    exclude_conn: Option<String>,
}

async fn publish(
    State(state): State<Arc<ApiState>>,
    headers: http::HeaderMap,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    state.metrics.api_requests.inc();
    let chars = body.action.chars().count();
    if chars == 0 || chars > MAX_ACTION_CHARS {
        return Err(ApiError::bad_request(format!("\"action\" must be 1 to {MAX_ACTION_CHARS} characters")));
    }
    let subjects = state.subjects.for_target(&body.to).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if subjects.is_empty() {
        return Err(ApiError::bad_request("\"to\" names nobody: give users, groups, conns or all"));
    }
    let exclude = body.exclude_conn.map(|conn| parse_conn(&conn).map(|conn| conn.to_string())).transpose()?;
    let frame = Bytes::from(client::encode(&body.action, &body.details, None));
    let span =
        tracing::info_span!(target: herald_bus::trace::TARGET, "herald.router.api.publish", action = body.action);
    // A handler publishing while it answers an action continues its trace.
    herald_bus::trace::continue_trace_from(&span, |name| headers.get(name)?.to_str().ok());
    let stamp = published_at::stamp_now();
    let mut publish_headers = vec![(PUBLISHED_AT_HEADER, stamp.as_str())];
    publish_headers.extend(exclude.as_deref().map(|conn| (EXCLUDE_CONN_HEADER, conn)));
    let published = async {
        for subject in &subjects {
            let sent = state.bus.publish_with_headers(subject.clone(), &publish_headers, frame.clone()).await;
            sent.map_err(|e| ApiError::unavailable(e.to_string()))?;
        }
        Ok(Json(json!({ "subjects": subjects.len() })))
    };
    published.instrument(span).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsBody {
    group: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    conns: Vec<String>,
}

async fn groups_join(
    State(state): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<GroupsBody>,
) -> Result<Json<Value>, ApiError> {
    let op = ControlOp::Join { group: body.group };
    send_control(&state, &body.users, &body.conns, &op).await
}

async fn groups_leave(
    State(state): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<GroupsBody>,
) -> Result<Json<Value>, ApiError> {
    let op = ControlOp::Leave { group: body.group };
    send_control(&state, &body.users, &body.conns, &op).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    conns: Vec<String>,
    code: Option<u16>,
    #[serde(default)]
    reason: String,
}

async fn disconnect(
    State(state): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<DisconnectBody>,
) -> Result<Json<Value>, ApiError> {
    let code = body.code.unwrap_or(close::BACKEND_DISCONNECT);
    // Codes an application may send in a close frame (RFC 6455 7.4).
    if code != close::NORMAL && !(3000..=4999).contains(&code) {
        return Err(ApiError::bad_request("\"code\" must be 1000 or between 3000 and 4999"));
    }
    if body.reason.len() > 123 {
        return Err(ApiError::bad_request("\"reason\" must be at most 123 bytes"));
    }
    let op = ControlOp::Disconnect { code, reason: body.reason };
    send_control(&state, &body.users, &body.conns, &op).await
}

/// Publishes a control operation to every user and connection named.
async fn send_control(
    state: &ApiState,
    users: &[String],
    conns: &[String],
    op: &ControlOp,
) -> Result<Json<Value>, ApiError> {
    state.metrics.api_requests.inc();
    if users.is_empty() && conns.is_empty() {
        return Err(ApiError::bad_request("name at least one of \"users\" or \"conns\""));
    }
    let subjects = &state.subjects;
    let mut targets: Vec<String> = users.iter().map(|user| subjects.ctl_user(user)).collect();
    for conn in conns {
        targets.push(subjects.ctl_conn(&parse_conn(conn)?));
    }
    let payload = Bytes::from(serde_json::to_vec(op).expect("a control op always serialises"));
    for subject in &targets {
        state.bus.publish(subject.clone(), payload.clone()).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    }
    Ok(Json(json!({ "subjects": targets.len() })))
}

async fn presence_user(State(state): State<Arc<ApiState>>, Path(user): Path<String>) -> Result<Json<Value>, ApiError> {
    state.metrics.api_requests.inc();
    let started = Instant::now();
    let presence = state.presence.user(&user).await;
    state.metrics.presence_queries.observe(herald_metrics::seconds(started.elapsed()));
    let presence = presence.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(json!({ "online": presence.online, "conns": presence.conns })))
}

async fn presence_group(
    State(state): State<Arc<ApiState>>,
    Path(group): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.metrics.api_requests.inc();
    let started = Instant::now();
    let presence = state.presence.group(&group).await;
    state.metrics.presence_queries.observe(herald_metrics::seconds(started.elapsed()));
    let presence = presence.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(json!({ "conns": presence.conns, "users": presence.users })))
}

fn parse_conn(conn: &str) -> Result<ConnId, ApiError> {
    conn.parse().map_err(|e: herald_proto::conn_id::BadConnId| ApiError::bad_request(e.to_string()))
}

async fn readiness(State(state): State<Arc<ApiState>>) -> (StatusCode, &'static str) {
    if state.bus.is_connected() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: NATS is unreachable\n")
    }
}

async fn metrics(State(state): State<Arc<ApiState>>) -> ([(http::HeaderName, &'static str); 1], String) {
    let metrics = &state.metrics;
    metrics.live_edges.set(i64::try_from(state.presence.live_edges()).unwrap_or(i64::MAX));
    metrics.bus_connected.set(i64::from(state.bus.is_connected()));
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    metrics.tasks.set(i64::try_from(tasks).unwrap_or(i64::MAX));
    ([(http::header::CONTENT_TYPE, herald_metrics::CONTENT_TYPE)], metrics.render())
}
