//! A command of settings for the reader's tests: one of each kind, a
//! section (`nats`) and a setting given as an array of tables (`APPS`),
//! as the Pusher apps will be.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use serde::Deserialize;

use crate::setting::settings;
use crate::value::{boolean, comma_list, millis, socket_addr, text, whole};
use crate::{ConfigFile, Flags, SettingError, SettingList, Settings, fixed_env};

settings! {
    /// Every kind of setting.
    TEST;
    /// Address.
    LISTEN: SocketAddr = new("ADDR", "0.0.0.0:8080", socket_addr);
    /// Largest frame.
    MAX_MESSAGE_BYTES: usize = new("BYTES", "65536", whole::<usize, 256>);
    /// Anonymous.
    ALLOW_ANONYMOUS: bool = new("BOOL", "false", boolean);
    /// Ping.
    PING_INTERVAL_MS: Duration = new("MS", "25000", millis::<1>);
    /// Audience.
    JWT_AUDIENCE: String = optional("AUD", text);
    /// Secret.
    JWT_SECRET: String = secret("SECRET");
    /// Servers.
    NATS_URL: Vec<String> = new("URLS", "nats://127.0.0.1:4222", list);
    /// Name.
    NATS_NAME: String = optional("NAME", text);
    /// Apps, each with an id and a key.
    APPS: Vec<App> = optional("APPS", apps);
}

fn list(value: &str) -> Result<Vec<String>, String> {
    Ok(comma_list(value))
}

/// An entry of `APPS`.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub id: String,
    pub key: String,
}

/// `APPS` as inline TOML.
fn apps(value: &str) -> Result<Vec<App>, String> {
    crate::value::inline_tables(value, r#"apps like [{ id = "1", key = "k" }]"#)
}

/// The command.
#[derive(Debug)]
pub struct Test;

impl SettingList for Test {
    const GROUPS: &'static [&'static [&'static crate::Spec]] = &[TEST];
}

/// Parses `args` as the command's flags.
pub fn flags(args: &[&str]) -> Flags<Test> {
    let cmd = Flags::<Test>::augment_args(clap::Command::new("test"));
    let matches = cmd.try_get_matches_from(std::iter::once("test").chain(args.iter().copied())).unwrap();
    Flags::from_arg_matches(&matches).unwrap()
}

/// `text` as the config file `herald.toml`.
pub fn file(text: &str) -> Result<ConfigFile, SettingError> {
    ConfigFile::parse(Path::new("herald.toml"), text, Test::GROUPS)
}

/// The settings given by `args`, `vars` and the file `text`.
pub fn settings(args: &[&str], vars: &[(&str, &str)], text: Option<&str>) -> Settings {
    Settings::new(flags(args), fixed_env(vars), text.map(|text| file(text).unwrap()))
}
