//! NATS: the settings of every role that talks over it, and connecting.
//!
//! Edges and routers must agree on the servers and the subject prefix, so
//! both read them from these tables; only the connection's default name
//! differs, so NATS monitoring tells the roles apart. The subject prefix has
//! a table of its own because `herald dev`, which has no NATS, still names
//! its subjects.

use herald_bus::{Bus, BusConfig, BusError};
use herald_proto::subject::Subjects;

use crate::Failure;
use crate::settings::{SettingError, Settings, Spec, comma_list};

/// How to reach NATS, shared by every command that uses it.
pub const SETTINGS: &[Spec] = &[
    Spec::new("NATS_URL", "URLS", "nats://127.0.0.1:4222", "NATS servers, comma-separated"),
    Spec::optional("NATS_NAME", "NAME", "Connection name shown in NATS monitoring; herald-<command> when unset"),
];

/// What Herald calls its subjects, shared by every command.
pub const SUBJECTS: &[Spec] =
    &[Spec::new("SUBJECT_PREFIX", "PREFIX", "herald", "First token(s) of every NATS subject Herald uses")];

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
        let urls = settings.parse("NATS_URL", |value| {
            let urls = comma_list(value);
            if urls.is_empty() { Err("expected one or more NATS URLs, comma-separated".to_owned()) } else { Ok(urls) }
        })?;
        let name = settings.given("NATS_NAME").map_or(default_name, |raw| raw.value).to_owned();
        Ok(Nats { bus: BusConfig { urls, name }, subjects: read_subjects(settings)? })
    }
}

/// Reads and checks the subject prefix ([`SUBJECTS`]).
pub fn read_subjects(settings: &Settings) -> Result<Subjects, SettingError> {
    settings.parse("SUBJECT_PREFIX", |value| {
        Subjects::new(value)
            .map_err(|_| "expected a NATS subject prefix: dot-separated tokens of A-Z a-z 0-9 _ -".to_owned())
    })
}

/// Connects to NATS as `config` says, in the background: start-up does not
/// wait for NATS. The bus client is the judge of what a NATS URL is; what it
/// refuses is still a bad setting, reported like any other.
pub async fn connect(settings: &Settings, config: &BusConfig) -> Result<Bus, Failure> {
    Bus::connect(config).await.map_err(|e| match e {
        BusError::BadUrl { .. } => {
            let raw = settings.raw("NATS_URL").expect("NATS_URL has a default");
            Failure::Settings(settings.bad("NATS_URL", raw, e.to_string()))
        }
        e => Failure::Bus(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Flags, SettingList, fixed_env};

    struct NatsOnly;

    impl SettingList for NatsOnly {
        const TABLES: &'static [&'static [Spec]] = &[SETTINGS, SUBJECTS];
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
        // An empty name is no name: NATS monitoring would show nothing.
        assert_eq!(read(&[("HERALD_NATS_NAME", "")]).unwrap().bus.name, "herald-test");
    }

    #[test]
    fn reads_every_setting() {
        let nats = read(&[
            ("HERALD_NATS_URL", "nats://a:4222, nats://b:4222"),
            ("HERALD_NATS_NAME", "router-7"),
            ("HERALD_SUBJECT_PREFIX", "acme.herald"),
        ])
        .unwrap();
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
