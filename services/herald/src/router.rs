//! `herald router`: answers client actions with the handlers the routes file
//! names, and serves the backend HTTP API.
//!
//! This module turns settings into a [`RouterConfig`], runs the router until
//! a shutdown signal, reloading its routes on each SIGHUP meanwhile, then
//! lets it drain. What a router does is `herald-router`'s business.

use std::fmt::Display;

use herald_bus::{Bus, BusConfig};
use herald_router::{PushPortConfig, RouteReloader, RouteTable, Router, RouterConfig, RouterError};
use herald_settings::router::{
    API_KEY, LISTEN, MAX_API_BODY_BYTES, PRESENCE_TIMEOUT_MS, PUSH_PORT_LISTEN, PUSH_PORT_MAX_CONNECTIONS,
    ROUTER_MAX_INFLIGHT, ROUTES_FILE, WEBHOOK_SECRET,
};
use herald_settings::{SettingError, SettingList, Settings, Spec, logging, nats};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::task::AbortOnDropHandle;

use crate::Failure;
use crate::nats::{self as bus, Nats};
use crate::signal::{self, Signals};

/// The `herald router` command: its settings are logging's, NATS's and the
/// router's.
#[derive(Debug)]
pub struct RouterCommand;

impl SettingList for RouterCommand {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::CONNECTION,
        nats::SUBJECTS,
        herald_settings::router::SETTINGS,
        herald_settings::router::ROUTES,
        herald_settings::router::TUNING,
        herald_settings::router::PUSH_PORT,
        herald_settings::pusher::APPS,
    ];
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
        let listen = settings.get(&LISTEN)?;
        let api_key = settings.given(&API_KEY)?.ok_or_else(|| {
            SettingError::missing(
                &API_KEY,
                "backends send it as Authorization: Bearer <key>; set it to a long random string",
            )
        })?;
        let mut router = RouterConfig::new(listen, api_key, RouteTable::default());
        router.subjects = subjects;
        read_routes(settings, &mut router)?;
        tune(settings, &mut router)?;
        router.pusher_apps = crate::pusher::read_apps(settings)?;
        Ok(RouterSettings { router, bus })
    }
}

/// Reads the [`ROUTES`](herald_settings::router::ROUTES) settings into
/// `router`: the routes file (loaded here, so a bad one stops start-up like
/// any other bad setting; without one, `router` keeps its routes) and the
/// webhook secret.
pub fn read_routes(settings: &Settings, router: &mut RouterConfig) -> Result<(), SettingError> {
    let loaded = settings.given_with(&ROUTES_FILE, |path| {
        RouteTable::load(&path).map(|routes| (path, routes)).map_err(|e| one_line(&e))
    })?;
    if let Some((path, routes)) = loaded {
        router.routes = routes;
        router.routes_file = Some(path);
    }
    router.webhook_secret = settings.given(&WEBHOOK_SECRET)?.map(String::into_bytes);
    Ok(())
}

/// Reads the [`TUNING`](herald_settings::router::TUNING) and
/// [`PUSH_PORT`](herald_settings::router::PUSH_PORT) settings into `router`.
pub fn tune(settings: &Settings, router: &mut RouterConfig) -> Result<(), SettingError> {
    router.max_inflight = settings.get(&ROUTER_MAX_INFLIGHT)?;
    router.max_body_bytes = settings.get(&MAX_API_BODY_BYTES)?;
    router.presence_timeout = settings.get(&PRESENCE_TIMEOUT_MS)?;
    let max_connections = settings.get(&PUSH_PORT_MAX_CONNECTIONS)?;
    router.push_port = settings.given(&PUSH_PORT_LISTEN)?.map(|listen| PushPortConfig {
        listen,
        max_connections,
        // A line is a backend's API call, so the API's bound holds.
        max_line_bytes: router.max_body_bytes,
    });
    Ok(())
}

/// `error` in one line. TOML syntax errors show the offending line over
/// several, which would break the one-line start-up error and log line.
fn one_line(error: &impl Display) -> String {
    error.to_string().lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Binds the router.
async fn bind(config: RouterConfig, bus: Bus) -> Result<Router, Failure> {
    Router::bind(config, bus).await.map_err(failure)
}

/// A router that could not start, as a failure of the role. `herald-router`
/// is the judge of whether the routes need a webhook secret; when it says
/// they do, that is a missing setting.
pub fn failure(error: RouterError) -> Failure {
    match error {
        RouterError::MissingWebhookSecret => Failure::Settings(SettingError::missing(
            &WEBHOOK_SECRET,
            "the routes call HTTP handlers, and requests to them are signed with it; \
             set it to a long random string the handlers also know",
        )),
        e => Failure::Router(e),
    }
}

/// Reloads the routes file on every SIGHUP. A refused file leaves the
/// router on the table it has, so a typo never takes a running router down.
pub async fn reload_on_hangup(mut hangups: Signal, reloader: RouteReloader) {
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
    let bus = bus::connect(settings, &bus).await?;
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
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use herald_proto::subject::Subjects;
    use herald_settings::{Flags, fixed_env};

    use super::*;

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
        let bus = bus::connect(&settings, &bus).await.unwrap();
        let error = bind(router, bus).await.unwrap_err();
        assert!(matches!(error, Failure::Settings(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "missing setting HERALD_WEBHOOK_SECRET: the routes call HTTP handlers, and requests to them are \
             signed with it; set it to a long random string the handlers also know"
        );
    }
}
