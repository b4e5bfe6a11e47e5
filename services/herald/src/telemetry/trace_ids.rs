//! Log lines written inside a trace carry its `trace_id` and `span_id`, so
//! a log line leads to its trace and back.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a log line format: inside a trace, the ids go first in a text
/// line, and first among the fields of a JSON object.
#[derive(Debug)]
pub(super) struct WithTraceIds<F> {
    inner: F,
    /// JSON lines (the ids are spliced into the object) or text.
    json: bool,
}

impl<F> WithTraceIds<F> {
    pub fn text(inner: F) -> WithTraceIds<F> {
        WithTraceIds { inner, json: false }
    }

    pub fn json(inner: F) -> WithTraceIds<F> {
        WithTraceIds { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some(context) = herald_bus::trace::active_context() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let span = context.span();
        let ids = span.span_context();
        let (trace_id, span_id) = (ids.trace_id(), ids.span_id());
        if !self.json {
            write!(writer, "trace_id={trace_id} span_id={span_id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Where the log lines of a test go.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Lines {
        /// The line that says `message` (other tests of this binary log too).
        fn saying(&self, message: &str) -> String {
            let bytes = self.0.lock().expect("lines").clone();
            let text = String::from_utf8(bytes).expect("UTF-8 log lines");
            text.lines()
                .find(|line| line.contains(message))
                .unwrap_or_else(|| panic!("no {message} in {text}"))
                .to_owned()
        }
    }

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl MakeWriter<'_> for Lines {
        type Writer = Lines;

        fn make_writer(&self) -> Lines {
            self.clone()
        }
    }

    /// The process's subscriber, as `install` makes it (the formatter asks
    /// for the current span, which only the global dispatcher answers from
    /// inside an event): the real OpenTelemetry SDK and both log formats.
    #[test]
    fn log_lines_inside_a_trace_carry_its_ids() {
        let (text, json) = (Lines::default(), Lines::default());
        let tracer = opentelemetry_sdk::trace::SdkTracerProvider::builder().build().tracer("test");
        let text_logs = tracing_subscriber::fmt::layer()
            .with_writer(text.clone())
            .event_format(WithTraceIds::text(tracing_subscriber::fmt::format().with_ansi(false)));
        let json_logs = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(json.clone())
            .event_format(WithTraceIds::json(tracing_subscriber::fmt::format().json()));
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(text_logs)
            .with(json_logs);
        tracing::subscriber::set_global_default(subscriber).expect("the one global subscriber of this test binary");

        tracing::info!("outside-7f3e");
        let span = tracing::info_span!("action");
        let (trace_id, span_id) = span.in_scope(|| {
            tracing::info!("inside-7f3e");
            let context = span.context();
            let ids = context.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        assert_eq!(trace_id.len(), 32, "a sampled trace");

        let (outside, inside) = (text.saying("outside-7f3e"), text.saying("inside-7f3e"));
        assert!(!outside.contains("trace_id="), "{outside}");
        assert!(inside.starts_with(&format!("trace_id={trace_id} span_id={span_id} ")), "{inside}");

        let parse = |line: String| serde_json::from_str::<serde_json::Value>(&line).expect("a JSON line");
        let (outside, inside) = (parse(json.saying("outside-7f3e")), parse(json.saying("inside-7f3e")));
        assert_eq!(outside.get("trace_id"), None, "{outside}");
        assert_eq!(inside["trace_id"], trace_id.as_str(), "{inside}");
        assert_eq!(inside["span_id"], span_id.as_str(), "{inside}");
    }
}
