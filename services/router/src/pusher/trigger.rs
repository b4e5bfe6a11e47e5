//! `POST /apps/<id>/events` and `POST /apps/<id>/batch_events`: events for
//! channels, published as Herald frames (`herald_from_event`) to each
//! channel's group, `herald.group.<prefix + C>`, where NATS publishes,
//! `/api/publish`, Herald clients and Pusher clients all meet. The user
//! channel `#server-to-user-<U>` (the npm `pusher`'s `sendToUser`) is the
//! Herald user `U`: `herald.user.<U>`. `socket_id` leaves out that one
//! connection (`Herald-Exclude-Conn`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use futures_util::future::try_join_all;
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::pusher::app::App;
use herald_proto::pusher::channel::{self, ChannelKind, USER_CHANNEL_PREFIX};
use herald_proto::pusher::frame::herald_from_event;
use herald_proto::pusher::socket_id::SocketId;
use herald_proto::subject::EXCLUDE_CONN_HEADER;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::PusherApi;
use super::error::PusherError;
use super::info::Info;
use super::signed::Signed;

/// Most channels one event may go to, as Pusher allows.
pub(crate) const MAX_CHANNELS: usize = 100;
/// Most events one batch may hold, as Pusher allows.
pub(crate) const MAX_BATCH: usize = 10;

/// An event as a trigger's body (or a batch's entry) gives it.
#[derive(Debug, Deserialize)]
struct EventBody {
    name: String,
    /// Pusher's data is a string (JSON text, usually); SDKs encode it so.
    data: String,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    batch: Vec<EventBody>,
}

/// An event checked and ready to publish.
#[derive(Debug)]
struct Trigger {
    /// The Herald frame, made once for every channel.
    frame: Bytes,
    channels: Vec<String>,
    /// The connection left out, as `Herald-Exclude-Conn` names it.
    exclude: Option<String>,
    info: Info,
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, PusherError> {
    serde_json::from_slice(body).map_err(|e| PusherError::bad_request(format!("The received data is incorrect: {e}")))
}

impl EventBody {
    /// Checks everything Pusher checks, before anything is published.
    fn check(self, app: &App) -> Result<Trigger, PusherError> {
        let channels = match (self.channels, self.channel) {
            (Some(channels), None) => channels,
            (None, Some(channel)) => vec![channel],
            (Some(_), Some(_)) => return Err(PusherError::bad_request("Give either channels or channel, not both")),
            (None, None) => {
                return Err(PusherError::bad_request("Missing channels: give channels (a list) or channel"));
            }
        };
        if channels.is_empty() || channels.len() > MAX_CHANNELS {
            return Err(PusherError::bad_request(format!(
                "An event goes to 1 to {MAX_CHANNELS} channels; this one names {}",
                channels.len()
            )));
        }
        for name in &channels {
            check_channel(name)?;
        }
        channel::check_event_name(&self.name)
            .map_err(|e| PusherError::bad_request(format!("Invalid event name: {e}")))?;
        if self.data.len() > app.max_event_data_bytes {
            return Err(PusherError::too_large(format!(
                "Payload Too Large: the event data is {} bytes; the limit is {}",
                self.data.len(),
                app.max_event_data_bytes
            )));
        }
        let exclude = self
            .socket_id
            .map(|socket| {
                socket
                    .parse::<SocketId>()
                    .map(|socket| socket.conn().to_string())
                    .map_err(|e| PusherError::bad_request(format!("Invalid socket_id: {e}")))
            })
            .transpose()?;
        let info = Info::parse(self.info.as_deref())?;
        Ok(Trigger { frame: Bytes::from(herald_from_event(&self.name, &self.data)), channels, exclude, info })
    }
}

/// A channel name Pusher takes, and a user channel that names a user.
fn check_channel(name: &str) -> Result<ChannelKind, PusherError> {
    let kind = ChannelKind::of(name).map_err(|e| PusherError::bad_request(format!("Invalid channel {name:?}: {e}")))?;
    if kind == ChannelKind::User && name.len() == USER_CHANNEL_PREFIX.len() {
        return Err(PusherError::bad_request(format!("Invalid channel {name:?}: it names no user")));
    }
    Ok(kind)
}

impl PusherApi {
    /// Publishes `trigger` to each of its channels.
    async fn publish(&self, app: &App, trigger: &Trigger) -> Result<(), PusherError> {
        let stamp = published_at::stamp_now();
        let mut headers = vec![(PUBLISHED_AT_HEADER, stamp.as_str())];
        headers.extend(trigger.exclude.as_deref().map(|conn| (EXCLUDE_CONN_HEADER, conn)));
        for name in &trigger.channels {
            let subject = match name.strip_prefix(USER_CHANNEL_PREFIX) {
                Some(user) => self.subjects.user(user),
                None => self.subjects.group(&app.group(name)),
            };
            let sent = self.bus.publish_with_headers(subject, &headers, trigger.frame.clone()).await;
            sent.map_err(PusherError::unavailable)?;
            self.metrics.events_published.inc();
        }
        Ok(())
    }

    /// The attributes `info` asks for of one channel (none for a user
    /// channel, which is a Herald user, not a group).
    async fn info_of(&self, app: &App, name: &str, info: Info) -> Result<Map<String, Value>, PusherError> {
        let kind = ChannelKind::of(name).map_err(|e| PusherError::bad_request(e.to_string()))?;
        if kind == ChannelKind::User {
            return Ok(Map::new());
        }
        let totals = self.queries.channel(app.group(name)).await.map_err(PusherError::unavailable)?;
        Ok(info.of(kind, &totals))
    }
}

/// `POST events`: `{}`, or with `info`, `{"channels": {C: attributes}}`.
pub(crate) async fn events(
    State(api): State<Arc<PusherApi>>,
    Signed { app, body }: Signed,
) -> Result<Json<Value>, PusherError> {
    let trigger = read::<EventBody>(&body)?.check(&app)?;
    api.publish(&app, &trigger).await?;
    if !trigger.info.any() {
        return Ok(Json(json!({})));
    }
    let infos = try_join_all(trigger.channels.iter().map(|name| api.info_of(&app, name, trigger.info))).await?;
    let channels: Map<String, Value> =
        trigger.channels.iter().cloned().zip(infos.into_iter().map(Value::Object)).collect();
    Ok(Json(json!({ "channels": channels })))
}

/// `POST batch_events`: every event is checked before any is published;
/// `{}`, or when an event asks for `info`, `{"batch": [attributes, ...]}`
/// in the batch's order (`{}` for events that asked nothing).
pub(crate) async fn batch_events(
    State(api): State<Arc<PusherApi>>,
    Signed { app, body }: Signed,
) -> Result<Json<Value>, PusherError> {
    let batch = read::<BatchBody>(&body)?.batch;
    if batch.len() > MAX_BATCH {
        return Err(PusherError::bad_request(format!(
            "Batch too large: {} events; at most {MAX_BATCH} may be sent at once",
            batch.len()
        )));
    }
    let mut triggers = Vec::with_capacity(batch.len());
    for event in batch {
        if event.channels.is_some() {
            return Err(PusherError::bad_request("A batch event names one channel, as channel"));
        }
        triggers.push(event.check(&app)?);
    }
    for trigger in &triggers {
        api.publish(&app, trigger).await?;
    }
    if !triggers.iter().any(|trigger| trigger.info.any()) {
        return Ok(Json(json!({})));
    }
    let infos = try_join_all(triggers.iter().map(|trigger| async {
        if trigger.info.any() { api.info_of(&app, &trigger.channels[0], trigger.info).await } else { Ok(Map::new()) }
    }))
    .await?;
    Ok(Json(json!({ "batch": infos })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value) -> Result<Trigger, String> {
        let app = App { max_event_data_bytes: 16, ..App::new("1", "k", "s") };
        serde_json::from_value::<EventBody>(body).map_err(|e| e.to_string())?.check(&app).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn an_event_becomes_one_herald_frame_for_every_channel() {
        let trigger = check(json!({"name": "e", "data": "{\"a\":1}", "channels": ["a", "private-b"]})).unwrap();
        assert_eq!(&trigger.frame[..], br#"{"action":"e","details":{"a":1}}"#);
        assert_eq!(trigger.channels, ["a", "private-b"]);
        assert_eq!((trigger.exclude, trigger.info), (None, Info::default()));
        let one =
            check(json!({"name": "e", "data": "hi", "channel": "c", "socket_id": "71776119061217290.42"})).unwrap();
        assert_eq!(one.channels, ["c"]);
        assert_eq!(one.exclude.as_deref(), Some("00ff00000000000a.42"));
    }

    #[test]
    fn refuses_what_pusher_refuses() {
        let too_many: Vec<String> = (0..=MAX_CHANNELS).map(|i| format!("c{i}")).collect();
        for (body, expected) in [
            (json!({"name": "e", "data": "x"}), "Missing channels"),
            (json!({"name": "e", "data": "x", "channels": []}), "1 to 100 channels"),
            (json!({"name": "e", "data": "x", "channels": too_many}), "this one names 101"),
            (json!({"name": "e", "data": "x", "channel": "a b"}), "Invalid channel"),
            (json!({"name": "e", "data": "x", "channel": "#server-to-user-"}), "names no user"),
            (json!({"name": "", "data": "x", "channel": "c"}), "Invalid event name"),
            (json!({"name": "e", "data": "x".repeat(17), "channel": "c"}), "413"),
            (json!({"name": "e", "data": "x", "channel": "c", "socket_id": "1.01"}), "Invalid socket_id"),
            (json!({"name": "e", "data": "x", "channel": "c", "info": "x"}), "Unknown info attribute"),
            (json!({"name": "e", "data": {"not": "a string"}, "channel": "c"}), "expected a string"),
        ] {
            let error = check(body.clone()).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }
}
