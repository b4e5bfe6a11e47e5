//! `$disconnect` notices: every router is in one queue group for disconnect
//! events, so each ending connection is told to the `$disconnect` route's
//! handler by one router.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::QueueSubscription;
use herald_proto::client::action;
use herald_proto::event::LifecycleEvent;
use herald_proto::handler::HandlerRequest;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;

/// Queue group of routers turning disconnect events into `$disconnect`.
pub(crate) const EVENTS_QUEUE: &str = "herald-router-events";

/// Tells the `$disconnect` handler, if there is one, about every connection
/// that ends, until `stop`; then leaves the queue group, tells it about the
/// events already on their way here, and waits for the notices. Best
/// effort: a notice the handler misses is not retried.
///
/// At most `limit` notices are on their way at once (the router's
/// `max_inflight`, as for handler requests). An ending connection beyond
/// that gets no notice: it is dropped and counted
/// (`herald_router_disconnect_notices_dropped_total`), as a disconnect event
/// published while NATS is away is lost; a burst of disconnects (an edge
/// draining its sessions) never piles up tasks without bound.
pub(crate) async fn notify(
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    limit: usize,
    events: QueueSubscription,
    stop: impl Future<Output = ()>,
) {
    let notices = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(limit));
    let events = events.until_drained(stop);
    tokio::pin!(events);
    while let Some(message) = events.next().await {
        let routes = dispatcher.routes();
        let Some(route) = routes.disconnect.clone() else { continue };
        let event: LifecycleEvent = match herald_proto::json::from_object(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "ignored a malformed disconnect event");
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.disconnect_notices_dropped.inc();
            tracing::debug!(conn = event.conn, "too many $disconnect notices on their way; dropped one");
            continue;
        };
        metrics.disconnect_notices.inc();
        let dispatcher = dispatcher.clone();
        notices.spawn(async move {
            let request = disconnect_request(event);
            let payload = Bytes::from(serde_json::to_vec(&request).expect("a handler request always serialises"));
            dispatcher.call(&route, payload, None).await;
            drop(permit);
        });
    }
    notices.close();
    notices.wait().await;
}

fn disconnect_request(event: LifecycleEvent) -> HandlerRequest {
    let details = serde_json::to_string(&event.close).expect("close info always serialises");
    HandlerRequest {
        action: action::DISCONNECT.to_owned(),
        details: RawValue::from_string(details).expect("serde_json writes JSON"),
        id: None,
        conn: event.conn,
        user: event.user,
        groups: event.groups,
        claims: event.claims,
        headers: None,
        cookies: None,
        timeout_ms: None,
    }
}
