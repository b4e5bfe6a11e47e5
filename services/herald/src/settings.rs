//! Settings: the one place that reads flags, `HERALD_*` variables and the
//! config file.
//!
//! Each command declares its settings in tables of [`Spec`]s. From those
//! tables come its flags (`--max-message-bytes`), the environment variables
//! it reads (`HERALD_MAX_MESSAGE_BYTES`) and the keys its config file may
//! hold (`max_message_bytes`), so the three spellings cannot drift apart.
//!
//! A value is looked up flag first, then environment, then file, then the
//! table's default. It is kept as the raw string it was given as, with where
//! it came from, and parsed only when read: a bad value is then reported in
//! one line that names the setting, the value and its origin, which is what
//! an operator needs to fix it. Flags are taken as plain strings for the same
//! reason: clap's multi-line usage errors are kept for bad command lines.
//!
//! The environment is a parameter of [`Settings::new`], so tests pass their
//! own and never touch the process's.

use std::collections::HashMap;
use std::fmt::Display;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

/// The variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "HERALD_CONFIG";

/// One setting a command reads.
#[derive(Debug)]
pub struct Spec {
    /// Upper-snake name: the environment variable without `HERALD_`.
    pub name: &'static str,
    /// Placeholder for the flag's value in `--help`.
    pub value_name: &'static str,
    /// What the setting does, for `--help`.
    pub help: &'static str,
    /// The value when the setting is given nowhere.
    pub default: Option<&'static str>,
    /// Whether the value must never be repeated in an error message.
    pub secret: bool,
}

impl Spec {
    /// A setting with a default.
    pub const fn new(name: &'static str, value_name: &'static str, default: &'static str, help: &'static str) -> Spec {
        Spec { name, value_name, help, default: Some(default), secret: false }
    }

    /// A setting that is unset unless given.
    pub const fn optional(name: &'static str, value_name: &'static str, help: &'static str) -> Spec {
        Spec { name, value_name, help, default: None, secret: false }
    }

    /// An optional setting whose value is kept out of error messages.
    pub const fn secret(name: &'static str, value_name: &'static str, help: &'static str) -> Spec {
        Spec { name, value_name, help, default: None, secret: true }
    }

    /// The setting's flag, with `--help` text naming its variable and
    /// default. clap stores the string exactly as given: defaults and the
    /// environment are applied by [`Settings`], so origins stay known.
    fn arg(&self) -> clap::Arg {
        let mut help = format!("{} [env: {}]", self.help, env_var(self.name));
        if let Some(default) = self.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        clap::Arg::new(self.name).long(flag(self.name)).value_name(self.value_name).allow_hyphen_values(true).help(help)
    }
}

/// `HERALD_<NAME>`.
fn env_var(name: &str) -> String {
    format!("HERALD_{name}")
}

/// `max-message-bytes` for `MAX_MESSAGE_BYTES`.
fn flag(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// `max_message_bytes` for `MAX_MESSAGE_BYTES`.
fn file_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A command's settings: the tables its flags, variables and file keys come
/// from. Commands share tables (logging) by listing them.
pub trait SettingList {
    /// Every setting the command reads.
    const TABLES: &'static [&'static [Spec]];
}

/// Every spec in `tables`.
fn specs(tables: &'static [&'static [Spec]]) -> impl Iterator<Item = &'static Spec> {
    tables.iter().flat_map(|table| table.iter())
}

/// The flags given for one command, one per setting of `L`.
pub struct Flags<L> {
    /// Flag values by setting name, exactly as typed.
    values: HashMap<&'static str, String>,
    /// The command whose settings these are.
    list: PhantomData<fn() -> L>,
}

impl<L> Default for Flags<L> {
    /// No flags given.
    fn default() -> Self {
        Flags { values: HashMap::new(), list: PhantomData }
    }
}

impl<L: SettingList> clap::Args for Flags<L> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        specs(L::TABLES).fold(cmd, |cmd, spec| cmd.arg(spec.arg()))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<L: SettingList> clap::FromArgMatches for Flags<L> {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Flags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for spec in specs(L::TABLES) {
            if let Some(value) = matches.get_one::<String>(spec.name) {
                self.values.insert(spec.name, value.clone());
            }
        }
        Ok(())
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// A `HERALD_*` environment variable.
    Env,
    /// The config file at this path.
    File(PathBuf),
    /// The setting's default.
    Default,
}

impl Origin {
    /// Where setting `name` came from, in the words an operator would look
    /// for it with.
    fn describe(&self, name: &str) -> String {
        match self {
            Origin::Flag => format!("from flag --{}", flag(name)),
            Origin::Env => "from environment".to_owned(),
            Origin::File(path) => format!("from config file {}, key {}", path.display(), file_key(name)),
            Origin::Default => "the default".to_owned(),
        }
    }
}

/// A setting's value as given, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw<'a> {
    /// The string exactly as given.
    pub value: &'a str,
    /// Where it was given.
    pub origin: Origin,
}

/// Why start-up cannot go on with these settings. Every message is one line.
#[derive(Debug, Error)]
pub enum SettingError {
    /// A value that does not parse or is out of range.
    #[error("bad setting {}{} ({}): {problem}", env_var(name), shown(value.as_deref()), origin.describe(name))]
    Bad {
        /// The setting.
        name: &'static str,
        /// The value as given; `None` for secrets, which are never shown.
        value: Option<String>,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong, e.g. `expected a positive whole number`.
        problem: String,
    },
    /// A setting that must be given and was not.
    #[error("missing setting {}: {hint}", env_var(name))]
    Missing {
        /// The setting.
        name: &'static str,
        /// How to fix it.
        hint: String,
    },
    /// Two settings that exclude each other were both given.
    #[error(
        "conflicting settings {} ({}) and {} ({}): set only one",
        env_var(first.0), first.1.describe(first.0), env_var(second.0), second.1.describe(second.0)
    )]
    Conflict {
        /// One setting and where it came from.
        first: (&'static str, Origin),
        /// The other.
        second: (&'static str, Origin),
    },
    /// A config file key that names no setting of this command.
    #[error("unknown setting {key:?} in config file {}", path.display())]
    UnknownKey {
        /// The key as written in the file.
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A config file that cannot be read or is not TOML.
    #[error("bad config file {}: {problem}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

/// `="value"` for a shown value (quoted and escaped, so the message stays
/// on one line whatever the value holds), nothing for a secret.
fn shown(value: Option<&str>) -> String {
    value.map(|value| format!("={value:?}")).unwrap_or_default()
}

/// Settings read from a TOML config file.
#[derive(Debug)]
pub struct ConfigFile {
    /// The file's origin, [`Origin::File`] with its path.
    origin: Origin,
    /// Values by setting name, as strings like every other source.
    values: HashMap<&'static str, String>,
}

impl ConfigFile {
    /// Reads the file at `path`, which may hold only settings of `tables`.
    pub fn read(path: &Path, tables: &'static [&'static [Spec]]) -> Result<ConfigFile, SettingError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingError::ConfigFile { path: path.to_owned(), problem: format!("cannot read it: {e}") })?;
        ConfigFile::parse(path, &text, tables)
    }

    /// Parses `text`, the contents of `path`. Numbers, booleans and arrays
    /// of strings are taken as the strings a flag would give (an array
    /// becomes a comma list), so one parser serves every source.
    pub fn parse(path: &Path, text: &str, tables: &'static [&'static [Spec]]) -> Result<ConfigFile, SettingError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| SettingError::ConfigFile {
            path: path.to_owned(),
            problem: toml_problem(text, &e),
        })?;
        let origin = Origin::File(path.to_owned());
        let mut values = HashMap::new();
        for (key, value) in table {
            let Some(spec) = specs(tables).find(|spec| file_key(spec.name) == key) else {
                return Err(SettingError::UnknownKey { key, path: path.to_owned() });
            };
            let Some(raw) = toml_string(&value) else {
                return Err(SettingError::Bad {
                    name: spec.name,
                    value: (!spec.secret).then(|| value.to_string()),
                    origin,
                    problem: "expected a string, a number, true/false or an array of strings".to_owned(),
                });
            };
            values.insert(spec.name, raw);
        }
        Ok(ConfigFile { origin, values })
    }
}

/// A TOML parse error in one line, with the line it is on.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().lines().collect::<Vec<_>>().join(" ");
    match error.span() {
        Some(span) => format!("line {}: {message}", text[..span.start].matches('\n').count() + 1),
        None => message,
    }
}

/// A TOML value as the string a flag would give; `None` for tables and
/// nested arrays, which no setting takes.
fn toml_string(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::Array(items) => {
            items.iter().map(toml_scalar).collect::<Option<Vec<_>>>().map(|items| items.join(","))
        }
        other => toml_scalar(other),
    }
}

fn toml_scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) | toml::Value::Datetime(_) => {
            Some(value.to_string())
        }
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// Every setting of one command, from all its sources.
#[derive(Debug)]
pub struct Settings {
    /// The settings the command declared; reading any other is a bug.
    tables: &'static [&'static [Spec]],
    /// Values given as flags.
    flags: HashMap<&'static str, String>,
    /// Values of the command's `HERALD_*` variables that are set.
    env: HashMap<&'static str, String>,
    /// The config file, when one was named.
    file: Option<ConfigFile>,
}

impl Settings {
    /// Reads the settings of command `L`: `flags` as parsed, the config file
    /// named by `config` (the `--config` flag) or else by `HERALD_CONFIG`,
    /// and the environment through `env`.
    pub fn load<L: SettingList>(
        flags: Flags<L>,
        config: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, SettingError> {
        let path = config.or_else(|| env(CONFIG_ENV)).filter(|path| !path.is_empty());
        let file = path.map(|path| ConfigFile::read(Path::new(&path), L::TABLES)).transpose()?;
        Ok(Settings::new(flags, env, file))
    }

    /// Settings from already-gathered sources.
    pub fn new<L: SettingList>(
        flags: Flags<L>,
        env: impl Fn(&str) -> Option<String>,
        file: Option<ConfigFile>,
    ) -> Settings {
        let env = specs(L::TABLES).filter_map(|spec| Some((spec.name, env(&env_var(spec.name))?))).collect();
        Settings { tables: L::TABLES, flags: flags.values, env, file }
    }

    fn spec(&self, name: &str) -> &'static Spec {
        specs(self.tables)
            .find(|spec| spec.name == name)
            .unwrap_or_else(|| panic!("setting {name} is not in this command's tables"))
    }

    /// The value of `name` as given and where it came from: a flag wins
    /// over the environment, which wins over the config file, which wins over
    /// the default. `None` when it is given nowhere and has no default.
    ///
    /// # Panics
    ///
    /// When `name` is not in the command's tables: that is a bug, and
    /// failing loudly keeps a misspelt name from silently reading nothing.
    pub fn raw(&self, name: &str) -> Option<Raw<'_>> {
        let spec = self.spec(name);
        let file = || {
            let file = self.file.as_ref()?;
            Some((file.values.get(spec.name)?, file.origin.clone()))
        };
        self.flags
            .get(spec.name)
            .map(|value| (value, Origin::Flag))
            .or_else(|| self.env.get(spec.name).map(|value| (value, Origin::Env)))
            .or_else(file)
            .map(|(value, origin)| Raw { value: value.as_str(), origin })
            .or_else(|| spec.default.map(|value| Raw { value, origin: Origin::Default }))
    }

    /// The value of `name` when it is given and not empty. An empty value
    /// counts as unset, as `HERALD_JWT_AUDIENCE=` in a shell or a manifest
    /// means.
    pub fn given(&self, name: &str) -> Option<Raw<'_>> {
        self.raw(name).filter(|raw| !raw.value.is_empty())
    }

    /// The error for setting `name`, given as `raw`, being wrong because of
    /// `problem`. A secret's value is left out.
    pub fn bad(&self, name: &str, raw: Raw<'_>, problem: impl Into<String>) -> SettingError {
        let spec = self.spec(name);
        SettingError::Bad {
            name: spec.name,
            value: (!spec.secret).then(|| raw.value.to_owned()),
            origin: raw.origin,
            problem: problem.into(),
        }
    }

    /// Parses setting `name`, which has a default or must be given, with
    /// `parse`, whose error says what was expected.
    pub fn parse<T>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, SettingError> {
        let Some(raw) = self.raw(name) else {
            let spec = self.spec(name);
            return Err(SettingError::Missing { name: spec.name, hint: "it has no default; set it".to_owned() });
        };
        parse(raw.value).map_err(|problem| self.bad(name, raw, problem))
    }

    /// A whole number of at least `min`.
    pub fn number<T>(&self, name: &str, min: T) -> Result<T, SettingError>
    where
        T: FromStr + PartialOrd + Display + From<u8>,
    {
        self.parse(name, |value| at_least(value, min, "whole number"))
    }

    /// A duration given in milliseconds, of at least `min_ms`.
    pub fn millis(&self, name: &str, min_ms: u64) -> Result<Duration, SettingError> {
        self.parse(name, |value| at_least(value, min_ms, "whole number of milliseconds").map(Duration::from_millis))
    }

    /// `true`/`false`, `1`/`0` or `yes`/`no`, in any case.
    pub fn bool(&self, name: &str) -> Result<bool, SettingError> {
        self.parse(name, |value| match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err("expected true or false (or 1/0, yes/no)".to_owned()),
        })
    }

    /// An IP address and port.
    pub fn socket_addr(&self, name: &str) -> Result<SocketAddr, SettingError> {
        self.parse(name, |value| {
            value.trim().parse().map_err(|_| "expected an IP address and port, like 0.0.0.0:8080".to_owned())
        })
    }
}

/// Parses a number of at least `min`, saying what was expected otherwise.
fn at_least<T>(value: &str, min: T, what: &str) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display + From<u8>,
{
    let expected = if min == T::from(0) {
        format!("expected a {what}")
    } else if min == T::from(1) {
        format!("expected a positive {what}")
    } else {
        format!("expected a {what} of at least {min}")
    };
    value.trim().parse().ok().filter(|n| *n >= min).ok_or(expected)
}

/// An environment holding exactly `vars`, for tests, which must never
/// change the process's own.
#[cfg(test)]
pub fn fixed_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| vars.get(name).cloned()
}

/// Splits a comma list, dropping spaces around items and empty items.
pub fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches};

    use super::*;

    const TABLE: &[Spec] = &[
        Spec::new("LISTEN", "ADDR", "0.0.0.0:8080", "Address"),
        Spec::new("MAX_MESSAGE_BYTES", "BYTES", "65536", "Largest frame"),
        Spec::new("ALLOW_ANONYMOUS", "BOOL", "false", "Anonymous"),
        Spec::new("PING_INTERVAL_MS", "MS", "25000", "Ping"),
        Spec::optional("JWT_AUDIENCE", "AUD", "Audience"),
        Spec::secret("JWT_SECRET", "SECRET", "Secret"),
    ];

    struct Test;

    impl SettingList for Test {
        const TABLES: &'static [&'static [Spec]] = &[TABLE];
    }

    /// Parses `args` as the flags of a command with the test table.
    fn flags(args: &[&str]) -> Flags<Test> {
        let cmd = Flags::<Test>::augment_args(clap::Command::new("test"));
        let matches = cmd.try_get_matches_from(std::iter::once("test").chain(args.iter().copied())).unwrap();
        Flags::from_arg_matches(&matches).unwrap()
    }

    fn file(text: &str) -> Result<ConfigFile, SettingError> {
        ConfigFile::parse(Path::new("herald.toml"), text, Test::TABLES)
    }

    fn settings(args: &[&str], vars: &[(&str, &str)], text: Option<&str>) -> Settings {
        Settings::new(flags(args), fixed_env(vars), text.map(|text| file(text).unwrap()))
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let text = Some("listen = \"10.0.0.3:3\"");
        let all = settings(&["--listen", "10.0.0.1:1"], &[("HERALD_LISTEN", "10.0.0.2:2")], text);
        assert_eq!(all.raw("LISTEN"), Some(Raw { value: "10.0.0.1:1", origin: Origin::Flag }));
        let no_flag = settings(&[], &[("HERALD_LISTEN", "10.0.0.2:2")], text);
        assert_eq!(no_flag.raw("LISTEN"), Some(Raw { value: "10.0.0.2:2", origin: Origin::Env }));
        let file_only = settings(&[], &[], text);
        let origin = Origin::File(PathBuf::from("herald.toml"));
        assert_eq!(file_only.raw("LISTEN"), Some(Raw { value: "10.0.0.3:3", origin }));
        let nothing = settings(&[], &[], None);
        assert_eq!(nothing.raw("LISTEN"), Some(Raw { value: "0.0.0.0:8080", origin: Origin::Default }));
        assert_eq!(nothing.socket_addr("LISTEN").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(nothing.raw("JWT_AUDIENCE"), None);
    }

    #[test]
    fn only_herald_prefixed_variables_are_read() {
        let s = settings(&[], &[("LISTEN", "1.1.1.1:1")], None);
        assert_eq!(s.raw("LISTEN").unwrap().origin, Origin::Default);
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_setting_its_value_and_origin() {
        let env = settings(&[], &[("HERALD_MAX_MESSAGE_BYTES", "abc")], None);
        assert_eq!(
            env.number("MAX_MESSAGE_BYTES", 256usize).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="abc" (from environment): expected a whole number of at least 256"#
        );
        let flag = settings(&["--max-message-bytes", "-5"], &[], None);
        assert_eq!(
            flag.number("MAX_MESSAGE_BYTES", 256usize).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="-5" (from flag --max-message-bytes): expected a whole number of at least 256"#
        );
        let file = settings(&[], &[], Some("max_message_bytes = 100"));
        assert_eq!(
            file.number("MAX_MESSAGE_BYTES", 256usize).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="100" (from config file herald.toml, key max_message_bytes): expected a whole number of at least 256"#
        );
        let newline = settings(&[], &[("HERALD_LISTEN", "nope\nsecond line")], None);
        let message = newline.socket_addr("LISTEN").unwrap_err().to_string();
        assert_eq!(
            message,
            r#"bad setting HERALD_LISTEN="nope\nsecond line" (from environment): expected an IP address and port, like 0.0.0.0:8080"#
        );
    }

    #[test]
    fn a_secret_is_never_shown() {
        let s = settings(&[], &[("HERALD_JWT_SECRET", "hunter2")], None);
        let raw = s.raw("JWT_SECRET").unwrap();
        let message = s.bad("JWT_SECRET", raw, "too short").to_string();
        assert_eq!(message, "bad setting HERALD_JWT_SECRET (from environment): too short");
        let error = file("jwt_secret = { a = 1 }").unwrap_err().to_string();
        assert!(!error.contains("a = 1"), "{error}");
    }

    #[test]
    fn numbers_and_durations() {
        let s = settings(&[], &[("HERALD_PING_INTERVAL_MS", " 1500 ")], None);
        assert_eq!(s.millis("PING_INTERVAL_MS", 1).unwrap(), Duration::from_millis(1500));
        let zero = settings(&[], &[("HERALD_PING_INTERVAL_MS", "0")], None);
        assert_eq!(
            zero.millis("PING_INTERVAL_MS", 1).unwrap_err().to_string(),
            r#"bad setting HERALD_PING_INTERVAL_MS="0" (from environment): expected a positive whole number of milliseconds"#
        );
        assert_eq!(zero.millis("PING_INTERVAL_MS", 0).unwrap(), Duration::ZERO);
        let fraction = settings(&[], &[("HERALD_PING_INTERVAL_MS", "1.5")], None);
        assert!(
            fraction
                .millis("PING_INTERVAL_MS", 0)
                .unwrap_err()
                .to_string()
                .ends_with("expected a whole number of milliseconds")
        );
        let huge = settings(&[], &[("HERALD_MAX_MESSAGE_BYTES", "99999999999999999999999")], None);
        assert!(
            huge.number("MAX_MESSAGE_BYTES", 1usize)
                .unwrap_err()
                .to_string()
                .ends_with("expected a positive whole number")
        );
        let defaults = settings(&[], &[], None);
        assert_eq!(defaults.number("MAX_MESSAGE_BYTES", 256usize).unwrap(), 65536);
        assert_eq!(defaults.millis("PING_INTERVAL_MS", 1).unwrap(), Duration::from_secs(25));
    }

    #[test]
    fn booleans() {
        for (value, expected) in
            [("true", true), ("1", true), ("YES", true), ("False", false), ("0", false), ("no", false)]
        {
            let s = settings(&[], &[("HERALD_ALLOW_ANONYMOUS", value)], None);
            assert_eq!(s.bool("ALLOW_ANONYMOUS").unwrap(), expected, "{value}");
        }
        let s = settings(&[], &[("HERALD_ALLOW_ANONYMOUS", "maybe")], None);
        assert_eq!(
            s.bool("ALLOW_ANONYMOUS").unwrap_err().to_string(),
            r#"bad setting HERALD_ALLOW_ANONYMOUS="maybe" (from environment): expected true or false (or 1/0, yes/no)"#
        );
        assert!(!settings(&[], &[], None).bool("ALLOW_ANONYMOUS").unwrap());
        assert!(settings(&[], &[], Some("allow_anonymous = true")).bool("ALLOW_ANONYMOUS").unwrap());
    }

    #[test]
    fn an_empty_value_counts_as_unset_for_given() {
        let s = settings(&["--jwt-audience", ""], &[], None);
        assert_eq!(s.raw("JWT_AUDIENCE").unwrap().value, "");
        assert_eq!(s.given("JWT_AUDIENCE"), None);
    }

    #[test]
    fn an_unknown_file_key_is_named() {
        let error = file("listen = \"0.0.0.0:1\"\nmax_msg_bytes = 5").unwrap_err();
        assert_eq!(error.to_string(), r#"unknown setting "max_msg_bytes" in config file herald.toml"#);
        let upper = file("LISTEN = \"0.0.0.0:1\"").unwrap_err();
        assert_eq!(upper.to_string(), r#"unknown setting "LISTEN" in config file herald.toml"#);
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_line_with_its_line_number() {
        let error = file("listen = \"0.0.0.0:1\"\nmax_message_bytes = = 5\n").unwrap_err().to_string();
        assert!(error.starts_with("bad config file herald.toml: line 2: "), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn file_values_of_any_scalar_type_and_string_arrays_are_taken_as_strings() {
        let s =
            settings(&[], &[], Some("max_message_bytes = 1024\nallow_anonymous = true\njwt_audience = [\"a\", \"b\"]"));
        assert_eq!(s.number("MAX_MESSAGE_BYTES", 256usize).unwrap(), 1024);
        assert_eq!(s.raw("JWT_AUDIENCE").unwrap().value, "a,b");
        let table = file("listen = { host = \"x\" }").unwrap_err().to_string();
        assert_eq!(
            table,
            r#"bad setting HERALD_LISTEN="{ host = \"x\" }" (from config file herald.toml, key listen): expected a string, a number, true/false or an array of strings"#
        );
    }

    #[test]
    fn the_config_file_is_named_by_the_flag_or_else_the_environment() {
        let from_env = Settings::load(flags(&[]), None, fixed_env(&[(CONFIG_ENV, "/nonexistent/herald.toml")]));
        let error = from_env.unwrap_err().to_string();
        assert!(error.starts_with("bad config file /nonexistent/herald.toml: cannot read it: "), "{error}");
        let from_flag = Settings::load(
            flags(&[]),
            Some("/nonexistent/flag.toml".into()),
            fixed_env(&[(CONFIG_ENV, "/nonexistent/x")]),
        );
        assert!(from_flag.unwrap_err().to_string().starts_with("bad config file /nonexistent/flag.toml:"));
        assert!(Settings::load(flags(&[]), None, fixed_env(&[(CONFIG_ENV, "")])).is_ok());
    }

    #[test]
    fn comma_lists_drop_spaces_and_empty_items() {
        assert_eq!(comma_list(" a, b ,,c,"), ["a", "b", "c"]);
        assert!(comma_list(" , ").is_empty());
    }

    #[test]
    #[should_panic(expected = "setting LISTNE is not in this command's tables")]
    fn reading_an_undeclared_setting_is_a_bug() {
        settings(&[], &[], None).raw("LISTNE");
    }
}
