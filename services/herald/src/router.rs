//! `herald router`: answers client actions with the handlers the routes file
//! names, and serves the backend HTTP API.
//!
//! This module turns settings into a [`RouterConfig`], runs the router until
//! a shutdown signal, reloading its routes on each SIGHUP meanwhile, then
//! lets it drain. What a router does is `herald-router`'s business.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use herald_bus::{Bus, BusConfig};
use herald_router::{RouteReloader, RouteTable, Router, RouterConfig, RouterError};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::task::AbortOnDropHandle;

use crate::Failure;
use crate::nats::{self, Nats};
use crate::settings::{SettingError, SettingList, Settings, Spec};
use crate::signal::{self, Signals};
use crate::telemetry;

/// The router's own settings: where it listens, its key and its routes.
/// Defaults here and in [`TUNING`] match [`RouterConfig::new`]'s (a test
/// keeps them so) and are written out so `--help` can show them.
pub const SETTINGS: &[Spec] = &[
    Spec::new("LISTEN", "ADDR", "0.0.0.0:8081", "Address to serve /api/*, /healthz, /readyz and /metrics on"),
    Spec::secret("API_KEY", "KEY", "Key backends send as Authorization: Bearer <key> to call /api/* (required)"),
    Spec::optional(
        "ROUTES_FILE",
        "PATH",
        "TOML file mapping client actions to handlers, re-read on SIGHUP; without it every action gets 404",
    ),
    Spec::secret(
        "WEBHOOK_SECRET",
        "SECRET",
        "Key signing requests to HTTP handlers (Herald-Signature); required when a route is http",
    ),
];

/// How much a router takes on and how long it waits; read by every role
/// that runs a router.
pub const TUNING: &[Spec] = &[
    Spec::new("ROUTER_MAX_INFLIGHT", "N", "10000", "Handler requests worked on at once; more are answered 503"),
    Spec::new("MAX_API_BODY_BYTES", "BYTES", "1048576", "Largest backend API request body; a bigger one gets 413"),
    Spec::new("PRESENCE_TIMEOUT_MS", "MS", "500", "Time a presence query waits for the edges' answers"),
];

/// The `herald router` command: its settings are logging's, NATS's and the
/// router's.
#[derive(Debug)]
pub struct RouterCommand;

impl SettingList for RouterCommand {
    const TABLES: &'static [&'static [Spec]] = &[telemetry::SETTINGS, nats::SETTINGS, nats::SUBJECTS, SETTINGS, TUNING];
}

/// Everything `herald router` runs with, read and checked.
#[derive(Debug)]
pub struct RouterSettings {
    /// The router's configuration, its routes loaded.
    pub router: RouterConfig,
    /// How to reach NATS.
    pub bus: BusConfig,
}

impl RouterSettings {
    /// Reads and checks every router setting, stopping at the first bad one.
    /// The routes file is read here, so a bad one stops start-up like any
    /// other bad setting.
    pub fn read(settings: &Settings) -> Result<RouterSettings, SettingError> {
        let Nats { bus, subjects } = Nats::read(settings, "herald-router")?;
        let listen = settings.socket_addr("LISTEN")?;
        let api_key = settings.given("API_KEY").ok_or_else(|| SettingError::Missing {
            name: "API_KEY",
            hint: "backends send it as Authorization: Bearer <key>; set it to a long random string".to_owned(),
        })?;
        let routes_file = settings.given("ROUTES_FILE");
        let routes = match &routes_file {
            Some(file) => RouteTable::load(Path::new(file.value))
                .map_err(|e| settings.bad("ROUTES_FILE", file.clone(), one_line(&e)))?,
            None => RouteTable::default(),
        };
        let mut router = RouterConfig::new(listen, api_key.value.to_owned(), routes);
        router.subjects = subjects;
        router.routes_file = routes_file.map(|file| PathBuf::from(file.value));
        router.webhook_secret = settings.given("WEBHOOK_SECRET").map(|secret| secret.value.as_bytes().to_vec());
        tune(settings, &mut router)?;
        Ok(RouterSettings { router, bus })
    }
}

/// Reads the [`TUNING`] settings into `router`.
pub fn tune(settings: &Settings, router: &mut RouterConfig) -> Result<(), SettingError> {
    router.max_inflight = settings.number("ROUTER_MAX_INFLIGHT", 1)?;
    router.max_body_bytes = settings.number("MAX_API_BODY_BYTES", 1024)?;
    router.presence_timeout = settings.millis("PRESENCE_TIMEOUT_MS", 1)?;
    Ok(())
}

/// `error` in one line. TOML syntax errors show the offending line over
/// several, which would break the one-line start-up error and log line.
fn one_line(error: &impl Display) -> String {
    error.to_string().lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Binds the router. `herald-router` is the judge of whether the routes
/// need a webhook secret; when it says they do, that is a missing setting.
async fn bind(config: RouterConfig, bus: Bus) -> Result<Router, Failure> {
    Router::bind(config, bus).await.map_err(|e| match e {
        RouterError::MissingWebhookSecret => Failure::Settings(SettingError::Missing {
            name: "WEBHOOK_SECRET",
            hint: "the routes call HTTP handlers, and requests to them are signed with it; \
                   set it to a long random string the handlers also know"
                .to_owned(),
        }),
        e => Failure::Router(e),
    })
}

/// Reloads the routes file on every SIGHUP. A refused file leaves the
/// router on the table it has, so a typo never takes a running router down.
async fn reload_on_hangup(mut hangups: Signal, reloader: RouteReloader) {
    while hangups.recv().await.is_some() {
        match reloader.reload() {
            Ok(()) => tracing::info!("routes reloaded"),
            Err(e) => tracing::warn!("routes reload refused, keeping the old table: {}", one_line(&e)),
        }
    }
}

/// Runs `herald router` until SIGTERM or SIGINT, then drains: it leaves the
/// routers' queue group (the other routers take the new requests) and
/// finishes the requests it has.
pub async fn run(settings: &Settings) -> Result<(), Failure> {
    let RouterSettings { router: config, bus } = RouterSettings::read(settings)?;
    let mut signals = Signals::listen().map_err(Failure::Signals)?;
    // Caught from here on, like the shutdown signals: a SIGHUP's default is
    // to kill the process, which an early reload must not do.
    let hangups = signal(SignalKind::hangup()).map_err(Failure::Signals)?;
    let bus = nats::connect(settings, &bus).await?;
    // What a draining router waits for: handler requests, within their
    // routes' timeouts, and presence queries, within theirs.
    let drain_limit = herald_router::MAX_ROUTE_TIMEOUT.max(config.presence_timeout);
    // Binding subscribes, which waits for NATS however long it is down; an
    // operator must still be able to stop the router meanwhile.
    let Some(router) = signal::start_unless_signalled(&mut signals, bind(config, bus)).await else {
        return Ok(());
    };
    let router = router?;
    tracing::info!("router listening on {}", router.local_addr());
    // Reloads until the router has stopped.
    let _reloads = AbortOnDropHandle::new(tokio::spawn(reload_on_hangup(hangups, router.reloader())));
    signal::serve_until_signalled(signals, drain_limit, |shutdown| router.run(shutdown.requested()))
        .await
        .map_err(Failure::Stopped)
}

#[cfg(test)]
mod tests {
    use herald_proto::subject::Subjects;

    use super::*;
    use crate::settings::{Flags, fixed_env};
    use std::time::Duration;

    /// A routes file of `tests/fixtures`.
    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn settings(vars: &[(&str, &str)]) -> Settings {
        Settings::new(Flags::<RouterCommand>::default(), fixed_env(vars), None)
    }

    fn read(vars: &[(&str, &str)]) -> Result<RouterSettings, SettingError> {
        RouterSettings::read(&settings(vars))
    }

    fn error(vars: &[(&str, &str)]) -> String {
        read(vars).unwrap_err().to_string()
    }

    const KEY: (&str, &str) = ("HERALD_API_KEY", "k3y");

    #[test]
    fn the_defaults_are_the_router_libraries_defaults() {
        let settings = read(&[KEY]).unwrap();
        let router = settings.router;
        let library = RouterConfig::new(router.listen, "k3y".to_owned(), RouteTable::default());
        assert_eq!(router.listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(router.api_key, "k3y");
        assert_eq!(router.subjects, Subjects::default());
        // No routes: every action is answered 404, and there is nothing to reload.
        assert_eq!((router.routes, router.routes_file), (RouteTable::default(), None));
        assert_eq!(router.webhook_secret, None);
        assert_eq!(router.max_inflight, library.max_inflight);
        assert_eq!(router.max_body_bytes, library.max_body_bytes);
        assert_eq!(router.presence_timeout, library.presence_timeout);
        assert_eq!(settings.bus.urls, ["nats://127.0.0.1:4222"]);
        assert_eq!(settings.bus.name, "herald-router");
    }

    #[test]
    fn reads_every_setting() {
        let routes = fixture("routes.toml");
        let settings = read(&[
            ("HERALD_LISTEN", "127.0.0.1:9001"),
            ("HERALD_NATS_URL", "nats://a:4222,nats://b:4222"),
            ("HERALD_NATS_NAME", "router-7"),
            ("HERALD_SUBJECT_PREFIX", "acme.herald"),
            KEY,
            ("HERALD_ROUTES_FILE", &routes),
            ("HERALD_WEBHOOK_SECRET", "wh-s3cret"),
            ("HERALD_ROUTER_MAX_INFLIGHT", "7"),
            ("HERALD_MAX_API_BODY_BYTES", "2048"),
            ("HERALD_PRESENCE_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        let (router, bus) = (settings.router, settings.bus);
        assert_eq!(router.listen, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(bus.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(bus.name, "router-7");
        assert_eq!(router.subjects.prefix(), "acme.herald");
        assert_eq!(router.api_key, "k3y");
        assert_eq!(router.routes, RouteTable::load(Path::new(&routes)).unwrap());
        assert_eq!(router.routes.route_for("chat/send").unwrap().timeout, Duration::from_millis(2000));
        assert_eq!(router.routes_file, Some(PathBuf::from(routes)));
        assert_eq!(router.webhook_secret.as_deref(), Some(&b"wh-s3cret"[..]));
        assert_eq!(router.max_inflight, 7);
        assert_eq!(router.max_body_bytes, 2048);
        assert_eq!(router.presence_timeout, Duration::from_millis(250));
    }

    #[test]
    fn an_api_key_is_required() {
        let missing = "missing setting HERALD_API_KEY: backends send it as Authorization: Bearer <key>; \
                       set it to a long random string";
        assert_eq!(error(&[]), missing);
        assert_eq!(error(&[("HERALD_API_KEY", "")]), missing);
    }

    #[test]
    fn a_bad_routes_file_is_a_bad_setting_naming_the_route() {
        let bad = fixture("routes-bad.toml");
        assert_eq!(
            error(&[KEY, ("HERALD_ROUTES_FILE", &bad)]),
            format!(
                r#"bad setting HERALD_ROUTES_FILE="{bad}" (from environment): route 2 ("news/*"): timeout_ms: must be between 1 and 60000"#
            )
        );
        let missing = error(&[KEY, ("HERALD_ROUTES_FILE", "/nonexistent/routes.toml")]);
        assert!(
            missing.starts_with(
                r#"bad setting HERALD_ROUTES_FILE="/nonexistent/routes.toml" (from environment): cannot read routes file "#
            ),
            "{missing}"
        );
    }

    #[test]
    fn a_routes_file_that_is_not_toml_is_reported_in_one_line() {
        let error = one_line(&RouteTable::parse("[[routes]]\naction = = \"a\"\n").unwrap_err());
        assert!(error.starts_with("routes file is not valid TOML: "), "{error}");
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_bad_number_names_its_setting() {
        assert_eq!(
            error(&[KEY, ("HERALD_MAX_API_BODY_BYTES", "100")]),
            r#"bad setting HERALD_MAX_API_BODY_BYTES="100" (from environment): expected a whole number of at least 1024"#
        );
        assert_eq!(
            error(&[KEY, ("HERALD_ROUTER_MAX_INFLIGHT", "0")]),
            r#"bad setting HERALD_ROUTER_MAX_INFLIGHT="0" (from environment): expected a positive whole number"#
        );
        assert_eq!(
            error(&[KEY, ("HERALD_PRESENCE_TIMEOUT_MS", "0")]),
            r#"bad setting HERALD_PRESENCE_TIMEOUT_MS="0" (from environment): expected a positive whole number of milliseconds"#
        );
    }

    #[tokio::test]
    async fn http_routes_need_a_webhook_secret() {
        let settings = settings(&[
            KEY,
            ("HERALD_LISTEN", "127.0.0.1:0"),
            ("HERALD_ROUTES_FILE", &fixture("routes-http.toml")),
            // Nothing listens on port 1; the router refuses before it needs NATS.
            ("HERALD_NATS_URL", "nats://127.0.0.1:1"),
        ]);
        let RouterSettings { router, bus } = RouterSettings::read(&settings).unwrap();
        let bus = nats::connect(&settings, &bus).await.unwrap();
        let error = bind(router, bus).await.unwrap_err();
        assert!(matches!(error, Failure::Settings(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "missing setting HERALD_WEBHOOK_SECRET: the routes call HTTP handlers, and requests to them are \
             signed with it; set it to a long random string the handlers also know"
        );
    }
}
