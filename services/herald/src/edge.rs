//! `herald edge`: holds WebSocket sessions and delivers to them what backends
//! publish on NATS.
//!
//! This module turns settings into an [`EdgeConfig`] and runs the edge until
//! a shutdown signal, then lets it drain. What an edge does is
//! `herald-edge`'s business.

use herald_bus::BusConfig;
use herald_edge::{AuthConfig, Edge, EdgeConfig, HistoryConfig, JwtKey, Limits, OriginPolicy, Timing};
use herald_proto::subject::Subjects;

use crate::Failure;
use crate::nats::{self, Nats};
use crate::settings::{Raw, SettingError, SettingList, Settings, Spec, comma_list};
use crate::signal::{self, Signals};
use crate::telemetry;

/// The edge's own settings: where it listens and how it finds the key for
/// tokens. `herald dev` has its own versions of these (a local address, a
/// key it makes up, anonymous clients welcome).
pub const SETTINGS: &[Spec] = &[
    Spec::new("LISTEN", "ADDR", "0.0.0.0:8080", "Address to serve /ws, /healthz, /readyz and /metrics on"),
    Spec::secret("JWT_SECRET", "SECRET", "Shared secret verifying HS256 tokens"),
    Spec::optional("JWT_PUBLIC_KEY_FILE", "PATH", "PEM public key verifying RS256 (RSA) or ES256 (P-256) tokens"),
    Spec::new("ALLOW_ANONYMOUS", "BOOL", "false", "Let clients in without a token"),
];

/// How sessions are held: token rules, origins, limits and timers; read by
/// every role that runs an edge. Defaults match `herald-edge`'s [`Limits`]
/// and [`Timing`] defaults (a test keeps them so) and are written out here
/// so `--help` can show them.
pub const SESSIONS: &[Spec] = &[
    Spec::optional("JWT_AUDIENCE", "AUD", "Required aud claim of tokens"),
    Spec::optional("JWT_ISSUER", "ISS", "Required iss claim of tokens"),
    Spec::new("ALLOWED_ORIGINS", "ORIGINS", "*", "Origins that may open a WebSocket, comma-separated, or * for any"),
    Spec::new(
        "MAX_MESSAGE_BYTES",
        "BYTES",
        "65536",
        "Largest client frame; a bigger one closes the connection with 1009",
    ),
    Spec::new("MAILBOX_CAPACITY", "FRAMES", "256", "Frames queued for one client before it counts as slow"),
    Spec::new("RATE_LIMIT_PER_SEC", "N", "100", "Client frames per second one connection may send on average"),
    Spec::new("RATE_LIMIT_BURST", "N", "200", "Client frames one connection may send in a burst"),
    Spec::new("RATE_LIMIT_STRIKES", "N", "50", "Frames over the rate limit before the connection is closed with 1008"),
    Spec::new("MAX_INFLIGHT_ACTIONS", "N", "32", "Client actions one connection may have waiting on handlers"),
    Spec::new("PING_INTERVAL_MS", "MS", "25000", "Client silence after which the edge pings it"),
    Spec::new("PONG_TIMEOUT_MS", "MS", "10000", "Further silence after a ping before the client is dropped"),
    Spec::new("REAUTH_GRACE_MS", "MS", "30000", "Time a client has to send $auth after $reauth before 4001"),
    Spec::new("SLOW_CONSUMER_GRACE_MS", "MS", "5000", "Time a client's queue may stay full before 1013"),
    Spec::new("DRAIN_TIMEOUT_MS", "MS", "10000", "Time the drain on shutdown may take before the edge stops anyway"),
    Spec::new("ACTION_TIMEOUT_MS", "MS", "10000", "Time a client action may wait for its answer before 504"),
    Spec::new(
        "HISTORY",
        "KINDS",
        "off",
        "Subjects that keep a history for recovery: off, or users, groups (comma-separated)",
    ),
    Spec::new("HISTORY_DEPTH", "N", "100", "Messages kept per subject for recovery"),
    Spec::new("HISTORY_MAX_AGE_MS", "MS", "300000", "How long a message is kept for recovery"),
    Spec::new("HISTORY_STREAM", "NAME", "HERALD_HISTORY", "JetStream stream that keeps the history"),
    Spec::new("HISTORY_REPLICAS", "N", "1", "Replicas of the history stream"),
    Spec::new("HISTORY_MAX_READS", "N", "32", "History reads one edge makes at once"),
];

/// The `herald edge` command: its settings are logging's, NATS's and the
/// edge's.
#[derive(Debug)]
pub struct EdgeCommand;

impl SettingList for EdgeCommand {
    const TABLES: &'static [&'static [Spec]] =
        &[telemetry::SETTINGS, nats::SETTINGS, nats::SUBJECTS, SETTINGS, SESSIONS];
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
        let edge = read_config(settings, subjects, read_key(settings)?)?;
        if edge.auth.key.is_none() && !edge.auth.allow_anonymous {
            return Err(SettingError::Missing {
                name: "JWT_SECRET",
                hint: "set it (HS256) or HERALD_JWT_PUBLIC_KEY_FILE (RS256/ES256), \
                       or let clients in without a token with HERALD_ALLOW_ANONYMOUS=true"
                    .to_owned(),
            });
        }
        Ok(EdgeSettings { edge, bus })
    }
}

/// An edge's configuration from `LISTEN`, `ALLOW_ANONYMOUS` (each role has
/// its own, with its own default) and the [`SESSIONS`] settings, verifying
/// tokens with `key`, which each role finds its own way.
pub fn read_config(settings: &Settings, subjects: Subjects, key: Option<JwtKey>) -> Result<EdgeConfig, SettingError> {
    let optional = |name| settings.given(name).map(|raw| raw.value.to_owned());
    Ok(EdgeConfig {
        listen: settings.socket_addr("LISTEN")?,
        subjects,
        auth: AuthConfig {
            key,
            allow_anonymous: settings.bool("ALLOW_ANONYMOUS")?,
            audience: optional("JWT_AUDIENCE"),
            issuer: optional("JWT_ISSUER"),
        },
        origins: settings.parse("ALLOWED_ORIGINS", origin_policy)?,
        limits: Limits {
            max_message_bytes: settings.number("MAX_MESSAGE_BYTES", 256)?,
            mailbox_capacity: settings.number("MAILBOX_CAPACITY", 1)?,
            rate_per_sec: settings.number("RATE_LIMIT_PER_SEC", 1)?,
            rate_burst: settings.number("RATE_LIMIT_BURST", 1)?,
            rate_strikes: settings.number("RATE_LIMIT_STRIKES", 1)?,
            max_inflight_actions: settings.number("MAX_INFLIGHT_ACTIONS", 1)?,
        },
        timing: Timing {
            ping_interval: settings.millis("PING_INTERVAL_MS", 1)?,
            pong_timeout: settings.millis("PONG_TIMEOUT_MS", 1)?,
            reauth_grace: settings.millis("REAUTH_GRACE_MS", 1)?,
            slow_consumer_grace: settings.millis("SLOW_CONSUMER_GRACE_MS", 1)?,
            // Zero is a real choice here: close every session at once.
            drain_timeout: settings.millis("DRAIN_TIMEOUT_MS", 0)?,
            action_timeout: settings.millis("ACTION_TIMEOUT_MS", 1)?,
        },
        history: read_history(settings)?,
    })
}

/// Recovery's settings (ADR 0006).
fn read_history(settings: &Settings) -> Result<HistoryConfig, SettingError> {
    let (users, groups) = settings.parse("HISTORY", history_kinds)?;
    Ok(HistoryConfig {
        users,
        groups,
        stream: settings.parse("HISTORY_STREAM", stream_name)?,
        depth: settings.number("HISTORY_DEPTH", 1)?,
        max_age: settings.millis("HISTORY_MAX_AGE_MS", 1000)?,
        replicas: settings.number("HISTORY_REPLICAS", 1)?,
        max_reads: settings.number("HISTORY_MAX_READS", 1)?,
    })
}

/// `off`, or a comma list of `users` and `groups`.
fn history_kinds(value: &str) -> Result<(bool, bool), String> {
    let mut kinds = (false, false);
    for kind in comma_list(value) {
        match kind.as_str() {
            "off" => {}
            "users" => kinds.0 = true,
            "groups" => kinds.1 = true,
            other => {
                return Err(format!("{other:?} is not a kind of subject with history: expected off, users, groups"));
            }
        }
    }
    Ok(kinds)
}

/// A JetStream stream name: no spaces, dots, wildcards or path separators.
fn stream_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid { Ok(value.to_owned()) } else { Err(format!("{value:?} is not a stream name: use A-Z a-z 0-9 _ -")) }
}

/// The key verifying tokens, if one is given. Exactly one key setting may
/// be given.
fn read_key(settings: &Settings) -> Result<Option<JwtKey>, SettingError> {
    match (settings.given("JWT_SECRET"), settings.given("JWT_PUBLIC_KEY_FILE")) {
        (Some(secret), Some(file)) => Err(SettingError::Conflict {
            first: ("JWT_SECRET", secret.origin),
            second: ("JWT_PUBLIC_KEY_FILE", file.origin),
        }),
        (Some(secret), None) => JwtKey::hs256(secret.value.as_bytes())
            .map(Some)
            .map_err(|e| settings.bad("JWT_SECRET", secret, e.to_string())),
        (None, Some(file)) => read_public_key(settings, file).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads the PEM public key the setting `JWT_PUBLIC_KEY_FILE` names.
fn read_public_key(settings: &Settings, file: Raw<'_>) -> Result<JwtKey, SettingError> {
    let bad = |problem: String| settings.bad("JWT_PUBLIC_KEY_FILE", file.clone(), problem);
    let pem = std::fs::read(file.value).map_err(|e| bad(format!("cannot read it: {e}")))?;
    JwtKey::public_key_pem(&pem).map_err(|e| bad(e.to_string()))
}

/// `*` (or an empty value) for any origin, else a comma list of origins such as
/// `https://app.example.com`. An origin without a scheme would never match
/// what a browser sends, so it is refused rather than silently locking every
/// browser out.
fn origin_policy(value: &str) -> Result<OriginPolicy, String> {
    let origins = comma_list(value);
    if origins.is_empty() || origins == ["*"] {
        return Ok(OriginPolicy::Any);
    }
    match origins.iter().find(|origin| !origin.contains("://") || origin.contains('*')) {
        Some(bad) => Err(format!(
            "{bad:?} is not an origin: expected * or origins like https://app.example.com, comma-separated"
        )),
        None => Ok(OriginPolicy::List(origins)),
    }
}

/// Runs `herald edge` until SIGTERM or SIGINT, then drains.
pub async fn run(settings: &Settings) -> Result<(), Failure> {
    let EdgeSettings { edge: config, bus } = EdgeSettings::read(settings)?;
    let signals = Signals::listen().map_err(Failure::Signals)?;
    let bus = nats::connect(settings, &bus).await?;
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

    use super::*;
    use crate::settings::{Flags, fixed_env};

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
            error(&[anonymous, ("HERALD_PONG_TIMEOUT_MS", "10s")]),
            r#"bad setting HERALD_PONG_TIMEOUT_MS="10s" (from environment): expected a positive whole number of milliseconds"#
        );
    }

    #[test]
    fn origin_lists() {
        assert_eq!(origin_policy(""), Ok(OriginPolicy::Any));
        assert_eq!(origin_policy(" * "), Ok(OriginPolicy::Any));
        assert_eq!(
            origin_policy("https://a.example.com,http://localhost:3000"),
            Ok(OriginPolicy::List(vec!["https://a.example.com".into(), "http://localhost:3000".into()]))
        );
        assert!(origin_policy("app.example.com").unwrap_err().starts_with(r#""app.example.com" is not an origin"#));
        assert!(origin_policy("https://*.example.com").is_err());
        assert!(origin_policy("*, https://a.example.com").is_err());
        let unset = read(&[("HERALD_ALLOW_ANONYMOUS", "1"), ("HERALD_ALLOWED_ORIGINS", "")]).unwrap();
        assert_eq!(unset.edge.origins, OriginPolicy::Any);
    }
}
