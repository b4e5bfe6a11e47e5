//! Logging: what is logged and how lines are written. Every binary reads
//! [`FILTER`]; `herald` also reads [`FORMAT`].

use crate::setting::settings;
use crate::value::text;

settings! {
    /// What is logged.
    FILTER;
    /// What to log, as a tracing filter, e.g. info,herald_edge=debug.
    LOG: String = new("FILTER", "info", text);
}

settings! {
    /// How log lines are written.
    FORMAT;
    /// Log line format: text or json.
    LOG_FORMAT: LogFormat = new("FORMAT", "text", log_format);
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// `text` or `json`, in any case.
fn log_format(value: &str) -> Result<LogFormat, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("expected text or json".to_owned()),
    }
}
