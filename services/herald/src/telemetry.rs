//! Logging, set up from `HERALD_LOG` and `HERALD_LOG_FORMAT`.
//!
//! Logs go to standard output, where container runtimes collect them; JSON
//! lines are for log pipelines, text for people. Start-up errors do not go
//! through here: they are printed to standard error by `main`, so they show
//! even when the filter would hide them.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::{SettingError, Settings, Spec};

/// The logging settings, shared by every command.
pub const SETTINGS: &[Spec] = &[
    Spec::new("LOG", "FILTER", "info", "What to log, as a tracing filter, e.g. info,herald_edge=debug"),
    Spec::new("LOG_FORMAT", "FORMAT", "text", "Log line format: text or json"),
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging as configured, ready to install.
#[derive(Debug)]
pub struct Telemetry {
    /// Which events are logged.
    filter: EnvFilter,
    /// How they are written.
    format: Format,
}

impl Telemetry {
    /// Reads and checks the logging settings.
    pub fn read(settings: &Settings) -> Result<Telemetry, SettingError> {
        let filter = settings.parse("LOG", |value| {
            EnvFilter::try_new(value)
                .map_err(|e| format!("expected a tracing filter like info or warn,herald_edge=debug ({e})"))
        })?;
        let format = settings.parse("LOG_FORMAT", |value| match value.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err("expected text or json".to_owned()),
        })?;
        Ok(Telemetry { filter, format })
    }

    /// Installs the process's logger. Call once, before anything logs.
    pub fn install(self) {
        let builder = tracing_subscriber::fmt().with_env_filter(self.filter).with_writer(std::io::stdout);
        match self.format {
            Format::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
            Format::Json => builder.json().init(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Flags, SettingList, fixed_env};

    struct Logging;

    impl SettingList for Logging {
        const TABLES: &'static [&'static [Spec]] = &[SETTINGS];
    }

    fn read(vars: &[(&str, &str)]) -> Result<Telemetry, SettingError> {
        Telemetry::read(&Settings::new(Flags::<Logging>::default(), fixed_env(vars), None))
    }

    #[test]
    fn defaults_to_info_as_text() {
        let telemetry = read(&[]).unwrap();
        assert_eq!(telemetry.format, Format::Text);
        assert_eq!(telemetry.filter.to_string(), "info");
    }

    #[test]
    fn takes_a_filter_and_json() {
        let telemetry = read(&[("HERALD_LOG", "warn,herald_edge=debug"), ("HERALD_LOG_FORMAT", "JSON")]).unwrap();
        assert_eq!(telemetry.format, Format::Json);
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
}
