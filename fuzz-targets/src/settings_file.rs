//! The settings file (`--config`, `HERALD_CONFIG`): TOML an operator wrote,
//! read by `herald_settings::ConfigFile` for `herald edge`, `herald router`
//! or `herald dev` (the input's first byte picks which), then every setting
//! of that command read from it through `Settings`.
//!
//! - Reading never panics; a refusal is a `SettingError` whose message is
//!   one line, as the crate promises operators.
//! - Every setting of the command reads as its type or is refused with one
//!   line naming its `HERALD_` variable.
//! - The Pusher apps (`[[pusher.apps]]`, every command reads them) are
//!   checked together as the binary checks them: refused in one line, or
//!   each app found by its id and its key, its channels and groups reading
//!   back.

use std::path::Path;

use herald_proto::pusher::app::Apps;
use herald_settings::{
    ConfigFile, Flags, SettingError, SettingList, Settings, Spec, dev, edge, logging, nats, pusher, router,
};

/// The groups each command reads, as `services/herald` lists them.
struct Edge;
impl SettingList for Edge {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::CONNECTION,
        nats::SUBJECTS,
        edge::SETTINGS,
        edge::SESSIONS,
        pusher::APPS,
    ];
}
struct Router;
impl SettingList for Router {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::CONNECTION,
        nats::SUBJECTS,
        router::SETTINGS,
        router::ROUTES,
        router::TUNING,
        router::PUSH_PORT,
        pusher::APPS,
    ];
}
struct Dev;
impl SettingList for Dev {
    const GROUPS: &'static [&'static [&'static Spec]] = &[
        logging::FILTER,
        logging::FORMAT,
        nats::SUBJECTS,
        dev::SETTINGS,
        edge::SESSIONS,
        router::ROUTES,
        router::TUNING,
        router::PUSH_PORT,
        pusher::APPS,
    ];
}

/// Reads each setting, checking what a refusal says.
macro_rules! read_each {
    ($settings:expr; $($setting:path),+ $(,)?) => {
        $(
            if let Err(error) = $settings.get(&$setting) {
                let message = check(error);
                assert!(message.contains(&$setting.spec.env_var()), "{message:?} does not name the setting");
            }
        )+
    };
}

pub fn run(data: &[u8]) {
    let Some((&command, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match command % 3 {
        0 => {
            let Some(settings) = read::<Edge>(text) else { return };
            let s = &settings;
            read_each!(s; logging::LOG, logging::LOG_FORMAT, nats::NATS_URL, nats::NATS_NAME,
                nats::SUBJECT_PREFIX, edge::LISTEN, edge::JWT_SECRET, edge::JWT_PUBLIC_KEY_FILE,
                edge::ALLOW_ANONYMOUS);
            sessions(s);
            pusher_apps(s);
        }
        1 => {
            let Some(settings) = read::<Router>(text) else { return };
            let s = &settings;
            read_each!(s; logging::LOG, logging::LOG_FORMAT, nats::NATS_URL, nats::NATS_NAME,
                nats::SUBJECT_PREFIX, router::LISTEN, router::API_KEY);
            router_shared(s);
            pusher_apps(s);
        }
        _ => {
            let Some(settings) = read::<Dev>(text) else { return };
            let s = &settings;
            read_each!(s; logging::LOG, logging::LOG_FORMAT, nats::SUBJECT_PREFIX, dev::LISTEN,
                dev::JWT_SECRET, dev::ALLOW_ANONYMOUS, dev::API_KEY);
            sessions(s);
            router_shared(s);
            pusher_apps(s);
        }
    }
}

fn sessions(s: &Settings) {
    read_each!(s; edge::JWT_AUDIENCE, edge::JWT_ISSUER, edge::ALLOWED_ORIGINS, edge::MAX_MESSAGE_BYTES,
        edge::MAILBOX_CAPACITY, edge::RATE_LIMIT_PER_SEC, edge::RATE_LIMIT_BURST, edge::RATE_LIMIT_STRIKES,
        edge::MAX_INFLIGHT_ACTIONS, edge::PING_INTERVAL_MS, edge::PONG_TIMEOUT_MS, edge::REAUTH_GRACE_MS,
        edge::SLOW_CONSUMER_GRACE_MS, edge::DRAIN_TIMEOUT_MS, edge::ACTION_TIMEOUT_MS);
}

fn router_shared(s: &Settings) {
    read_each!(s; router::ROUTES_FILE, router::WEBHOOK_SECRET, router::ROUTER_MAX_INFLIGHT,
        router::MAX_API_BODY_BYTES, router::PRESENCE_TIMEOUT_MS, router::PUSH_PORT_LISTEN,
        router::PUSH_PORT_MAX_CONNECTIONS);
}

fn pusher_apps(s: &Settings) {
    read_each!(s; pusher::PUSHER_APP_ID, pusher::PUSHER_KEY, pusher::PUSHER_SECRET, pusher::PUSHER_WEBHOOK_URL,
        pusher::PUSHER_APPS);
    let Ok(Some(listed)) = s.given(&pusher::PUSHER_APPS) else { return };
    let apps = match Apps::new(listed) {
        Ok(apps) => apps,
        Err(bad) => {
            let message = bad.to_string();
            assert!(!message.contains(['\n', '\r']), "not one line: {message:?}");
            return;
        }
    };
    for app in apps.iter() {
        assert_eq!(apps.by_id(&app.id).map(|found| &found.key), Some(&app.key));
        assert_eq!(apps.by_key(&app.key).map(|found| &found.id), Some(&app.id));
        assert_eq!(app.channel(&app.group("presence-room")), Some("presence-room"));
    }
}

/// Reads `text` as command `L`'s file: `None` when it is refused.
fn read<L: SettingList>(text: &str) -> Option<Settings> {
    match ConfigFile::parse(Path::new("herald.toml"), text, L::GROUPS) {
        Ok(file) => Some(Settings::new(Flags::<L>::default(), |_| None, Some(file))),
        Err(error) => {
            check(error);
            None
        }
    }
}

/// A refusal's message, checked to be one line.
fn check(error: SettingError) -> String {
    let message = error.to_string();
    assert!(!message.is_empty() && !message.contains(['\n', '\r']), "not one line: {message:?}");
    message
}
