//! Pusher's HTTP API under `/apps/<app_id>/`, and Pusher webhooks, so that
//! Pusher's server SDKs (pusher-http-php and Laravel, the npm `pusher`, the
//! PyPI `pusher`) work against Herald unchanged.
//!
//! - `signed`: which app a call is for, its body, its signature.
//! - `trigger`: `POST events` and `POST batch_events`, published to the
//!   channels' Herald groups.
//! - `channels`: `GET channels`, `channels/<c>`, `channels/<c>/users`,
//!   answered from `queries`: every live edge is asked, and the answers
//!   merged.
//! - `users`: `POST users/<U>/terminate_connections`.
//! - `info`: the `info` attributes calls may ask for.
//! - [`webhooks`]: batches, signs and sends the webhook events edges decide.
//! - `error`: refusals, answered as Pusher answers them.
//! - `metrics`: what they count, served with the router's metrics.
//!
//! Every call answers 200 with a JSON object on success; an unknown app
//! (or no app at all) 404. Routes are registered whatever the apps, so the
//! answer to a call for an app that is not there is Pusher's, not the
//! backend API's.

mod channels;
mod error;
mod info;
pub(crate) mod metrics;
mod queries;
mod signed;
mod trigger;
mod users;
pub(crate) mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use herald_bus::Bus;
use herald_handler::edges::Edges;
use herald_proto::pusher::app::Apps;
use herald_proto::subject::Subjects;

pub(crate) use self::metrics::PusherMetrics;
use self::queries::ChannelQueries;

/// What the Pusher API's calls share.
#[derive(Debug)]
pub(crate) struct PusherApi {
    /// The apps served; none: every call answers 404.
    apps: Apps,
    /// Where triggers and `terminate_connections` are published.
    bus: Bus,
    subjects: Subjects,
    /// Asks the edges about channels.
    queries: ChannelQueries,
    /// Shared with the webhook sender.
    metrics: Arc<PusherMetrics>,
}

impl PusherApi {
    /// The API for `apps`, asking `edges` (the router's own follower of the
    /// edges' heartbeats, shared with Herald presence) about channels.
    pub fn new(apps: Apps, bus: Bus, subjects: Subjects, edges: Edges) -> PusherApi {
        let queries = ChannelQueries::new(edges, &subjects);
        PusherApi { apps, bus, subjects, queries, metrics: Arc::default() }
    }

    pub fn apps(&self) -> &Apps {
        &self.apps
    }

    pub fn metrics(&self) -> &Arc<PusherMetrics> {
        &self.metrics
    }
}

/// The Pusher API's routes, to merge into an app of any state; bodies are
/// bounded by `max_body_bytes` (the backend API's bound), beyond which a
/// call gets 413.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(api: Arc<PusherApi>, max_body_bytes: usize) -> Router<S> {
    Router::new()
        .route("/apps/{app_id}/events", post(trigger::events))
        .route("/apps/{app_id}/batch_events", post(trigger::batch_events))
        .route("/apps/{app_id}/channels", get(channels::channels))
        .route("/apps/{app_id}/channels/{channel}", get(channels::channel))
        .route("/apps/{app_id}/channels/{channel}/users", get(channels::users))
        .route("/apps/{app_id}/users/{user_id}/terminate_connections", post(users::terminate_connections))
        // The PyPI `pusher` 3.3 posts here, without `/apps/<id>`.
        .route("/users/{user_id}/terminate_connections", post(users::terminate_connections))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}
