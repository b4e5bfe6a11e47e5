//! What the router measures, for `/metrics`.

use std::time::Duration;

use herald_bus::Bus;
use herald_metrics::{Outcome, latency_histogram, seconds};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::pusher::PusherMetrics;

/// The route label of an action no route takes: client input never
/// becomes a label value.
pub(crate) const NO_ROUTE: &str = "none";

/// A route and how its action ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteOutcome {
    /// The route's `action`, from the routes file: as many values as
    /// routes.
    route: String,
    outcome: Outcome,
}

/// A route and how its handler is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteTransport {
    route: String,
    /// `nats` or `http`.
    transport: &'static str,
}

/// The router's metrics; each field says what it measures.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Everything below, for rendering.
    registry: Registry,
    /// Handler requests received from edges.
    pub requests: Counter,
    /// Handler requests from the router receiving them to its answer, by
    /// route and outcome.
    actions: Family<RouteOutcome, Histogram>,
    /// Handler calls (NATS request or HTTP POST), by route and transport.
    handlers: Family<RouteTransport, Histogram>,
    /// `$disconnect` notices sent to handlers.
    pub disconnect_notices: Counter,
    /// `$disconnect` notices not sent: as many as the router works on at
    /// once were on their way.
    pub disconnect_notices_dropped: Counter,
    /// Backend HTTP API requests.
    pub api_requests: Counter,
    /// Presence queries of the API, from the call to the gathered answer.
    pub presence_queries: Histogram,
    /// Successful routes-file reloads.
    pub route_reloads: Counter,
    /// Refused routes-file reloads (the old table was kept).
    pub route_reload_failures: Counter,
    /// Point-in-time values, set when `/metrics` is read.
    pub live_edges: Gauge,
    pub bus_connected: Gauge,
    /// Tokio tasks alive in the process; growth under steady load is a
    /// leak (`just soak` watches it).
    pub tasks: Gauge,
}

impl Metrics {
    /// The router's metrics, with the bus's reconnections and the Pusher
    /// API's metrics among them.
    pub fn new(bus: &Bus, pusher: &PusherMetrics) -> Metrics {
        let mut registry = Registry::with_prefix("herald_router");
        let metrics = Metrics {
            requests: Counter::default(),
            actions: Family::new_with_constructor(latency_histogram),
            handlers: Family::new_with_constructor(latency_histogram),
            disconnect_notices: Counter::default(),
            disconnect_notices_dropped: Counter::default(),
            api_requests: Counter::default(),
            presence_queries: latency_histogram(),
            route_reloads: Counter::default(),
            route_reload_failures: Counter::default(),
            live_edges: Gauge::default(),
            bus_connected: Gauge::default(),
            tasks: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("requests", "Handler requests received from edges", metrics.requests.clone());
        let help = "Handler requests from their arrival to the answer, by route and outcome";
        r.register_with_unit("action_duration", help, Unit::Seconds, metrics.actions.clone());
        let help = "Handler calls (NATS request or HTTP POST), by route and transport";
        r.register_with_unit("handler_duration", help, Unit::Seconds, metrics.handlers.clone());
        let help = "$disconnect notices sent to handlers";
        r.register("disconnect_notices", help, metrics.disconnect_notices.clone());
        let help = "$disconnect notices not sent: as many as the router works on at once were on their way";
        r.register("disconnect_notices_dropped", help, metrics.disconnect_notices_dropped.clone());
        r.register("api_requests", "Backend HTTP API requests", metrics.api_requests.clone());
        let help = "Presence queries of the backend API, from the call to the gathered answer";
        r.register_with_unit("presence_query_duration", help, Unit::Seconds, metrics.presence_queries.clone());
        r.register("route_reloads", "Successful routes-file reloads", metrics.route_reloads.clone());
        let help = "Refused routes-file reloads (the old table was kept)";
        r.register("route_reload_failures", help, metrics.route_reload_failures.clone());
        r.register("live_edges", "Edges heard from recently", metrics.live_edges.clone());
        herald_metrics::register_process(r, &metrics.tasks, &metrics.bus_connected, bus.reconnects());
        pusher.register(r);
        Metrics { registry, ..metrics }
    }

    /// Records a handler request for `route` answered after `elapsed`, with
    /// error `code` if any.
    pub fn action_answered(&self, route: &str, elapsed: Duration, code: Option<u16>) {
        let label = RouteOutcome { route: route.to_owned(), outcome: Outcome::of(code) };
        self.actions.get_or_create(&label).observe(seconds(elapsed));
    }

    /// Records a call to `route`'s handler over `transport` that took
    /// `elapsed`, whatever came of it.
    pub fn handler_called(&self, route: &str, transport: &'static str, elapsed: Duration) {
        let label = RouteTransport { route: route.to_owned(), transport };
        self.handlers.get_or_create(&label).observe(seconds(elapsed));
    }

    /// Renders every metric, as `/metrics` serves them.
    pub fn render(&self) -> String {
        herald_metrics::render(&self.registry)
    }
}
