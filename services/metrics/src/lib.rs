//! Counters and gauges in the Prometheus text format, shared by Herald's
//! services.
//!
//! Plain atomics: incrementing one is a single uncontended instruction on the
//! hot path, and rendering reads them all without locks. A service declares
//! its counters once with [`counters!`], which also writes their help text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Declares a struct of counters and a `render_counters` method that writes
/// them, each as `<prefix>_<name>` with its help text.
///
/// ```
/// herald_metrics::counters! {
///     /// What this service counts.
///     pub struct Metrics("herald_example") {
///         requests_total: "Requests served.",
///     }
/// }
/// let metrics = Metrics::default();
/// herald_metrics::inc(&metrics.requests_total);
/// let mut out = String::new();
/// metrics.render_counters(&mut out);
/// assert!(out.contains("herald_example_requests_total 1\n"));
/// ```
#[macro_export]
macro_rules! counters {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($prefix:literal) { $($field:ident: $help:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $name {
            $(#[doc = $help] pub $field: ::std::sync::atomic::AtomicU64,)*
        }

        impl $name {
            /// Writes every counter in the Prometheus text format.
            pub fn render_counters(&self, out: &mut String) {
                $(
                    $crate::render(
                        out,
                        concat!($prefix, "_", stringify!($field)),
                        $help,
                        "counter",
                        self.$field.load(::std::sync::atomic::Ordering::Relaxed),
                    );
                )*
            }
        }
    };
}

/// Increments a counter by one.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Writes one metric with its help and type lines.
pub fn render(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Writes one gauge.
pub fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    render(out, name, help, "gauge", value);
}

#[cfg(test)]
mod tests {
    use super::*;

    counters! {
        struct Sample("herald_test") {
            hits_total: "Hits.",
        }
    }

    #[test]
    fn renders_prometheus_text() {
        let sample = Sample::default();
        inc(&sample.hits_total);
        let mut out = String::new();
        sample.render_counters(&mut out);
        gauge(&mut out, "herald_test_open", "Open now.", 3);
        assert_eq!(
            out,
            "# HELP herald_test_hits_total Hits.\n# TYPE herald_test_hits_total counter\nherald_test_hits_total 1\n\
             # HELP herald_test_open Open now.\n# TYPE herald_test_open gauge\nherald_test_open 3\n"
        );
    }
}
