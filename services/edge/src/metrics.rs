//! What the edge counts, for `/metrics`.

use herald_metrics::gauge;
pub(crate) use herald_metrics::inc;

herald_metrics::counters! {
    /// The edge's counters; each says what it counts.
    pub(crate) struct Metrics("herald_edge") {
        connections_total: "WebSocket sessions opened.",
        upgrades_refused_total: "Upgrade requests refused (bad token, origin, request).",
        frames_received_total: "Frames received from clients.",
        frames_sent_total: "Frames written to clients.",
        bus_messages_total: "Messages received from the bus for delivery.",
        deliveries_dropped_total: "Frames not queued because a client's mailbox was full.",
        slow_consumers_total: "Sessions closed with 1013 for not reading.",
        rate_limited_total: "Client frames refused by the rate limit.",
        bad_frames_total: "Client frames answered with a 400 error.",
        actions_total: "Client actions sent to routers.",
        recoveries_total: "Resuming clients told recovered: true.",
        recoveries_failed_total: "Clients told recovered: false (resuming or not).",
        history_replayed_total: "Missed frames queued for resuming clients.",
        history_duplicates_total: "History messages dropped as already delivered.",
        history_gaps_total: "Gaps in a subject's sequence, filled from the history.",
        history_read_failures_total: "History reads that failed (stream missing, NATS down, timeout).",
    }
}

/// Point-in-time values rendered next to the counters.
pub(crate) struct Gauges {
    pub sessions: usize,
    pub subscriptions: usize,
    pub bus_connected: bool,
    pub draining: bool,
    /// Tokio tasks alive in the process: one per session and topic plus a
    /// few; growth under steady load is a leak (`just soak` watches it).
    pub tasks: usize,
}

impl Metrics {
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        self.render_counters(&mut out);
        gauge(&mut out, "herald_edge_sessions", "WebSocket sessions open now.", gauges.sessions as u64);
        let subscriptions = gauges.subscriptions as u64;
        gauge(&mut out, "herald_edge_subscriptions", "User and group subscriptions held on the bus.", subscriptions);
        gauge(&mut out, "herald_edge_bus_connected", "1 while connected to the bus.", u64::from(gauges.bus_connected));
        gauge(&mut out, "herald_edge_draining", "1 while draining.", u64::from(gauges.draining));
        gauge(&mut out, "herald_edge_tasks", "Tokio tasks alive in the process.", gauges.tasks as u64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let metrics = Metrics::default();
        inc(&metrics.frames_sent_total);
        let text =
            metrics.render(&Gauges { sessions: 3, subscriptions: 2, bus_connected: true, draining: false, tasks: 9 });
        assert!(text.contains("# TYPE herald_edge_frames_sent_total counter\nherald_edge_frames_sent_total 1\n"));
        assert!(text.contains("herald_edge_sessions 3\n"));
        assert!(text.contains("herald_edge_bus_connected 1\n"));
        assert!(text.contains("herald_edge_tasks 9\n"));
    }
}
