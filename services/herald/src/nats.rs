//! NATS: connecting with the settings every role that talks over it reads
//! (`herald_settings::nats`).
//!
//! Edges and routers must agree on the servers and the subject prefix; only
//! the connection's default name differs, so NATS monitoring tells the roles
//! apart.

use herald_bus::{Bus, BusConfig, BusError};
use herald_proto::subject::Subjects;
use herald_settings::nats::{NATS_NAME, NATS_PING_INTERVAL_MS, NATS_URL, SUBJECT_PREFIX};
use herald_settings::{SettingError, Settings};

use crate::Failure;

/// Where a role finds NATS and what it calls things there, read and checked.
#[derive(Debug)]
pub struct Nats {
    /// How to reach NATS.
    pub bus: BusConfig,
    /// Herald's subjects, under the configured prefix.
    pub subjects: Subjects,
}

impl Nats {
    /// Reads and checks the NATS settings. The connection is named
    /// `default_name` (the role's, such as `herald-edge`) unless `NATS_NAME`
    /// is given.
    pub fn read(settings: &Settings, default_name: &str) -> Result<Nats, SettingError> {
        let urls = settings.get(&NATS_URL)?;
        let name = settings.given(&NATS_NAME)?.unwrap_or_else(|| default_name.to_owned());
        let bus = BusConfig { urls, name, ping_interval: settings.get(&NATS_PING_INTERVAL_MS)? };
        Ok(Nats { bus, subjects: settings.get(&SUBJECT_PREFIX)? })
    }
}

/// Connects to NATS as `config` says, in the background: start-up does not
/// wait for NATS. The bus client is the judge of what a NATS URL is; what it
/// refuses is still a bad setting, reported like any other.
pub async fn connect(settings: &Settings, config: &BusConfig) -> Result<Bus, Failure> {
    Bus::connect(config).await.map_err(|e| match e {
        BusError::BadUrl { .. } => Failure::Settings(settings.refused(&NATS_URL, e.to_string())),
        e => Failure::Bus(e),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_settings::{Flags, SettingList, Spec, fixed_env, nats};

    use super::*;

    struct NatsOnly;

    impl SettingList for NatsOnly {
        const GROUPS: &'static [&'static [&'static Spec]] = &[nats::CONNECTION, nats::SUBJECTS];
    }

    fn read(vars: &[(&str, &str)]) -> Result<Nats, SettingError> {
        Nats::read(&Settings::new(Flags::<NatsOnly>::default(), fixed_env(vars), None), "herald-test")
    }

    fn error(vars: &[(&str, &str)]) -> String {
        read(vars).unwrap_err().to_string()
    }

    #[test]
    fn defaults_to_a_local_server_the_roles_name_and_the_herald_prefix() {
        let nats = read(&[]).unwrap();
        assert_eq!(nats.bus.urls, ["nats://127.0.0.1:4222"]);
        assert_eq!(nats.bus.name, "herald-test");
        assert_eq!(nats.subjects, Subjects::default());
        assert_eq!(nats.bus.ping_interval, Duration::from_secs(2));
        // An empty name is no name: NATS monitoring would show nothing.
        assert_eq!(read(&[("HERALD_NATS_NAME", "")]).unwrap().bus.name, "herald-test");
    }

    #[test]
    fn reads_every_setting() {
        let nats = read(&[
            ("HERALD_NATS_URL", "nats://a:4222, nats://b:4222"),
            ("HERALD_NATS_NAME", "router-7"),
            ("HERALD_SUBJECT_PREFIX", "acme.herald"),
            ("HERALD_NATS_PING_INTERVAL_MS", "20000"),
        ])
        .unwrap();
        assert_eq!(nats.bus.ping_interval, Duration::from_secs(20));
        assert_eq!(nats.bus.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(nats.bus.name, "router-7");
        assert_eq!(nats.subjects.prefix(), "acme.herald");
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        assert_eq!(
            error(&[("HERALD_SUBJECT_PREFIX", "a.*")]),
            r#"bad setting HERALD_SUBJECT_PREFIX="a.*" (from environment): expected a NATS subject prefix: dot-separated tokens of A-Z a-z 0-9 _ -"#
        );
        assert_eq!(
            error(&[("HERALD_NATS_URL", " , ")]),
            r#"bad setting HERALD_NATS_URL=" , " (from environment): expected one or more NATS URLs, comma-separated"#
        );
    }

    #[tokio::test]
    async fn a_url_the_bus_client_refuses_is_a_bad_setting() {
        let settings = Settings::new(Flags::<NatsOnly>::default(), fixed_env(&[("HERALD_NATS_URL", "http://x")]), None);
        let nats = Nats::read(&settings, "herald-test").unwrap();
        let error = connect(&settings, &nats.bus).await.unwrap_err().to_string();
        assert!(error.starts_with(r#"bad setting HERALD_NATS_URL="http://x" (from environment): "#), "{error}");
    }
}
