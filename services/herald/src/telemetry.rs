//! Logging, set up from `HERALD_LOG` and `HERALD_LOG_FORMAT`.
//!
//! Logs go to standard output, where container runtimes collect them; JSON
//! lines are for log pipelines, text for people. Start-up errors do not go
//! through here: they are printed to standard error by `main`, so they show
//! even when the filter would hide them.

use std::io::IsTerminal;

use herald_settings::logging::{LOG, LOG_FORMAT, LogFormat};
use herald_settings::{SettingError, Settings};
use tracing_subscriber::EnvFilter;

/// Logging as configured, ready to install.
#[derive(Debug)]
pub struct Telemetry {
    /// Which events are logged.
    filter: EnvFilter,
    /// How they are written.
    format: LogFormat,
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

    /// Installs the process's logger. Call once, before anything logs.
    pub fn install(self) {
        let builder = tracing_subscriber::fmt().with_env_filter(self.filter).with_writer(std::io::stdout);
        match self.format {
            LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
            LogFormat::Json => builder.json().init(),
        }
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
}
