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
