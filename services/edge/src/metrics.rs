//! Counters the edge exposes on `/metrics` in the Prometheus text format.
//!
//! Plain atomics: incrementing one is a single uncontended instruction on
//! the hot path, and rendering reads them all without locks.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $help:literal,)*) => {
        /// The edge's counters; each says what it counts.
        #[derive(Debug, Default)]
        pub(crate) struct Metrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
        }

        impl Metrics {
            fn render_counters(&self, out: &mut String) {
                $(
                    let _ = writeln!(out, "# HELP herald_edge_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE herald_edge_{} counter", stringify!($name));
                    let _ = writeln!(out, "herald_edge_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
            }
        }
    };
}

counters! {
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
}

/// Point-in-time values rendered next to the counters.
pub(crate) struct Gauges {
    pub sessions: usize,
    pub subscriptions: usize,
    pub bus_connected: bool,
    pub draining: bool,
}

/// Increments a counter by one.
pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        self.render_counters(&mut out);
        let gauge = |out: &mut String, name: &str, help: &str, value: usize| {
            let _ = writeln!(out, "# HELP herald_edge_{name} {help}");
            let _ = writeln!(out, "# TYPE herald_edge_{name} gauge");
            let _ = writeln!(out, "herald_edge_{name} {value}");
        };
        gauge(&mut out, "sessions", "WebSocket sessions open now.", gauges.sessions);
        gauge(&mut out, "subscriptions", "User and group subscriptions held on the bus.", gauges.subscriptions);
        gauge(&mut out, "bus_connected", "1 while connected to the bus.", usize::from(gauges.bus_connected));
        gauge(&mut out, "draining", "1 while draining.", usize::from(gauges.draining));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        inc(&metrics.frames_sent_total);
        let text = metrics.render(&Gauges { sessions: 3, subscriptions: 2, bus_connected: true, draining: false });
        assert!(text.contains("# TYPE herald_edge_frames_sent_total counter\nherald_edge_frames_sent_total 1\n"));
        assert!(text.contains("herald_edge_sessions 3\n"));
        assert!(text.contains("herald_edge_bus_connected 1\n"));
    }
}
