//! The router's NATS side: handler requests from edges (one queue group for
//! every router), and `$disconnect` notices from lifecycle events.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::Subscription;
use herald_bus::responder::Responder;
use herald_proto::client::action;
use herald_proto::event::LifecycleEvent;
use herald_proto::handler::HandlerRequest;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::dispatch::error_answer;
use crate::metrics::inc;
use crate::router::RouterShared;

/// Queue group of routers taking handler requests: each request goes to one.
pub(crate) const ACTIONS_QUEUE: &str = "herald-router";
/// Queue group of routers turning disconnect events into `$disconnect`.
pub(crate) const EVENTS_QUEUE: &str = "herald-router-events";

/// Serves handler requests until `stop`, then leaves the queue group and
/// finishes the requests it already has.
pub(crate) async fn serve_actions(ctx: Arc<RouterShared>, requests: Subscription, stop: impl Future<Output = ()>) {
    let dispatching = ctx.clone();
    let responder = Responder {
        answer: move |request: Bytes| {
            let ctx = dispatching.clone();
            async move {
                inc(&ctx.metrics.requests_total);
                ctx.dispatcher.dispatch(request).await
            }
        },
        limit: ctx.config.max_inflight,
        overloaded: error_answer(503, "the router is overloaded"),
    };
    responder.serve(&ctx.bus, requests, stop).await;
}

/// Tells the `$disconnect` handler, if there is one, about every connection
/// that ends, until `stop`; then waits for the notices already on their
/// way. Best effort: a notice the handler misses is not retried.
///
/// At most `limit` notices are on their way at once (the router's
/// `max_inflight`, as for handler requests). An ending connection beyond
/// that gets no notice: it is dropped and counted
/// (`herald_router_disconnect_notices_dropped_total`), as a disconnect event
/// published while NATS is away is lost; a burst of disconnects (an edge
/// draining its sessions) never piles up tasks without bound.
pub(crate) async fn notify_disconnects(
    ctx: Arc<RouterShared>,
    mut events: Subscription,
    limit: usize,
    stop: impl Future<Output = ()>,
) {
    let notices = TaskTracker::new();
    let permits = Arc::new(Semaphore::new(limit));
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            message = events.next() => message,
            () = &mut stop => None,
        };
        let Some(message) = message else { break };
        let routes = ctx.dispatcher.routes();
        let Some(route) = routes.disconnect.clone() else { continue };
        let event: LifecycleEvent = match herald_proto::json::from_object(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(error = %e, "ignored a malformed disconnect event");
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            inc(&ctx.metrics.disconnect_notices_dropped_total);
            tracing::debug!(conn = event.conn, "too many $disconnect notices on their way; dropped one");
            continue;
        };
        inc(&ctx.metrics.disconnect_notices_total);
        let ctx = ctx.clone();
        notices.spawn(async move {
            let request = disconnect_request(event);
            let payload = Bytes::from(serde_json::to_vec(&request).expect("a handler request always serialises"));
            ctx.dispatcher.call(&route, payload, None).await;
            drop(permit);
        });
    }
    drop(events);
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
