//! W3C trace context (`traceparent`, `tracestate`) in bus message headers,
//! so one trace follows an action from the edge through the router to a
//! handler in any language (ADR 0014).
//!
//! Spans meant for OpenTelemetry use the target [`TARGET`]. The `herald`
//! binary enables that target only when it exports traces, so with
//! tracing off they are disabled at their call site and cost nothing; and
//! with no span active, `inject` adds no header.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::BusMessage;

/// The `tracing` target of the spans exported as OpenTelemetry spans.
pub const TARGET: &str = "herald::trace";

/// `headers`, with the trace context of the current span added when a
/// trace is active.
pub(crate) fn inject(headers: Option<HeaderMap>) -> Option<HeaderMap> {
    let Some(context) = active_context() else { return headers };
    let mut headers = headers.unwrap_or_default();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut NatsHeaders(&mut headers));
    });
    Some(headers)
}

/// The current span's trace context, if a trace is active.
pub fn active_context() -> Option<opentelemetry::Context> {
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let context = span.context();
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` continue the trace `message` carries, if it carries one.
pub fn continue_trace(span: &tracing::Span, message: &BusMessage) {
    if span.is_disabled() {
        return;
    }
    let Some(headers) = &message.headers else { return };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&NatsHeaders(&mut headers.clone()))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` continue the trace an HTTP request's headers carry (a
/// backend's call to the API from inside a handler), if they carry one;
/// `header` reads a header by name.
pub fn continue_trace_from<'a>(span: &tracing::Span, header: impl Fn(&str) -> Option<&'a str>) {
    if span.is_disabled() {
        return;
    }
    let mut headers = std::collections::HashMap::new();
    for name in ["traceparent", "tracestate"] {
        if let Some(value) = header(name) {
            headers.insert(name.to_owned(), value.to_owned());
        }
    }
    if headers.is_empty() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// NATS headers as OpenTelemetry's propagators read and write them.
struct NatsHeaders<'a>(&'a mut HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// The W3C trace context headers of the current span, to send with an
/// HTTP request; empty when no trace is active.
pub fn http_headers() -> std::collections::HashMap<String, String> {
    let mut headers = std::collections::HashMap::new();
    if let Some(context) = active_context() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut headers);
        });
    }
    headers
}
