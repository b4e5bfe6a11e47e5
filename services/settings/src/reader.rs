//! [`Settings`]: every setting of one command, from its flags, its
//! `HERALD_*` variables, the config file and the defaults.
//!
//! A value is looked up flag first, then environment, then file, then the
//! setting's default. It is kept as the text it was given as, with where it
//! came from, and parsed only when read: a bad value is then reported in one
//! line that names the setting, the value and its origin, which is what an
//! operator needs to fix it.
//!
//! The environment is a parameter of [`Settings::new`], so tests pass their
//! own and never touch the process's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::SettingError;
use crate::file::ConfigFile;
use crate::flags::{Flags, SettingList, specs};
use crate::setting::flag;
use crate::{Setting, Spec};

/// The variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "HERALD_CONFIG";

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// A `HERALD_*` environment variable.
    Env,
    /// The config file at `path`, under `key` as written there.
    File {
        /// The file, shared by every value read from it.
        path: Arc<Path>,
        /// The key, with its sections (`nats.url`).
        key: String,
    },
    /// The setting's default.
    Default,
}

impl Origin {
    /// Where the value of setting `name` came from, in the words an
    /// operator would look for it with.
    pub(crate) fn describe(&self, name: &str) -> String {
        match self {
            Origin::Flag => format!("from flag --{}", flag(name)),
            Origin::Env => "from environment".to_owned(),
            Origin::File { path, key } => format!("from config file {}, key {key}", path.display()),
            Origin::Default => "the default".to_owned(),
        }
    }
}

/// A setting's value as given, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw<'a> {
    /// The text exactly as given.
    pub value: &'a str,
    /// Where it was given.
    pub origin: Origin,
}

/// Every setting of one command, from all its sources.
#[derive(Debug)]
pub struct Settings {
    /// The groups the command reads; reading any other setting is a bug.
    groups: &'static [&'static [&'static Spec]],
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
        let file = path.map(|path| ConfigFile::read(Path::new(&path), L::GROUPS)).transpose()?;
        Ok(Settings::new(flags, env, file))
    }

    /// Settings from already-gathered sources.
    pub fn new<L: SettingList>(
        flags: Flags<L>,
        env: impl Fn(&str) -> Option<String>,
        file: Option<ConfigFile>,
    ) -> Settings {
        let env = specs(L::GROUPS).filter_map(|spec| Some((spec.name, env(&spec.env_var())?))).collect();
        Settings { groups: L::GROUPS, flags: flags.values, env, file }
    }

    /// The value of `setting` as given and where it came from: a flag wins
    /// over the environment, which wins over the config file, which wins over
    /// the default. `None` when it is given nowhere and has no default.
    ///
    /// # Panics
    ///
    /// When the command does not read `setting` (its group is not in the
    /// command's [`SettingList`]): a bug, which must fail loudly rather than
    /// read nothing.
    pub fn raw<T>(&self, setting: &Setting<T>) -> Option<Raw<'_>> {
        let spec = &setting.spec;
        assert!(
            specs(self.groups).any(|listed| listed == spec),
            "setting {} is not one this command reads: add its group to the command's SettingList",
            spec.name
        );
        let file = || {
            let file = self.file.as_ref()?;
            let (key, value) = file.values.get(spec.name)?;
            Some((value, Origin::File { path: file.path.clone(), key: key.clone() }))
        };
        self.flags
            .get(spec.name)
            .map(|value| (value, Origin::Flag))
            .or_else(|| self.env.get(spec.name).map(|value| (value, Origin::Env)))
            .or_else(file)
            .map(|(value, origin)| Raw { value: value.as_str(), origin })
            .or_else(|| spec.default.map(|value| Raw { value, origin: Origin::Default }))
    }

    /// The value of `setting` when it is given and not empty. An empty value
    /// counts as unset, as `HERALD_JWT_AUDIENCE=` in a shell or a manifest
    /// means.
    pub fn given_raw<T>(&self, setting: &Setting<T>) -> Option<Raw<'_>> {
        self.raw(setting).filter(|raw| raw.origin != Origin::Default && !raw.value.is_empty())
    }

    /// The value of `setting`, given or its default.
    pub fn get<T>(&self, setting: &Setting<T>) -> Result<T, SettingError> {
        self.get_with(setting, Ok)
    }

    /// The value of `setting`, given or its default, made into what the
    /// caller needs by `make`, whose error says what was expected and is
    /// reported as a bad value of the setting.
    pub fn get_with<T, U>(
        &self,
        setting: &Setting<T>,
        make: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<U, SettingError> {
        let raw = self.raw(setting).ok_or_else(|| SettingError::missing(setting, "it has no default; set it"))?;
        self.read(setting, raw, make)
    }

    /// The value of `setting` when it is given and not empty.
    pub fn given<T>(&self, setting: &Setting<T>) -> Result<Option<T>, SettingError> {
        self.given_with(setting, Ok)
    }

    /// The value of `setting` when it is given and not empty, made into what
    /// the caller needs by `make`, as for [`Settings::get_with`].
    pub fn given_with<T, U>(
        &self,
        setting: &Setting<T>,
        make: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<Option<U>, SettingError> {
        self.given_raw(setting).map(|raw| self.read(setting, raw, make)).transpose()
    }

    /// The error for the value of `setting`, given or its default, being
    /// refused because of `problem`: for what only shows once the value is
    /// used (a NATS URL the bus client refuses). A secret's value is left
    /// out.
    pub fn refused<T>(&self, setting: &Setting<T>, problem: impl Into<String>) -> SettingError {
        match self.raw(setting) {
            Some(raw) => self.bad(setting, raw, problem),
            None => SettingError::missing(setting, problem),
        }
    }

    /// The error for `setting`, given as `raw`, being wrong because of
    /// `problem`. A secret's value is left out.
    fn bad<T>(&self, setting: &Setting<T>, raw: Raw<'_>, problem: impl Into<String>) -> SettingError {
        let spec = setting.spec;
        SettingError::Bad {
            name: spec.name,
            value: (!spec.secret).then(|| raw.value.to_owned()),
            origin: raw.origin,
            problem: problem.into(),
        }
    }

    /// Reads `setting` from `raw`, the value found for it.
    fn read<T, U>(
        &self,
        setting: &Setting<T>,
        raw: Raw<'_>,
        make: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<U, SettingError> {
        match (setting.parse)(raw.value).and_then(make) {
            Ok(value) => Ok(value),
            Err(problem) => Err(self.bad(setting, raw, problem)),
        }
    }
}

/// An environment holding exactly `vars`, for tests, which must never
/// change the process's own.
pub fn fixed_env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| vars.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::testing::{
        ALLOW_ANONYMOUS, JWT_AUDIENCE, JWT_SECRET, LISTEN, MAX_MESSAGE_BYTES, PING_INTERVAL_MS, flags, settings,
    };
    use crate::value::socket_addr;

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        let text = Some("listen = \"10.0.0.3:3\"");
        let all = settings(&["--listen", "10.0.0.1:1"], &[("HERALD_LISTEN", "10.0.0.2:2")], text);
        assert_eq!(all.raw(&LISTEN), Some(Raw { value: "10.0.0.1:1", origin: Origin::Flag }));
        let no_flag = settings(&[], &[("HERALD_LISTEN", "10.0.0.2:2")], text);
        assert_eq!(no_flag.raw(&LISTEN), Some(Raw { value: "10.0.0.2:2", origin: Origin::Env }));
        let file_only = settings(&[], &[], text);
        let origin = Origin::File { path: Path::new("herald.toml").into(), key: "listen".to_owned() };
        assert_eq!(file_only.raw(&LISTEN), Some(Raw { value: "10.0.0.3:3", origin }));
        assert_eq!(file_only.get(&LISTEN).unwrap(), "10.0.0.3:3".parse().unwrap());
        let nothing = settings(&[], &[], None);
        assert_eq!(nothing.raw(&LISTEN), Some(Raw { value: "0.0.0.0:8080", origin: Origin::Default }));
        assert_eq!(nothing.get(&LISTEN).unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(nothing.raw(&JWT_AUDIENCE), None);
        assert_eq!(nothing.given(&JWT_AUDIENCE).unwrap(), None);
    }

    #[test]
    fn only_herald_prefixed_variables_are_read() {
        let s = settings(&[], &[("LISTEN", "1.1.1.1:1")], None);
        assert_eq!(s.raw(&LISTEN).unwrap().origin, Origin::Default);
    }

    #[test]
    fn a_bad_value_is_one_line_naming_the_setting_its_value_and_origin() {
        let env = settings(&[], &[("HERALD_MAX_MESSAGE_BYTES", "abc")], None);
        assert_eq!(
            env.get(&MAX_MESSAGE_BYTES).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="abc" (from environment): expected a whole number of at least 256"#
        );
        let flag = settings(&["--max-message-bytes", "-5"], &[], None);
        assert_eq!(
            flag.get(&MAX_MESSAGE_BYTES).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="-5" (from flag --max-message-bytes): expected a whole number of at least 256"#
        );
        let file = settings(&[], &[], Some("max_message_bytes = 100"));
        assert_eq!(
            file.get(&MAX_MESSAGE_BYTES).unwrap_err().to_string(),
            r#"bad setting HERALD_MAX_MESSAGE_BYTES="100" (from config file herald.toml, key max_message_bytes): expected a whole number of at least 256"#
        );
        let newline = settings(&[], &[("HERALD_LISTEN", "nope\nsecond line")], None);
        assert_eq!(
            newline.get(&LISTEN).unwrap_err().to_string(),
            r#"bad setting HERALD_LISTEN="nope\nsecond line" (from environment): expected an IP address and port, like 0.0.0.0:8080"#
        );
    }

    #[test]
    fn a_value_made_into_something_else_is_still_reported_as_the_setting() {
        let s = settings(&[], &[("HERALD_LISTEN", "127.0.0.1:0")], None);
        let error = s.get_with(&LISTEN, |addr| if addr.port() == 0 { Err("port 0".to_owned()) } else { Ok(addr) });
        assert_eq!(
            error.unwrap_err().to_string(),
            r#"bad setting HERALD_LISTEN="127.0.0.1:0" (from environment): port 0"#
        );
        let s = settings(&[], &[("HERALD_JWT_AUDIENCE", "app")], None);
        assert_eq!(s.given_with(&JWT_AUDIENCE, |aud| Ok(aud.len())).unwrap(), Some(3));
    }

    #[test]
    fn a_secret_is_never_shown() {
        let s = settings(&[], &[("HERALD_JWT_SECRET", "hunter2")], None);
        let error = s.given_with(&JWT_SECRET, |_| Err::<(), _>("too short".to_owned())).unwrap_err();
        assert_eq!(error.to_string(), "bad setting HERALD_JWT_SECRET (from environment): too short");
        let file = settings(&[], &[], Some("jwt_secret = \"hunter2\""));
        let error = file.refused(&JWT_SECRET, "too short").to_string();
        assert_eq!(error, "bad setting HERALD_JWT_SECRET (from config file herald.toml, key jwt_secret): too short");
    }

    #[test]
    fn numbers_durations_and_booleans_are_typed() {
        let s = settings(&[], &[("HERALD_PING_INTERVAL_MS", " 1500 ")], Some("allow_anonymous = true"));
        assert_eq!(s.get(&PING_INTERVAL_MS).unwrap(), Duration::from_millis(1500));
        assert!(s.get(&ALLOW_ANONYMOUS).unwrap());
        let defaults = settings(&[], &[], None);
        assert_eq!(defaults.get(&MAX_MESSAGE_BYTES).unwrap(), 65536);
        assert_eq!(defaults.get(&PING_INTERVAL_MS).unwrap(), Duration::from_secs(25));
        assert!(!defaults.get(&ALLOW_ANONYMOUS).unwrap());
        let zero = settings(&[], &[("HERALD_PING_INTERVAL_MS", "0")], None);
        assert_eq!(
            zero.get(&PING_INTERVAL_MS).unwrap_err().to_string(),
            r#"bad setting HERALD_PING_INTERVAL_MS="0" (from environment): expected a positive whole number of milliseconds"#
        );
        let maybe = settings(&[], &[("HERALD_ALLOW_ANONYMOUS", "maybe")], None);
        assert_eq!(
            maybe.get(&ALLOW_ANONYMOUS).unwrap_err().to_string(),
            r#"bad setting HERALD_ALLOW_ANONYMOUS="maybe" (from environment): expected true or false (or 1/0, yes/no)"#
        );
    }

    #[test]
    fn an_empty_value_counts_as_unset_for_given() {
        let s = settings(&["--jwt-audience", ""], &[], None);
        assert_eq!(s.raw(&JWT_AUDIENCE).unwrap().value, "");
        assert_eq!(s.given_raw(&JWT_AUDIENCE), None);
        assert_eq!(s.given(&JWT_AUDIENCE).unwrap(), None);
    }

    #[test]
    fn a_setting_without_a_default_that_is_read_as_required_is_missing() {
        let error = settings(&[], &[], None).get(&JWT_AUDIENCE).unwrap_err().to_string();
        assert_eq!(error, "missing setting HERALD_JWT_AUDIENCE: it has no default; set it");
    }

    #[test]
    fn a_value_refused_once_used_is_reported_as_the_setting_default_or_not() {
        let default = settings(&[], &[], None).refused(&LISTEN, "address in use").to_string();
        assert_eq!(default, r#"bad setting HERALD_LISTEN="0.0.0.0:8080" (the default): address in use"#);
        let missing = settings(&[], &[], None).refused(&JWT_AUDIENCE, "needed here").to_string();
        assert_eq!(missing, "missing setting HERALD_JWT_AUDIENCE: needed here");
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

    /// A setting named like one the command reads, but another one: another
    /// role's `LISTEN`, with its own default.
    const OTHER_LISTEN: Setting<SocketAddr> = Setting::new("LISTEN", &["Elsewhere."], "ADDR", "0.0.0.0:1", socket_addr);

    #[test]
    #[should_panic(expected = "setting LISTEN is not one this command reads")]
    fn reading_a_setting_the_command_does_not_list_is_a_bug_even_under_a_listed_name() {
        settings(&[], &[], None).raw(&OTHER_LISTEN);
    }
}
