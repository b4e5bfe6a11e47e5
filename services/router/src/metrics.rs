//! What the router counts, for `/metrics`.

pub(crate) use herald_metrics::inc;

herald_metrics::counters! {
    /// The router's counters; each says what it counts.
    pub(crate) struct Metrics("herald_router") {
        requests_total: "Handler requests received from edges.",
        disconnect_notices_total: "$disconnect notices sent to handlers.",
        disconnect_notices_dropped_total: "$disconnect notices not sent: as many as the router works on at once were on their way.",
        api_requests_total: "Backend HTTP API requests.",
        route_reloads_total: "Successful routes-file reloads.",
        route_reload_failures_total: "Refused routes-file reloads (the old table was kept).",
    }
}
