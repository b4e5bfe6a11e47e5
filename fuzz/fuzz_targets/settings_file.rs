//! The settings file (`--config`, `HERALD_CONFIG`): TOML an operator wrote,
//! read by `herald_settings::ConfigFile` for `herald edge`, `herald router`
//! or `herald dev` (the input's first byte picks which), then every setting
//! of that command read from it through `Settings`.
//!
//! - Reading never panics; a refusal is a `SettingError` whose message is
//!   one line, as the crate promises operators.
//! - Every setting of the command reads as its type or is refused with one
//!   line naming its `HERALD_` variable.

#![no_main]

use std::path::Path;

use herald_settings::{ConfigFile, Flags, SettingError, SettingList, Settings, Spec, dev, edge, logging, nats, router};
use libfuzzer_sys::fuzz_target;

/// The groups each command reads, as `services/herald` lists them.
struct Edge;
impl SettingList for Edge {
    const GROUPS: &'static [&'static [&'static Spec]] =
        &[logging::FILTER, logging::FORMAT, nats::CONNECTION, nats::SUBJECTS, edge::SETTINGS, edge::SESSIONS];
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

fuzz_target!(|data: &[u8]| {
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
        }
        1 => {
            let Some(settings) = read::<Router>(text) else { return };
            let s = &settings;
            read_each!(s; logging::LOG, logging::LOG_FORMAT, nats::NATS_URL, nats::NATS_NAME,
                nats::SUBJECT_PREFIX, router::LISTEN, router::API_KEY);
            router_shared(s);
        }
        _ => {
            let Some(settings) = read::<Dev>(text) else { return };
            let s = &settings;
            read_each!(s; logging::LOG, logging::LOG_FORMAT, nats::SUBJECT_PREFIX, dev::LISTEN,
                dev::JWT_SECRET, dev::ALLOW_ANONYMOUS, dev::API_KEY);
            sessions(s);
            router_shared(s);
        }
    }
});

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
