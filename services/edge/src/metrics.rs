//! What the edge measures, for `/metrics`.
//!
//! Counters on the delivery path are plain `prometheus-client` counters
//! (one atomic add); a labelled one used there is looked up once, here, and
//! kept, so no label lookup happens per frame.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use herald_bus::Bus;
use herald_metrics::{Outcome, OutcomeLabel, ReasonLabel, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The client protocols sessions speak: the `protocol` label's values.
/// A new endpoint adds a variant here and to [`ClientProtocol::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientProtocol {
    /// Herald's own, on `/ws`.
    Herald,
    /// Pusher protocol 7, on `/app/<key>`.
    Pusher,
    /// Socket.IO 5 over Engine.IO 4, on `/socket.io/`.
    SocketIo,
}

impl ClientProtocol {
    /// Every protocol, in the order of [`Metrics::sessions`]' series.
    const ALL: [ClientProtocol; 3] = [ClientProtocol::Herald, ClientProtocol::Pusher, ClientProtocol::SocketIo];

    fn label(self) -> &'static str {
        match self {
            ClientProtocol::Herald => "herald",
            ClientProtocol::Pusher => "pusher",
            ClientProtocol::SocketIo => "socketio",
        }
    }
}

/// The client protocol a session speaks, as a label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

/// The series of one protocol's sessions, looked up once.
#[derive(Debug)]
pub(crate) struct SessionSeries {
    /// Sessions open now.
    pub open: Gauge,
    /// Sessions opened.
    pub opened: Counter,
}

/// A session's end, as labels: its protocol, and its close code in
/// Herald's terms (a Pusher session closed by the edge with 1012 is sent
/// 4200 and counted 1012). Herald's own codes and the standard ones by
/// number, any other a client sends as `other`, so clients cannot grow the
/// series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CloseLabel {
    protocol: &'static str,
    code: String,
}

/// Frames dropped, by why; each counter is the family's series for one
/// reason, looked up once.
#[derive(Debug)]
pub(crate) struct Drops {
    /// A delivery found the session's mailbox full.
    pub mailbox_full: Counter,
    /// A delivery found the mailbox full past the slow-consumer grace: the
    /// session is closed with 1013.
    pub slow_consumer: Counter,
    /// A client frame refused by the rate limit.
    pub rate_limit: Counter,
    /// A client frame larger than the limit (the session is closed, 1009).
    pub too_large: Counter,
}

/// The edge's metrics; each field says what it measures.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Everything below, for rendering.
    registry: Registry,
    /// Sessions open and opened, one entry per [`ClientProtocol`].
    sessions: [SessionSeries; ClientProtocol::ALL.len()],
    /// Upgrade requests refused, by reason.
    upgrades_refused: Family<ReasonLabel, Counter>,
    /// Frames received from clients.
    pub frames_received: Counter,
    /// Frames written to clients.
    pub frames_sent: Counter,
    /// Seconds the flushers paused because they were behind (ADR 0032):
    /// rising, the edge's broadcasts come faster than it visits sessions.
    pub flusher_paused: Counter<f64, AtomicU64>,
    /// Messages received from the bus for delivery.
    pub bus_messages: Counter,
    /// Publish → delivery lag of the messages that carry their publish
    /// time (`Herald-Published-At`), observed once per message.
    pub publish_lag: Histogram,
    pub dropped: Drops,
    /// Sessions closed with 1013 for not reading.
    pub slow_consumers: Counter,
    /// Client frames answered with a 400 error.
    pub bad_frames: Counter,
    /// Sessions ended, by close code.
    closes: Family<CloseLabel, Counter>,
    /// Client actions from the frame to the reply, by outcome. The edge
    /// knows no routes and an action name is client input, so there is no
    /// route label here; the router's histogram has it.
    actions: Family<OutcomeLabel, Histogram>,
    /// Resuming clients told `recovered: true`.
    pub recoveries: Counter,
    /// Clients told `recovered: false` (resuming or not).
    pub recoveries_failed: Counter,
    /// Missed frames queued for resuming clients.
    pub history_replayed: Counter,
    /// History messages dropped as already delivered.
    pub history_duplicates: Counter,
    /// Gaps in a subject's sequence, filled from the history.
    pub history_gaps: Counter,
    /// History reads that failed (stream missing, NATS down, timeout).
    pub history_read_failures: Counter,
    /// Point-in-time values, set when `/metrics` is read.
    pub subscriptions: Gauge,
    /// Tokio tasks alive in the process: one per session and topic plus a
    /// few; growth under steady load is a leak (`just soak` watches it).
    pub tasks: Gauge,
    pub bus_connected: Gauge,
    pub draining: Gauge,
    /// What `/readyz` says, for alerts: connected and not draining.
    pub ready: Gauge,
}

impl Metrics {
    /// The edge's metrics, with the bus's reconnections among them.
    pub fn new(bus: &Bus) -> Metrics {
        let mut registry = Registry::with_prefix("herald_edge");
        let sessions_by_protocol = Family::<ProtocolLabel, Gauge>::default();
        let connections_by_protocol = Family::<ProtocolLabel, Counter>::default();
        let series = |protocol: ClientProtocol| {
            let label = ProtocolLabel { protocol: protocol.label() };
            SessionSeries {
                open: sessions_by_protocol.get_or_create_owned(&label),
                opened: connections_by_protocol.get_or_create_owned(&label),
            }
        };
        let dropped = Family::<ReasonLabel, Counter>::default();
        let drop = |reason| dropped.get_or_create_owned(&ReasonLabel { reason });
        let metrics = Metrics {
            sessions: ClientProtocol::ALL.map(series),
            upgrades_refused: Family::default(),
            frames_received: Counter::default(),
            frames_sent: Counter::default(),
            flusher_paused: Counter::default(),
            bus_messages: Counter::default(),
            publish_lag: latency_histogram(),
            dropped: Drops {
                mailbox_full: drop("mailbox_full"),
                slow_consumer: drop("slow_consumer"),
                rate_limit: drop("rate_limit"),
                too_large: drop("too_large"),
            },
            slow_consumers: Counter::default(),
            bad_frames: Counter::default(),
            closes: Family::default(),
            actions: Family::new_with_constructor(latency_histogram),
            recoveries: Counter::default(),
            recoveries_failed: Counter::default(),
            history_replayed: Counter::default(),
            history_duplicates: Counter::default(),
            history_gaps: Counter::default(),
            history_read_failures: Counter::default(),
            subscriptions: Gauge::default(),
            tasks: Gauge::default(),
            bus_connected: Gauge::default(),
            draining: Gauge::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("sessions", "WebSocket sessions open now, by protocol", sessions_by_protocol);
        r.register("connections", "WebSocket sessions opened, by protocol", connections_by_protocol);
        r.register("upgrades_refused", "Upgrade requests refused, by reason", metrics.upgrades_refused.clone());
        r.register("frames_received", "Frames received from clients", metrics.frames_received.clone());
        r.register("frames_sent", "Frames written to clients", metrics.frames_sent.clone());
        let help = "Time the flushers paused between turns because messages came faster than they visited \
                    the sessions, so that each send carries more frames";
        r.register_with_unit("flusher_paused", help, Unit::Seconds, metrics.flusher_paused.clone());
        r.register("bus_messages", "Messages received from the bus for delivery", metrics.bus_messages.clone());
        let help = "Time from a message's publish (its Herald-Published-At header, by the publisher's clock) \
                    to its fan-out to this edge's sessions, once per message; messages without the header are \
                    not counted, and a publisher's clock ahead of the edge's counts as 0";
        r.register_with_unit("publish_lag", help, Unit::Seconds, metrics.publish_lag.clone());
        r.register("frames_dropped", "Frames dropped or refused, by reason", dropped);
        r.register("slow_consumers", "Sessions closed with 1013 for not reading", metrics.slow_consumers.clone());
        r.register("bad_frames", "Client frames answered with a 400 error", metrics.bad_frames.clone());
        r.register("sessions_closed", "Sessions ended, by protocol and close code", metrics.closes.clone());
        let help = "Client actions from the frame to the reply, by outcome";
        r.register_with_unit("action_duration", help, Unit::Seconds, metrics.actions.clone());
        r.register("recoveries", "Resuming clients told recovered: true", metrics.recoveries.clone());
        let help = "Clients told recovered: false (resuming or not)";
        r.register("recoveries_failed", help, metrics.recoveries_failed.clone());
        let help = "Missed frames queued for resuming clients";
        r.register("history_replayed", help, metrics.history_replayed.clone());
        let help = "History messages dropped as already delivered";
        r.register("history_duplicates", help, metrics.history_duplicates.clone());
        let help = "Gaps in a subject's sequence, filled from the history";
        r.register("history_gaps", help, metrics.history_gaps.clone());
        let help = "History reads that failed (stream missing, NATS down, timeout)";
        r.register("history_read_failures", help, metrics.history_read_failures.clone());
        let help = "User and group subscriptions held on the bus";
        r.register("subscriptions", help, metrics.subscriptions.clone());
        herald_metrics::register_process(r, &metrics.tasks, &metrics.bus_connected, bus.reconnects());
        r.register("draining", "1 while draining", metrics.draining.clone());
        r.register("ready", "1 while ready (/readyz): connected to the bus and not draining", metrics.ready.clone());
        Metrics { registry, ..metrics }
    }

    /// The session series of `protocol`.
    pub fn sessions(&self, protocol: ClientProtocol) -> &SessionSeries {
        let index = ClientProtocol::ALL.iter().position(|p| *p == protocol).expect("every protocol is in ALL");
        &self.sessions[index]
    }

    /// Counts an upgrade refused with `status`: the status is the reason
    /// (400 not an upgrade, 401 bad token, 403 origin or `$connect`, 503
    /// draining or no router).
    pub fn upgrade_refused(&self, status: http::StatusCode) {
        let reason = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            429 => "too_many_requests",
            503 => "unavailable",
            _ => "other",
        };
        self.upgrade_refused_for(reason);
    }

    /// Counts an upgrade refused for `reason`: the statuses' above, and a
    /// Pusher connection's after its `101` (`unknown_app`,
    /// `unsupported_protocol`).
    pub fn upgrade_refused_for(&self, reason: &'static str) {
        self.upgrades_refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a session of `protocol` that ended with `code`.
    pub fn session_closed(&self, protocol: ClientProtocol, code: u16) {
        let known = matches!(code, 1000..=1015 | 4000..=4001);
        let code = if known { code.to_string() } else { "other".to_owned() };
        self.closes.get_or_create(&CloseLabel { protocol: protocol.label(), code }).inc();
    }

    /// Records a client action answered after `elapsed`, with error `code`
    /// if any.
    pub fn action_answered(&self, elapsed: Duration, code: Option<u16>) {
        let label = OutcomeLabel { outcome: Outcome::of(code) };
        self.actions.get_or_create(&label).observe(herald_metrics::seconds(elapsed));
    }

    /// Renders every metric, as `/metrics` serves them.
    pub fn render(&self) -> String {
        herald_metrics::render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_labels() {
        let metrics = Metrics::new(&Bus::local());
        metrics.frames_sent.inc();
        metrics.sessions(ClientProtocol::Pusher).open.inc();
        metrics.dropped.rate_limit.inc();
        metrics.session_closed(ClientProtocol::Herald, 1013);
        metrics.session_closed(ClientProtocol::Pusher, 3999);
        metrics.upgrade_refused(http::StatusCode::UNAUTHORIZED);
        metrics.action_answered(Duration::from_millis(3), Some(504));
        metrics.publish_lag.observe(0.002);
        metrics.flusher_paused.inc_by(0.004);
        let text = metrics.render();
        for line in [
            "# TYPE herald_edge_frames_sent_total counter\nherald_edge_frames_sent_total 1\n",
            "herald_edge_sessions{protocol=\"herald\"} 0\n",
            "herald_edge_sessions{protocol=\"pusher\"} 1\n",
            "herald_edge_frames_dropped_total{reason=\"rate_limit\"} 1\n",
            "herald_edge_frames_dropped_total{reason=\"mailbox_full\"} 0\n",
            "herald_edge_sessions_closed_total{protocol=\"herald\",code=\"1013\"} 1\n",
            "herald_edge_sessions_closed_total{protocol=\"pusher\",code=\"other\"} 1\n",
            "herald_edge_upgrades_refused_total{reason=\"unauthorized\"} 1\n",
            "herald_edge_action_duration_seconds_count{outcome=\"failed\"} 1\n",
            "herald_edge_bus_reconnects_total 0\n",
            "herald_edge_publish_lag_seconds_bucket{le=\"0.0025\"} 1\n",
            "herald_edge_publish_lag_seconds_count 1\n",
            "# TYPE herald_edge_flusher_paused_seconds_total counter\nherald_edge_flusher_paused_seconds_total 0.004\n",
        ] {
            assert!(text.contains(line), "no {line:?} in:\n{text}");
        }
    }
}
