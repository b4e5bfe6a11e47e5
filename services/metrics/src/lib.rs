//! What Herald's services share for `/metrics`, on `prometheus-client`.
//!
//! Each service declares its metrics with `prometheus-client` types and
//! registers them in a [`Registry`]; this crate renders a registry for
//! `/metrics` and holds the pieces both services label and bucket alike.
//!
//! `prometheus-client` writes the OpenMetrics text format, where a counter's
//! family is named without its `_total` suffix. Prometheus reads that when it
//! asks for it, but `promtool check metrics` and plain scrapers read the
//! Prometheus text format 0.0.4; [`render`] writes that one, which every
//! scraper reads.
//!
//! Help texts are written without a final full stop: `prometheus-client`
//! adds one.

use std::fmt::Write;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A registry in the Prometheus text format 0.0.4.
pub fn render(registry: &Registry) -> String {
    let mut open_metrics = String::with_capacity(8192);
    prometheus_client::encoding::text::encode_registry(&mut open_metrics, registry)
        .expect("writing to a String cannot fail");
    to_prometheus_text(&open_metrics)
}

/// Rewrites OpenMetrics text as Prometheus text: a counter's `HELP` and
/// `TYPE` lines name it with `_total`, as its samples do, and the
/// OpenMetrics-only lines (`# UNIT`, `# EOF`) go.
fn to_prometheus_text(open_metrics: &str) -> String {
    let counters: Vec<&str> =
        open_metrics.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "].into_iter().find_map(|kind| Some((kind, line.strip_prefix(kind)?)));
        match comment {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(&name) { "_total" } else { "" };
                let _ = writeln!(out, "{kind}{name}{suffix} {tail}");
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Registers what the edge and the router both say of their process, under
/// the same names and help, since the dashboard and the alerts read both
/// alike: Tokio tasks alive, the bus connection and its reconnections.
pub fn register_process(registry: &mut Registry, tasks: &Gauge, bus_connected: &Gauge, bus_reconnects: Counter) {
    registry.register("tasks", "Tokio tasks alive in the process", tasks.clone());
    registry.register("bus_connected", "1 while connected to the bus", bus_connected.clone());
    registry.register("bus_reconnects", "Reconnections to the bus after an outage", bus_reconnects);
}

/// Buckets for latencies, in seconds: 0.5 ms to 10 s, about three per decade,
/// from a local handler's answer to the longest action timeout.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter()
}

/// A histogram of latencies with [`latency_buckets`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Seconds, as histograms of latencies observe them.
pub fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// How an action or handler call ended, by the code it was answered with:
/// few values, so it can label a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered without an error.
    Ok,
    /// Answered with an error the caller caused or the handler chose
    /// (4xx): the handler worked.
    Refused,
    /// Not answered as asked (5xx: no handler, timeout, malformed answer).
    Failed,
}

impl Outcome {
    /// The outcome of an answer with error `code`, if any.
    pub fn of(code: Option<u16>) -> Outcome {
        match code {
            None => Outcome::Ok,
            Some(code) if code < 500 => Outcome::Refused,
            Some(_) => Outcome::Failed,
        }
    }

    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// The one label of a histogram by [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: Outcome,
}

/// Why something was refused or dropped, as a label: a fixed set of values
/// each service names where it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let mut registry = Registry::with_prefix("herald_test");
        let hits = Counter::<u64>::default();
        let open = Gauge::<i64>::default();
        let latency = Family::<OutcomeLabel, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("hits", "Hits", hits.clone());
        registry.register("open", "Open now", open.clone());
        registry.register_with_unit("latency", "Latency", prometheus_client::registry::Unit::Seconds, latency.clone());
        hits.inc();
        open.set(3);
        latency.get_or_create(&OutcomeLabel { outcome: Outcome::of(Some(504)) }).observe(0.2);
        let text = render(&registry);
        assert!(
            text.starts_with(
                "# HELP herald_test_hits_total Hits.\n# TYPE herald_test_hits_total counter\nherald_test_hits_total 1\n\
                 # HELP herald_test_open Open now.\n# TYPE herald_test_open gauge\nherald_test_open 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE herald_test_latency_seconds histogram\n"), "{text}");
        assert!(text.contains("herald_test_latency_seconds_bucket{le=\"0.25\",outcome=\"failed\"} 1\n"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
    }

    #[test]
    fn outcomes_follow_the_code() {
        assert_eq!(Outcome::of(None), Outcome::Ok);
        assert_eq!(Outcome::of(Some(404)), Outcome::Refused);
        assert_eq!(Outcome::of(Some(503)), Outcome::Failed);
    }
}
