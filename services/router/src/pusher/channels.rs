//! `GET /apps/<id>/channels`, `GET channels/<c>` and
//! `GET channels/<c>/users`: what the edges hold, asked of every live edge
//! and merged ([`super::queries`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use herald_proto::pusher::channel::ChannelKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::PusherApi;
use super::error::PusherError;
use super::info::Info;
use super::signed::Signed;

/// What channel queries take besides the signature.
#[derive(Debug, Deserialize)]
pub(crate) struct ChannelsParams {
    #[serde(default)]
    info: Option<String>,
    #[serde(default)]
    filter_by_prefix: Option<String>,
}

fn presence_only(what: &str) -> PusherError {
    PusherError::bad_request(format!("{what} may only be requested for presence channels"))
}

/// A channel named in a path, which must be a channel name (not the user
/// channel: users are asked through Herald's presence API).
fn channel_kind(name: &str) -> Result<ChannelKind, PusherError> {
    match ChannelKind::of(name) {
        Ok(ChannelKind::User) | Err(_) => Err(PusherError::bad_request(format!("Invalid channel {name:?}"))),
        Ok(kind) => Ok(kind),
    }
}

/// `{"channels": {C: attributes}}`: the app's occupied channels, those
/// starting with `filter_by_prefix` when given. `user_count` only with a
/// filter that keeps presence channels alone, as Pusher has it.
pub(crate) async fn channels(
    State(api): State<Arc<PusherApi>>,
    Query(params): Query<ChannelsParams>,
    Signed { app, .. }: Signed,
) -> Result<Json<Value>, PusherError> {
    let info = Info::parse(params.info.as_deref())?;
    let filter = params.filter_by_prefix.unwrap_or_default();
    if info.user_count && !filter.starts_with("presence-") {
        return Err(presence_only("user_count (add filter_by_prefix=presence-)"));
    }
    let totals = api.queries.channels(app.group(&filter)).await.map_err(PusherError::unavailable)?;
    let channels: Map<String, Value> = totals
        .iter()
        .filter_map(|(group, totals)| {
            let name = app.channel(group)?;
            let kind = ChannelKind::of(name).ok()?;
            Some((name.to_owned(), Value::Object(info.of(kind, totals))))
        })
        .collect();
    Ok(Json(json!({ "channels": channels })))
}

/// `{"occupied": bool, ...attributes}` for one channel.
pub(crate) async fn channel(
    State(api): State<Arc<PusherApi>>,
    Path((_, name)): Path<(String, String)>,
    Query(params): Query<ChannelsParams>,
    Signed { app, .. }: Signed,
) -> Result<Json<Value>, PusherError> {
    let kind = channel_kind(&name)?;
    let info = Info::parse(params.info.as_deref())?;
    if info.user_count && kind != ChannelKind::Presence {
        return Err(presence_only("user_count"));
    }
    let totals = api.queries.channel(app.group(&name)).await.map_err(PusherError::unavailable)?;
    let mut answer = Map::new();
    answer.insert("occupied".into(), json!(totals.subscriptions > 0));
    answer.extend(info.of(kind, &totals));
    Ok(Json(Value::Object(answer)))
}

/// `{"users": [{"id": U}, ...]}`: a presence channel's members, each once.
pub(crate) async fn users(
    State(api): State<Arc<PusherApi>>,
    Path((_, name)): Path<(String, String)>,
    Signed { app, .. }: Signed,
) -> Result<Json<Value>, PusherError> {
    if channel_kind(&name)? != ChannelKind::Presence {
        return Err(presence_only("Users"));
    }
    let members = api.queries.members(app.group(&name)).await.map_err(PusherError::unavailable)?;
    let users: Vec<Value> = members.iter().map(|member| json!({ "id": member.user_id })).collect();
    Ok(Json(json!({ "users": users })))
}
