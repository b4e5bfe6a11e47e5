//! Logging, set up from `HERALD_LOG` and `HERALD_LOG_FORMAT`, and traces,
//! exported over OTLP when the standard `OTEL_*` variables ask for it.
//!
//! Logs go to standard output, where container runtimes collect them; JSON
//! lines are for log pipelines, text for people. Start-up errors do not go
//! through here: they are printed to standard error by `main`, so they show
//! even when the filter would hide them.
//!
//! Traces (ADR 0014) are off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`). Then the spans
//! of target [`herald_bus::trace::TARGET`] go to an OTLP HTTP/protobuf
//! exporter, which reads the other `OTEL_EXPORTER_OTLP_*` variables itself,
//! as the SDK reads `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`; log lines written inside a trace carry its
//! `trace_id` and `span_id`. Off, those spans are disabled where they are
//! made, and nothing else changes.

mod trace_ids;

use std::io::IsTerminal;

use herald_bus::trace::TARGET;
use herald_settings::logging::{LOG, LOG_FORMAT, LogFormat};
use herald_settings::{SettingError, Settings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use self::trace_ids::WithTraceIds;

/// Logging as configured, ready to install.
#[derive(Debug)]
pub struct Telemetry {
    /// Which events are logged.
    filter: EnvFilter,
    /// How they are written.
    format: LogFormat,
}

/// Whether and how traces are exported, from the `OTEL_*` variables.
#[derive(Debug, PartialEq, Eq)]
pub struct TraceExport {
    /// `service.name` when `OTEL_SERVICE_NAME` does not say.
    default_service: &'static str,
}

impl TraceExport {
    /// Reads the standard variables through `env`; `None`: traces are off.
    /// Only OTLP over HTTP/protobuf is built in: a process asked for another
    /// protocol refuses to start, rather than export nothing.
    pub fn read(
        env: impl Fn(&str) -> Option<String>,
        default_service: &'static str,
    ) -> Result<Option<TraceExport>, String> {
        let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let exporter = set("OTEL_TRACES_EXPORTER").map(|value| value.trim().to_ascii_lowercase());
        if endpoint.is_none() || disabled || exporter.as_deref() == Some("none") {
            return Ok(None);
        }
        if let Some(other) = exporter.filter(|exporter| exporter != "otlp") {
            return Err(format!("OTEL_TRACES_EXPORTER={other:?}: only otlp (or none) is supported"));
        }
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol.filter(|protocol| protocol.trim() != "http/protobuf") {
            return Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL={protocol:?}: only http/protobuf is supported"));
        }
        Ok(Some(TraceExport { default_service }))
    }

    /// The tracer provider exporting over OTLP, with W3C trace context as
    /// the process's propagator.
    fn start(&self) -> Result<SdkTracerProvider, String> {
        // reqwest's TLS (an https endpoint) needs a process-wide crypto
        // provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("cannot set up the OTLP trace exporter: {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(self.default_service);
        }
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
    }
}

/// Flushes and stops the trace export when dropped, at exit.
#[derive(Debug)]
pub struct TelemetryGuard {
    /// The exporting provider, when traces are on.
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("herald: could not flush the last traces: {e}");
        }
    }
}

impl Telemetry {
    /// Reads and checks the logging settings.
    pub fn read(settings: &Settings) -> Result<Telemetry, SettingError> {
        let filter = settings.get_with(&LOG, |filter| {
            EnvFilter::try_new(filter)
                .map_err(|e| format!("expected a tracing filter like info or warn,herald_edge=debug ({e})"))
        })?;
        Ok(Telemetry { filter, format: settings.get(&LOG_FORMAT)? })
    }

    /// Installs the process's logger, and the trace export if `traces` is
    /// set. Call once, before anything logs; keep the guard until exit.
    pub fn install(self, traces: Option<&TraceExport>) -> Result<TelemetryGuard, String> {
        let provider = traces.map(TraceExport::start).transpose()?;
        // The spans made for traces are not log lines.
        let filter = self.filter.add_directive(format!("{TARGET}=off").parse().expect("a valid directive"));
        let traced = provider.is_some();
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stdout);
        let logs = match (self.format, traced) {
            (LogFormat::Text, false) => logs.with_ansi(std::io::stdout().is_terminal()).boxed(),
            (LogFormat::Text, true) => {
                let format = tracing_subscriber::fmt::format().with_ansi(false);
                logs.with_ansi(false).event_format(WithTraceIds::text(format)).boxed()
            }
            (LogFormat::Json, false) => logs.json().boxed(),
            (LogFormat::Json, true) => {
                logs.json().event_format(WithTraceIds::json(tracing_subscriber::fmt::format().json())).boxed()
            }
        };
        let spans = provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("herald"))
                .with_filter(Targets::new().with_target(TARGET, LevelFilter::INFO))
        });
        tracing_subscriber::registry().with(spans).with(logs.with_filter(filter)).init();
        Ok(TelemetryGuard { provider })
    }
}

#[cfg(test)]
mod tests {
    use herald_settings::logging::{FILTER, FORMAT};
    use herald_settings::{Flags, SettingList, Spec, fixed_env};

    use super::*;

    struct Logging;

    impl SettingList for Logging {
        const GROUPS: &'static [&'static [&'static Spec]] = &[FILTER, FORMAT];
    }

    fn read(vars: &[(&str, &str)]) -> Result<Telemetry, SettingError> {
        Telemetry::read(&Settings::new(Flags::<Logging>::default(), fixed_env(vars), None))
    }

    #[test]
    fn defaults_to_info_as_text() {
        let telemetry = read(&[]).unwrap();
        assert_eq!(telemetry.format, LogFormat::Text);
        assert_eq!(telemetry.filter.to_string(), "info");
    }

    #[test]
    fn takes_a_filter_and_json() {
        let telemetry = read(&[("HERALD_LOG", "warn,herald_edge=debug"), ("HERALD_LOG_FORMAT", "JSON")]).unwrap();
        assert_eq!(telemetry.format, LogFormat::Json);
        assert!(telemetry.filter.to_string().contains("herald_edge=debug"));
    }

    #[test]
    fn refuses_an_unknown_format_in_one_line() {
        let error = read(&[("HERALD_LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert_eq!(error, r#"bad setting HERALD_LOG_FORMAT="xml" (from environment): expected text or json"#);
    }

    #[test]
    fn refuses_a_bad_filter_in_one_line() {
        let error = read(&[("HERALD_LOG", "info,[")]).unwrap_err().to_string();
        assert!(
            error.starts_with(r#"bad setting HERALD_LOG="info,[" (from environment): expected a tracing filter"#),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    fn traces(vars: &[(&str, &str)]) -> Result<Option<TraceExport>, String> {
        TraceExport::read(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()), "herald-edge")
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(traces(&[]), Ok(None));
        assert_eq!(traces(&[("OTEL_TRACES_SAMPLER", "always_on")]), Ok(None));
        let on = Ok(Some(TraceExport { default_service: "herald-edge" }));
        assert_eq!(traces(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]), on);
        assert_eq!(traces(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")]), on);
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(traces(&[endpoint, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(traces(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]), Ok(None));
        assert_eq!(traces(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]), on);
    }

    #[test]
    fn refuses_a_protocol_or_exporter_it_does_not_have() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        let error = traces(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
        assert!(error.contains("only http/protobuf"), "{error}");
        let error = traces(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert!(error.contains("only otlp"), "{error}");
    }
}
