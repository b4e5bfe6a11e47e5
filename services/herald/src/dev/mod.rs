//! `herald dev`: everything in one process, on one port, without NATS.
//!
//! An edge, a router core, the example handlers (echo, chat, expiry) and the
//! demo page share one in-process bus ([`Bus::local`]) and the edge's port.
//! They are the same edge and router code as deployed, so every behaviour
//! of the contract holds; only the bus differs. The edge serves `/ws`,
//! `/healthz`, `/readyz` and `/metrics`; everything else goes to the
//! [`site`]: the demo page, the JavaScript SDK, `/dev/token` and the
//! backend API (`/api/*`).
//!
//! Clients' actions are routed by the built-in [`ROUTES`] (shown by
//! `herald dev --help`). The token secret and the API key are made up at
//! each start unless given, and the API key is printed with a token to start
//! with ([`banner`]); `/dev/token?user=<name>` hands out more.
//!
//! It serves a Pusher app too (the one given, or [`DEV_PUSHER_APP_ID`]),
//! and prints the `.env` lines and the `new Echo({...})` call that point a
//! Laravel app at it.
//!
//! The session-expiry example runs too, for completeness, but nothing in
//! the process sends it notices: backends reach it over NATS only.

mod banner;
mod site;
mod token;

use futures_util::future::try_join_all;
use herald_bus::Bus;
use herald_edge::{Edge, EdgeConfig, JwtKey};
use herald_examples::Example;
use herald_proto::pusher::app::{App, Apps};
use herald_proto::subject::Subjects;
use herald_router::{MAX_ROUTE_TIMEOUT, RouteTable, RouterConfig, RouterCore};
use herald_settings::dev::{ALLOW_ANONYMOUS, API_KEY, JWT_SECRET, LISTEN};
use herald_settings::{Setting, SettingError, SettingList, Settings, Spec, history, logging, nats};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::Failure;
use crate::edge::{self, Own};
use crate::router;
use crate::signal::{self, Signals};

use self::token::Tokens;

/// The routes `herald dev` runs with unless given a routes file, as a routes
/// file would say them: the echo and chat examples, and chat is told when a
/// connection goes so its rooms hear of it. The subjects are the examples' (a
/// test keeps them so). The examples run either way, so a routes file of
/// one's own may still send actions to them.
pub const ROUTES: &str = r#"[[routes]]
action = "echo"
nats = "examples.echo"

[[routes]]
action = "chat/*"
nats = "examples.chat"

[[routes]]
action = "$disconnect"
nats = "examples.chat"
"#;

/// `herald dev --help`'s closing words: the built-in routes.
pub fn help() -> String {
    format!("Without --routes-file, client actions are routed as this routes file would say:\n\n{ROUTES}")
}

/// The `herald dev` command: logging, the subject prefix, its own settings,
/// and the edge's and the router's shared ones. It reads no NATS settings:
/// it has no NATS.
#[derive(Debug)]
pub struct DevCommand;

impl SettingList for DevCommand {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::SUBJECTS,
        herald_settings::dev::SETTINGS,
        herald_settings::edge::SESSIONS,
        herald_settings::router::ROUTES,
        herald_settings::router::TUNING,
        herald_settings::router::PUSH_PORT,
        herald_settings::pusher::APPS,
        history::RECOVERY,
    ];
}

/// Why `herald dev` refuses `HERALD_HISTORY`.
const NO_HISTORY: &str = "herald dev keeps no history: its in-process bus has no JetStream to store it in, \
     so missed-message recovery needs herald edge on nats-server -js (PROTOCOL 5.25); unset HERALD_HISTORY";

/// The Pusher app `herald dev` serves when none is given: a Laravel app's
/// `PUSHER_APP_ID` and `PUSHER_APP_KEY`; its secret is made up at each
/// start, like the token secret and the API key.
pub const DEV_PUSHER_APP_ID: &str = "herald-dev";
/// See [`DEV_PUSHER_APP_ID`].
pub const DEV_PUSHER_KEY: &str = "herald-dev-key";

/// Everything `herald dev` runs with, read and checked.
#[derive(Debug)]
pub struct DevSettings {
    /// The edge's configuration; its key is [`DevSettings::jwt_secret`].
    pub edge: EdgeConfig,
    /// The router's configuration, with the routes file's routes or else
    /// [`ROUTES`]. Its API is served on the edge's port.
    pub router: RouterConfig,
    /// Signs dev tokens, and the edge verifies them with it.
    pub jwt_secret: String,
}

impl DevSettings {
    /// Reads and checks every setting, stopping at the first bad one.
    pub fn read(settings: &Settings) -> Result<DevSettings, SettingError> {
        let subjects = settings.get(&nats::SUBJECT_PREFIX)?;
        let jwt_secret = given_or_random(settings, &JWT_SECRET)?;
        let key = JwtKey::hs256(jwt_secret.as_bytes()).expect("a given or random secret is never empty");
        let own = Own { listen: settings.get(&LISTEN)?, allow_anonymous: settings.get(&ALLOW_ANONYMOUS)? };
        let mut edge = edge::read_config(settings, own, subjects.clone(), Some(key))?;
        // Listed so that asking for it gets this answer, not an unknown flag
        // or a variable silently ignored.
        if edge.history.kinds.any() {
            return Err(settings.refused(&history::HISTORY, NO_HISTORY));
        }
        let routes = RouteTable::parse(ROUTES).expect("the built-in routes are valid (a test checks them)");
        let mut router = RouterConfig::new(edge.listen, given_or_random(settings, &API_KEY)?, routes);
        router.subjects = subjects;
        router::read_routes(settings, &mut router)?;
        router::tune(settings, &mut router)?;
        router.pusher_apps = pusher_apps(settings)?;
        // The edge lets Pusher clients of the same apps in on `/app/<key>`.
        edge.pusher_apps = router.pusher_apps.clone();
        Ok(DevSettings { edge, router, jwt_secret })
    }
}

/// The Pusher apps given, or else the dev app ([`DEV_PUSHER_APP_ID`]) with
/// a random secret, so a Laravel app can be pointed at `herald dev` at once.
fn pusher_apps(settings: &Settings) -> Result<Apps, SettingError> {
    let apps = crate::pusher::read_apps(settings)?;
    if !apps.is_empty() {
        return Ok(apps);
    }
    let secret = random_hex();
    Ok(Apps::new(vec![App::new(DEV_PUSHER_APP_ID, DEV_PUSHER_KEY, &secret)]).expect("the dev app is a valid app"))
}

/// The value of `setting`, or, when it is not given, 32 random bytes in
/// hex: a secret nobody else knows, new at each start.
fn given_or_random(settings: &Settings, setting: &Setting<String>) -> Result<String, SettingError> {
    Ok(settings.given(setting)?.unwrap_or_else(random_hex))
}

/// 32 random bytes in hex.
fn random_hex() -> String {
    let mut bytes = [0; 32];
    // As for connection ids: a system without randomness cannot run Herald.
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    hex::encode(bytes)
}

/// Runs `herald dev` until SIGTERM or SIGINT. Then the edge drains (its
/// clients are closed with 1012), and once its sessions are gone the router
/// and the examples finish what they took and stop.
pub async fn run(settings: &Settings) -> Result<(), Failure> {
    let DevSettings { edge: edge_config, router: router_config, jwt_secret } = DevSettings::read(settings)?;
    let signals = Signals::listen().map_err(Failure::Signals)?;
    // Caught from here on, as in `herald router`: SIGHUP reloads the routes
    // file, and must not kill the process before.
    let hangups = signal(SignalKind::hangup()).map_err(Failure::Signals)?;
    let bus = Bus::local();
    let tokens = Tokens::new(&jwt_secret, &edge_config.auth);
    let (subjects, api_key) = (edge_config.subjects.clone(), router_config.api_key.clone());
    let pusher_app = router_config.pusher_apps.iter().next().cloned().expect("herald dev always serves a Pusher app");
    // The edge's drain, then the actions still in flight.
    let drain_limit = edge_config.timing.drain_timeout + MAX_ROUTE_TIMEOUT;
    let routes_file = router_config.routes_file.clone();
    let core = RouterCore::start(router_config, bus.clone()).await.map_err(router::failure)?;
    let _reloads = routes_file.map(|file| {
        tracing::info!("routes from {} (SIGHUP reloads them)", file.display());
        AbortOnDropHandle::new(tokio::spawn(router::reload_on_hangup(hangups, core.reloader())))
    });
    let site = site::fallback(site::app(tokens.clone()).merge(core.app()));
    let edge = Edge::bind(edge_config, bus.clone()).await.map_err(Failure::Edge)?.serve_also(site);
    let addr = edge.local_addr();
    tracing::info!("dev server listening on http://{addr}");
    banner::print(addr, &tokens, &api_key, &pusher_app);
    let serving = signal::serve_until_signalled(signals, drain_limit, |shutdown| async move {
        let stop = CancellationToken::new();
        let edge_serving = async {
            edge.run(shutdown.requested()).await;
            stop.cancel();
            Ok(())
        };
        let router_serving = async {
            core.run(stop.cancelled()).await;
            Ok(())
        };
        // In this order: on the in-process bus an example subscribes the
        // first time it is polled, so it is there before the edge takes its
        // first client, whose first action would otherwise find no handler.
        tokio::try_join!(biased; serve_examples(&bus, &subjects, &stop), router_serving, edge_serving).map(drop)
    });
    serving.await.map_err(Failure::Stopped)?
}

/// Serves every example until `stop` is cancelled, then lets them finish.
async fn serve_examples(bus: &Bus, subjects: &Subjects, stop: &CancellationToken) -> Result<(), Failure> {
    let examples = Example::ALL.map(|example| async move {
        example.serve(bus, subjects, stop.cancelled()).await.map_err(|source| Failure::Example { example, source })
    });
    try_join_all(examples).await.map(drop)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use herald_edge::{Limits, OriginPolicy, Timing};
    use herald_examples::{chat, echo};
    use herald_router::routes::Handler;

    use herald_settings::{ConfigFile, Flags, fixed_env};

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<DevSettings, SettingError> {
        DevSettings::read(&Settings::new(Flags::<DevCommand>::default(), fixed_env(vars), None))
    }

    #[test]
    fn the_defaults_serve_locally_take_anyone_and_are_the_libraries_defaults() {
        let DevSettings { edge, router, .. } = read(&[]).unwrap();
        assert_eq!(edge.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(edge.subjects, Subjects::default());
        assert!(edge.auth.key.is_some() && edge.auth.allow_anonymous);
        assert_eq!((edge.auth.audience, edge.auth.issuer), (None, None));
        assert_eq!(edge.origins, OriginPolicy::Any);
        assert_eq!(format!("{:?}", edge.limits), format!("{:?}", Limits::default()));
        assert_eq!(format!("{:?}", edge.timing), format!("{:?}", Timing::default()));
        let library = RouterConfig::new(edge.listen, String::new(), RouteTable::default());
        assert_eq!(router.subjects, Subjects::default());
        assert_eq!(router.routes, RouteTable::parse(ROUTES).unwrap());
        assert_eq!((router.routes_file, router.webhook_secret), (None, None));
        assert_eq!(router.max_inflight, library.max_inflight);
        assert_eq!(router.max_body_bytes, library.max_body_bytes);
        assert_eq!(router.presence_timeout, library.presence_timeout);
    }

    #[test]
    fn history_is_refused_in_one_line_that_says_why() {
        assert!(!read(&[("HERALD_HISTORY", "off")]).unwrap().edge.history.kinds.any());
        let error = read(&[("HERALD_HISTORY", "users,groups")]).unwrap_err().to_string();
        assert!(error.starts_with(r#"bad setting HERALD_HISTORY="users,groups""#), "{error}");
        assert!(error.contains("herald dev keeps no history") && error.contains("nats-server -js"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn the_secret_and_the_api_key_are_random_at_each_start() {
        let (first, second) = (read(&[]).unwrap(), read(&[]).unwrap());
        for value in [&first.jwt_secret, &first.router.api_key, &second.jwt_secret, &second.router.api_key] {
            assert_eq!(value.len(), 64, "{value}");
            assert!(value.chars().all(|c| c.is_ascii_hexdigit()), "{value}");
        }
        assert_ne!(first.jwt_secret, second.jwt_secret);
        assert_ne!(first.router.api_key, second.router.api_key);
        assert_ne!(first.jwt_secret, first.router.api_key);
    }

    #[test]
    fn reads_every_setting() {
        let settings = read(&[
            ("HERALD_LISTEN", "0.0.0.0:9000"),
            ("HERALD_SUBJECT_PREFIX", "acme.herald"),
            ("HERALD_JWT_SECRET", "s3cret"),
            ("HERALD_API_KEY", "k3y"),
            ("HERALD_ALLOW_ANONYMOUS", "false"),
            ("HERALD_JWT_AUDIENCE", "app"),
            ("HERALD_MAX_MESSAGE_BYTES", "1024"),
            ("HERALD_DRAIN_TIMEOUT_MS", "0"),
            ("HERALD_PRESENCE_TIMEOUT_MS", "250"),
        ])
        .unwrap();
        let DevSettings { edge, router, jwt_secret } = settings;
        assert_eq!(edge.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!((edge.subjects.prefix(), router.subjects.prefix()), ("acme.herald", "acme.herald"));
        assert_eq!((jwt_secret.as_str(), router.api_key.as_str()), ("s3cret", "k3y"));
        assert!(!edge.auth.allow_anonymous);
        assert_eq!(edge.auth.audience.as_deref(), Some("app"));
        assert_eq!(edge.limits.max_message_bytes, 1024);
        assert_eq!(edge.timing.drain_timeout, Duration::ZERO);
        assert_eq!(router.presence_timeout, Duration::from_millis(250));
    }

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn a_routes_file_replaces_the_example_routes_and_the_push_port_may_open() {
        let file = fixture("routes-http.toml");
        let settings = read(&[
            ("HERALD_ROUTES_FILE", &file),
            ("HERALD_WEBHOOK_SECRET", "wh"),
            ("HERALD_PUSH_PORT_LISTEN", "127.0.0.1:0"),
        ])
        .unwrap();
        let router = settings.router;
        assert_eq!(router.routes, RouteTable::load(Path::new(&file)).unwrap());
        assert_eq!(router.routes_file.as_deref(), Some(Path::new(&file)));
        assert_eq!(router.webhook_secret.as_deref(), Some(&b"wh"[..]));
        let push_port = router.push_port.unwrap();
        assert_eq!((push_port.listen, push_port.max_connections), ("127.0.0.1:0".parse().unwrap(), 1024));
        let error = read(&[("HERALD_ROUTES_FILE", "/nonexistent/routes.toml")]).unwrap_err().to_string();
        assert!(error.starts_with(r#"bad setting HERALD_ROUTES_FILE="/nonexistent/routes.toml""#), "{error}");
    }

    #[tokio::test]
    async fn http_routes_without_a_webhook_secret_are_a_missing_setting() {
        let settings = read(&[("HERALD_ROUTES_FILE", &fixture("routes-http.toml"))]).unwrap();
        let error = RouterCore::start(settings.router, Bus::local()).await.map_err(router::failure).unwrap_err();
        assert!(matches!(error, Failure::Settings(_)), "{error:?}");
        assert!(error.to_string().starts_with("missing setting HERALD_WEBHOOK_SECRET: "), "{error}");
    }

    #[test]
    fn a_pusher_app_is_served_the_given_one_or_the_dev_one() {
        let dev = read(&[]).unwrap();
        assert_eq!(
            dev.edge.pusher_apps.by_key(DEV_PUSHER_KEY).unwrap().secret,
            dev.router.pusher_apps.by_key(DEV_PUSHER_KEY).unwrap().secret
        );
        let apps = dev.router.pusher_apps;
        let app = apps.by_id(DEV_PUSHER_APP_ID).expect("the dev app");
        assert_eq!((app.key.as_str(), app.secret.len()), (DEV_PUSHER_KEY, 64));
        assert_ne!(app.secret, read(&[]).unwrap().router.pusher_apps.by_key(DEV_PUSHER_KEY).unwrap().secret);
        let given = [("HERALD_PUSHER_APP_ID", "7"), ("HERALD_PUSHER_KEY", "k"), ("HERALD_PUSHER_SECRET", "s")];
        let apps = read(&given).unwrap().router.pusher_apps;
        assert_eq!(apps.iter().map(|app| app.id.as_str()).collect::<Vec<_>>(), ["7"]);
        let error = read(&[("HERALD_PUSHER_KEY", "k")]).unwrap_err().to_string();
        assert!(error.starts_with("missing setting HERALD_PUSHER_APP_ID"), "{error}");
    }

    #[test]
    fn an_empty_secret_or_key_is_made_up_like_a_missing_one() {
        let settings = read(&[("HERALD_JWT_SECRET", ""), ("HERALD_API_KEY", "")]).unwrap();
        assert_eq!((settings.jwt_secret.len(), settings.router.api_key.len()), (64, 64));
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let error = read(&[("HERALD_LISTEN", "localhost")]).unwrap_err().to_string();
        assert_eq!(
            error,
            r#"bad setting HERALD_LISTEN="localhost" (from environment): expected an IP address and port, like 0.0.0.0:8080"#
        );
        let error = read(&[("HERALD_ROUTER_MAX_INFLIGHT", "0")]).unwrap_err().to_string();
        assert!(error.starts_with(r#"bad setting HERALD_ROUTER_MAX_INFLIGHT="0""#), "{error}");
    }

    #[test]
    fn there_are_no_nats_settings_to_give() {
        let error = ConfigFile::parse(Path::new("dev.toml"), "nats_url = \"nats://x:4222\"", DevCommand::GROUPS);
        assert_eq!(error.unwrap_err().to_string(), r#"unknown setting "nats_url" in config file dev.toml"#);
    }

    #[test]
    fn the_routes_lead_to_the_examples() {
        let routes = RouteTable::parse(ROUTES).unwrap();
        let handler = |action: &str| routes.route_for(action).map(|route| route.handler.clone());
        assert_eq!(handler("echo"), Some(Handler::Nats(echo::SUBJECT.to_owned())));
        assert_eq!(handler("chat/send"), Some(Handler::Nats(chat::SUBJECT.to_owned())));
        assert_eq!(handler("$disconnect"), Some(Handler::Nats(chat::SUBJECT.to_owned())));
        assert_eq!(handler("echoes"), None);
        assert!(help().ends_with(ROUTES));
    }
}
