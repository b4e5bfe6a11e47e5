//! `herald edge`: holds WebSocket sessions and delivers to them what backends
//! publish on NATS.
//!
//! This module turns settings into an [`EdgeConfig`] and runs the edge until
//! a shutdown signal, then lets it drain. What an edge does is
//! `herald-edge`'s business.

use std::net::SocketAddr;
use std::path::PathBuf;

use herald_bus::BusConfig;
use herald_edge::{AuthConfig, Edge, EdgeConfig, HistoryConfig, JwtKey, Limits, Timing};
use herald_proto::subject::Subjects;
use herald_settings::edge::{
    ACTION_TIMEOUT_MS, ALLOW_ANONYMOUS, ALLOWED_ORIGINS, DRAIN_TIMEOUT_MS, FLUSHERS, JWT_AUDIENCE, JWT_ISSUER,
    JWT_PUBLIC_KEY_FILE, JWT_SECRET, LISTEN, MAILBOX_CAPACITY, MAX_INFLIGHT_ACTIONS, MAX_MESSAGE_BYTES,
    PING_INTERVAL_MS, PONG_TIMEOUT_MS, RATE_LIMIT_BURST, RATE_LIMIT_PER_SEC, RATE_LIMIT_STRIKES, REAUTH_GRACE_MS,
    SLOW_CONSUMER_GRACE_MS,
};
use herald_settings::history::{
    HISTORY, HISTORY_DEPTH, HISTORY_MAX_AGE_MS, HISTORY_MAX_READS, HISTORY_REPLICAS, HISTORY_STREAM,
};
use herald_settings::{SettingError, SettingList, Settings, Spec, logging, nats};

use crate::Failure;
use crate::nats::{self as bus, Nats};
use crate::signal::{self, Signals};

/// The `herald edge` command: its settings are logging's, NATS's and the
/// edge's.
#[derive(Debug)]
pub struct EdgeCommand;

impl SettingList for EdgeCommand {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::CONNECTION,
        nats::SUBJECTS,
        herald_settings::edge::SETTINGS,
        herald_settings::edge::SESSIONS,
        herald_settings::pusher::APPS,
        herald_settings::history::RECOVERY,
    ];
}

/// Everything `herald edge` runs with, read and checked.
#[derive(Debug)]
pub struct EdgeSettings {
    /// The edge's configuration.
    pub edge: EdgeConfig,
    /// How to reach NATS.
    pub bus: BusConfig,
}

impl EdgeSettings {
    /// Reads and checks every edge setting, stopping at the first bad one.
    /// An edge that can let nobody in (no key, no anonymous clients) is a
    /// mistake to report at start-up, not when the first client fails.
    pub fn read(settings: &Settings) -> Result<EdgeSettings, SettingError> {
        let Nats { bus, subjects } = Nats::read(settings, "herald-edge")?;
        let own = Own { listen: settings.get(&LISTEN)?, allow_anonymous: settings.get(&ALLOW_ANONYMOUS)? };
        let edge = read_config(settings, own, subjects, read_key(settings)?)?;
        // Pusher clients need no token: an app lets them in.
        if edge.auth.key.is_none() && !edge.auth.allow_anonymous && edge.pusher_apps.is_empty() {
            return Err(SettingError::missing(
                &JWT_SECRET,
                "set it (HS256) or HERALD_JWT_PUBLIC_KEY_FILE (RS256/ES256), \
                 or let clients in without a token with HERALD_ALLOW_ANONYMOUS=true",
            ));
        }
        Ok(EdgeSettings { edge, bus })
    }
}

/// What each role that runs an edge reads from settings of its own, with
/// its own defaults (`herald dev` listens locally and lets anyone in).
#[derive(Debug)]
pub struct Own {
    /// Where the edge listens.
    pub listen: SocketAddr,
    /// Whether clients without a token are let in.
    pub allow_anonymous: bool,
}

/// An edge's configuration from the role's `own` settings and the
/// [`SESSIONS`](herald_settings::edge::SESSIONS) settings, verifying tokens with `key`,
/// which each role finds its own way.
pub fn read_config(
    settings: &Settings,
    own: Own,
    subjects: Subjects,
    key: Option<JwtKey>,
) -> Result<EdgeConfig, SettingError> {
    Ok(EdgeConfig {
        listen: own.listen,
        subjects,
        auth: AuthConfig {
            key,
            allow_anonymous: own.allow_anonymous,
            audience: settings.given(&JWT_AUDIENCE)?,
            issuer: settings.given(&JWT_ISSUER)?,
        },
        origins: settings.get(&ALLOWED_ORIGINS)?.into(),
        limits: Limits {
            max_message_bytes: settings.get(&MAX_MESSAGE_BYTES)?,
            mailbox_capacity: settings.get(&MAILBOX_CAPACITY)?,
            rate_per_sec: settings.get(&RATE_LIMIT_PER_SEC)?,
            rate_burst: settings.get(&RATE_LIMIT_BURST)?,
            rate_strikes: settings.get(&RATE_LIMIT_STRIKES)?,
            max_inflight_actions: settings.get(&MAX_INFLIGHT_ACTIONS)?,
        },
        timing: Timing {
            ping_interval: settings.get(&PING_INTERVAL_MS)?,
            pong_timeout: settings.get(&PONG_TIMEOUT_MS)?,
            reauth_grace: settings.get(&REAUTH_GRACE_MS)?,
            slow_consumer_grace: settings.get(&SLOW_CONSUMER_GRACE_MS)?,
            drain_timeout: settings.get(&DRAIN_TIMEOUT_MS)?,
            action_timeout: settings.get(&ACTION_TIMEOUT_MS)?,
        },
        pusher_apps: crate::pusher::read_apps(settings)?,
        history: read_history(settings)?,
        flushers: settings.get(&FLUSHERS)?,
    })
}

/// Recovery's settings (ADR 0012).
fn read_history(settings: &Settings) -> Result<HistoryConfig, SettingError> {
    Ok(HistoryConfig {
        kinds: settings.get(&HISTORY)?,
        stream: settings.get(&HISTORY_STREAM)?,
        depth: settings.get(&HISTORY_DEPTH)?,
        max_age: settings.get(&HISTORY_MAX_AGE_MS)?,
        replicas: settings.get(&HISTORY_REPLICAS)?,
        max_reads: settings.get(&HISTORY_MAX_READS)?,
    })
}

/// The key verifying tokens, if one is given. Exactly one key setting may
/// be given.
fn read_key(settings: &Settings) -> Result<Option<JwtKey>, SettingError> {
    match (settings.given_raw(&JWT_SECRET), settings.given_raw(&JWT_PUBLIC_KEY_FILE)) {
        (Some(secret), Some(file)) => {
            Err(SettingError::conflict((&JWT_SECRET, secret.origin), (&JWT_PUBLIC_KEY_FILE, file.origin)))
        }
        (Some(_), None) => {
            settings.given_with(&JWT_SECRET, |secret| JwtKey::hs256(secret.as_bytes()).map_err(|e| e.to_string()))
        }
        (None, Some(_)) => settings.given_with(&JWT_PUBLIC_KEY_FILE, read_public_key),
        (None, None) => Ok(None),
    }
}

/// Reads the PEM public key in `file`.
fn read_public_key(file: PathBuf) -> Result<JwtKey, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read it: {e}"))?;
    JwtKey::public_key_pem(&pem).map_err(|e| e.to_string())
}

/// Runs `herald edge` until SIGTERM or SIGINT, then drains.
pub async fn run(settings: &Settings) -> Result<(), Failure> {
    let EdgeSettings { edge: config, bus } = EdgeSettings::read(settings)?;
    let signals = Signals::listen().map_err(Failure::Signals)?;
    let bus = bus::connect(settings, &bus).await?;
    let drain_timeout = config.timing.drain_timeout;
    let edge = Edge::bind(config, bus).await.map_err(Failure::Edge)?;
    tracing::info!("edge {} listening on {}", edge.id(), edge.local_addr());
    signal::serve_until_signalled(signals, drain_timeout, |shutdown| edge.run(shutdown.requested()))
        .await
        .map_err(Failure::Stopped)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_edge::OriginPolicy;
    use herald_settings::{Flags, fixed_env};

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<EdgeSettings, SettingError> {
        EdgeSettings::read(&Settings::new(Flags::<EdgeCommand>::default(), fixed_env(vars), None))
    }

    fn error(vars: &[(&str, &str)]) -> String {
        read(vars).unwrap_err().to_string()
    }

    #[test]
    fn the_defaults_are_the_edge_libraries_defaults() {
        let settings = read(&[("HERALD_ALLOW_ANONYMOUS", "true")]).unwrap();
        let edge = settings.edge;
        assert_eq!(edge.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(edge.subjects, Subjects::default());
        assert_eq!(edge.origins, OriginPolicy::Any);
        assert!(edge.auth.key.is_none() && edge.auth.allow_anonymous);
        assert_eq!((edge.auth.audience, edge.auth.issuer), (None, None));
        assert_eq!(format!("{:?}", edge.limits), format!("{:?}", Limits::default()));
        assert_eq!(format!("{:?}", edge.timing), format!("{:?}", Timing::default()));
        assert_eq!(settings.bus.urls, ["nats://127.0.0.1:4222"]);
        assert_eq!(settings.bus.name, "herald-edge");
    }

    #[test]
    fn reads_every_setting() {
        let settings = read(&[
            ("HERALD_LISTEN", "127.0.0.1:9000"),
            ("HERALD_NATS_URL", "nats://a:4222, nats://b:4222"),
            ("HERALD_NATS_NAME", "edge-7"),
            ("HERALD_SUBJECT_PREFIX", "acme.herald"),
            ("HERALD_JWT_SECRET", "s3cret"),
            ("HERALD_JWT_AUDIENCE", "app"),
            ("HERALD_JWT_ISSUER", "https://id.example.com"),
            ("HERALD_ALLOWED_ORIGINS", "https://a.example.com, https://b.example.com"),
            ("HERALD_MAX_MESSAGE_BYTES", "1024"),
            ("HERALD_MAILBOX_CAPACITY", "8"),
            ("HERALD_RATE_LIMIT_PER_SEC", "5"),
            ("HERALD_RATE_LIMIT_BURST", "6"),
            ("HERALD_RATE_LIMIT_STRIKES", "7"),
            ("HERALD_MAX_INFLIGHT_ACTIONS", "9"),
            ("HERALD_PING_INTERVAL_MS", "100"),
            ("HERALD_PONG_TIMEOUT_MS", "200"),
            ("HERALD_REAUTH_GRACE_MS", "300"),
            ("HERALD_SLOW_CONSUMER_GRACE_MS", "400"),
            ("HERALD_DRAIN_TIMEOUT_MS", "0"),
            ("HERALD_ACTION_TIMEOUT_MS", "600"),
            ("HERALD_FLUSHERS", "3"),
        ])
        .unwrap();
        let (edge, bus) = (settings.edge, settings.bus);
        assert_eq!(edge.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(bus.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(bus.name, "edge-7");
        assert_eq!(edge.subjects.prefix(), "acme.herald");
        assert!(edge.auth.key.is_some() && !edge.auth.allow_anonymous);
        assert_eq!(edge.auth.audience.as_deref(), Some("app"));
        assert_eq!(edge.auth.issuer.as_deref(), Some("https://id.example.com"));
        let origins = vec!["https://a.example.com".to_owned(), "https://b.example.com".to_owned()];
        assert_eq!(edge.origins, OriginPolicy::List(origins));
        let limits = edge.limits;
        assert_eq!(limits.max_message_bytes, 1024);
        assert_eq!(limits.mailbox_capacity, 8);
        assert_eq!((limits.rate_per_sec, limits.rate_burst, limits.rate_strikes), (5, 6, 7));
        assert_eq!(limits.max_inflight_actions, 9);
        let timing = edge.timing;
        assert_eq!(timing.ping_interval, Duration::from_millis(100));
        assert_eq!(timing.pong_timeout, Duration::from_millis(200));
        assert_eq!(timing.reauth_grace, Duration::from_millis(300));
        assert_eq!(timing.slow_consumer_grace, Duration::from_millis(400));
        assert_eq!(timing.drain_timeout, Duration::ZERO);
        assert_eq!(timing.action_timeout, Duration::from_millis(600));
        assert_eq!(edge.flushers, 3);
    }

    #[test]
    fn a_key_is_required_unless_anonymous_clients_are_allowed() {
        assert_eq!(
            error(&[]),
            "missing setting HERALD_JWT_SECRET: set it (HS256) or HERALD_JWT_PUBLIC_KEY_FILE (RS256/ES256), \
             or let clients in without a token with HERALD_ALLOW_ANONYMOUS=true"
        );
        assert!(error(&[("HERALD_JWT_SECRET", "")]).starts_with("missing setting HERALD_JWT_SECRET: "));
        assert!(error(&[("HERALD_ALLOW_ANONYMOUS", "false")]).starts_with("missing setting HERALD_JWT_SECRET: "));
        let both = read(&[("HERALD_ALLOW_ANONYMOUS", "yes"), ("HERALD_JWT_SECRET", "s")]).unwrap();
        assert!(both.edge.auth.key.is_some() && both.edge.auth.allow_anonymous);
    }

    #[test]
    fn only_one_key_may_be_given() {
        let flags = {
            use clap::{Args, FromArgMatches};
            let cmd = Flags::<EdgeCommand>::augment_args(clap::Command::new("edge"));
            let matches = cmd.try_get_matches_from(["edge", "--jwt-public-key-file", "/k.pem"]).unwrap();
            Flags::<EdgeCommand>::from_arg_matches(&matches).unwrap()
        };
        let settings = Settings::new(flags, fixed_env(&[("HERALD_JWT_SECRET", "s3cret")]), None);
        let error = EdgeSettings::read(&settings).unwrap_err().to_string();
        assert_eq!(
            error,
            "conflicting settings HERALD_JWT_SECRET (from environment) and \
             HERALD_JWT_PUBLIC_KEY_FILE (from flag --jwt-public-key-file): set only one"
        );
        assert!(!error.contains("s3cret"));
    }

    #[test]
    fn a_public_key_file_must_be_readable_and_a_public_key() {
        let missing = error(&[("HERALD_JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem")]);
        assert!(
            missing.starts_with(
                r#"bad setting HERALD_JWT_PUBLIC_KEY_FILE="/nonexistent/key.pem" (from environment): cannot read it: "#
            ),
            "{missing}"
        );
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let error = error(&[("HERALD_JWT_PUBLIC_KEY_FILE", not_pem)]);
        assert!(error.contains("not an RSA or P-256 EC public key"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let anonymous = ("HERALD_ALLOW_ANONYMOUS", "1");
        assert_eq!(
            error(&[anonymous, ("HERALD_MAX_MESSAGE_BYTES", "abc")]),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="abc" (from environment): expected a whole number of at least 256"#
        );
        assert_eq!(
            error(&[anonymous, ("HERALD_MAILBOX_CAPACITY", "0")]),
            r#"bad setting HERALD_MAILBOX_CAPACITY="0" (from environment): expected a positive whole number"#
        );
        assert_eq!(
            error(&[anonymous, ("HERALD_FLUSHERS", "0")]),
            r#"bad setting HERALD_FLUSHERS="0" (from environment): expected a positive whole number"#
        );
        assert_eq!(
            error(&[anonymous, ("HERALD_PONG_TIMEOUT_MS", "10s")]),
            r#"bad setting HERALD_PONG_TIMEOUT_MS="10s" (from environment): expected a positive whole number of milliseconds"#
        );
    }

    #[test]
    fn origin_lists() {
        let origins = |value: &str| {
            read(&[("HERALD_ALLOW_ANONYMOUS", "1"), ("HERALD_ALLOWED_ORIGINS", value)]).map(|s| s.edge.origins)
        };
        assert_eq!(origins("").unwrap(), OriginPolicy::Any);
        assert_eq!(origins(" * ").unwrap(), OriginPolicy::Any);
        assert_eq!(
            origins("https://a.example.com,http://localhost:3000").unwrap(),
            OriginPolicy::List(vec!["https://a.example.com".into(), "http://localhost:3000".into()])
        );
        assert_eq!(
            origins("app.example.com").unwrap_err().to_string(),
            r#"bad setting HERALD_ALLOWED_ORIGINS="app.example.com" (from environment): "app.example.com" is not an origin: expected * or origins like https://app.example.com, comma-separated"#
        );
        assert!(origins("https://*.example.com").is_err());
        assert!(origins("*, https://a.example.com").is_err());
    }
}
