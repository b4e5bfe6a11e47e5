//! What the API handlers share, and nothing else.

use std::sync::Arc;

use herald_bus::Bus;
use herald_handler::Presence;
use herald_proto::subject::Subjects;

use crate::metrics::Metrics;
use crate::pusher::PusherApi;

#[derive(Debug)]
pub(crate) struct ApiState {
    /// Where every call's messages are published.
    pub bus: Bus,
    pub subjects: Subjects,
    /// The key backends present as `Authorization: Bearer <key>`.
    pub api_key: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Who is online, for the presence calls.
    pub presence: Presence,
    pub metrics: Arc<Metrics>,
    /// Pusher's HTTP API, served beside the backend API.
    pub pusher: Arc<PusherApi>,
}
