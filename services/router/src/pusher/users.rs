//! `POST /apps/<id>/users/<U>/terminate_connections`: every connection of
//! the signed-in user `U`, on every edge, is closed: a `disconnect` control
//! operation to `herald.ctl.user.<U>`, as `/api/disconnect` sends. A Pusher
//! client is closed with 4009 (`codes::for_close`), so it does not come
//! straight back.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use herald_proto::close;
use herald_proto::control::ControlOp;
use serde_json::{Value, json};

use super::PusherApi;
use super::error::PusherError;
use super::signed::Signed;

/// The close reason the user's connections get.
const REASON: &str = "connections terminated by the app";

pub(crate) async fn terminate_connections(
    State(api): State<Arc<PusherApi>>,
    Path(params): Path<Vec<(String, String)>>,
    _signed: Signed,
) -> Result<Json<Value>, PusherError> {
    let user = params
        .into_iter()
        .find_map(|(name, value)| (name == "user_id").then_some(value))
        .filter(|user| !user.is_empty())
        .ok_or_else(|| PusherError::bad_request("Missing user id"))?;
    let op = ControlOp::Disconnect { code: close::BACKEND_DISCONNECT, reason: REASON.to_owned() };
    let payload = Bytes::from(serde_json::to_vec(&op).expect("a control op always serialises"));
    api.bus.publish(api.subjects.ctl_user(&user), payload).await.map_err(PusherError::unavailable)?;
    Ok(Json(json!({})))
}
