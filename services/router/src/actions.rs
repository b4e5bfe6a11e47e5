//! Handler requests from edges: every router is in one queue group, so each
//! request goes to one of them.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use herald_bus::responder::Responder;
use herald_bus::{Bus, QueueSubscription};
use herald_proto::status;

use crate::dispatch::{Dispatcher, error_answer};
use crate::metrics::Metrics;

/// Queue group of routers taking handler requests.
pub(crate) const ACTIONS_QUEUE: &str = "herald-router";

/// Serves handler requests, at most `limit` at once, until `stop`; then
/// leaves the queue group and finishes the requests it already has.
pub(crate) async fn serve(
    bus: &Bus,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    limit: usize,
    requests: QueueSubscription,
    stop: impl Future<Output = ()>,
) {
    let responder = Responder {
        span_name: "herald.router.dispatch",
        answer: move |request: Bytes| {
            let (dispatcher, metrics) = (dispatcher.clone(), metrics.clone());
            async move {
                metrics.requests.inc();
                dispatcher.dispatch(request).await
            }
        },
        limit,
        overloaded: error_answer(status::SERVICE_UNAVAILABLE, "the router is overloaded"),
    };
    responder.serve(bus, requests, stop).await;
}
