//! What a setting is: [`Setting`], its untyped half [`Spec`], and the
//! `settings!` macro the catalogue is written with.

use std::fmt;

/// What every setting has whatever its type, and all that flags, variables,
/// config file keys and `--help` are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Upper-snake name, as the constant is named: the environment variable
    /// is `HERALD_<NAME>`, the flag `--<name>` in kebab case, the file key
    /// `<name>` in snake case.
    pub name: &'static str,
    /// Placeholder for the flag's value in `--help` (`BYTES`, `MS`).
    pub value_name: &'static str,
    /// The constant's doc comment, line by line: what the setting does, for
    /// rustdoc and (without the backticks) for `--help`.
    pub doc: &'static [&'static str],
    /// The value when the setting is given nowhere, written as an operator
    /// would give it; `None` when it is unset unless given.
    pub default: Option<&'static str>,
    /// Whether the value must never be repeated in an error message.
    pub secret: bool,
}

impl Spec {
    /// `HERALD_<NAME>`.
    pub fn env_var(&self) -> String {
        env_var(self.name)
    }

    /// `max-message-bytes` for `MAX_MESSAGE_BYTES`.
    pub fn flag(&self) -> String {
        flag(self.name)
    }

    /// `max_message_bytes` for `MAX_MESSAGE_BYTES`: the key in the config
    /// file, at its top or spread over sections (`[nats]` then `url`).
    pub fn file_key(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// The doc comment as `--help` shows it: one line, without the
    /// backticks of its code spans or its closing full stop.
    pub fn help(&self) -> String {
        let help = self.doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ").replace('`', "");
        help.trim_end_matches('.').to_owned()
    }
}

/// `HERALD_<NAME>` for setting `NAME`.
pub(crate) fn env_var(name: &str) -> String {
    format!("HERALD_{name}")
}

/// `max-message-bytes` for setting `MAX_MESSAGE_BYTES`.
pub(crate) fn flag(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// One setting, typed: a [`Spec`] and how its value is read.
///
/// Every value, from a flag, a variable, the config file or the default,
/// is text read by the same `parse`; so the default obeys the same rules as
/// a given value (a test reads every default), and `--help` shows it as an
/// operator would write it.
pub struct Setting<T> {
    /// Name, doc, default.
    pub spec: Spec,
    /// Reads a value; the error says what was expected, such as `expected a
    /// positive whole number`.
    pub parse: fn(&str) -> Result<T, String>,
}

impl<T> Setting<T> {
    /// A setting that has a default.
    pub const fn new(
        name: &'static str,
        doc: &'static [&'static str],
        value_name: &'static str,
        default: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Setting<T> {
        Setting { spec: Spec { name, value_name, doc, default: Some(default), secret: false }, parse }
    }

    /// A setting that is unset unless given.
    pub const fn optional(
        name: &'static str,
        doc: &'static [&'static str],
        value_name: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Setting<T> {
        Setting { spec: Spec { name, value_name, doc, default: None, secret: false }, parse }
    }

    /// A setting that is unset unless given, whose value holds a secret
    /// and is kept out of error messages (a table of credentials, say).
    pub const fn optional_secret(
        name: &'static str,
        doc: &'static [&'static str],
        value_name: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Setting<T> {
        Setting { spec: Spec { name, value_name, doc, default: None, secret: true }, parse }
    }

    /// The default value, for the libraries' own defaults.
    ///
    /// # Panics
    ///
    /// When the setting has no default or its default does not parse: both
    /// are mistakes in the catalogue, and a test reads every default.
    pub fn default_value(&self) -> T {
        let Some(default) = self.spec.default else { panic!("setting {} has no default", self.spec.name) };
        (self.parse)(default)
            .unwrap_or_else(|problem| panic!("the default of setting {} is bad: {problem}", self.spec.name))
    }
}

impl Setting<String> {
    /// A setting whose value is kept out of error messages; unset unless
    /// given.
    pub const fn secret(name: &'static str, doc: &'static [&'static str], value_name: &'static str) -> Setting<String> {
        Setting { spec: Spec { name, value_name, doc, default: None, secret: true }, parse: crate::value::text }
    }
}

impl<T> fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.spec.fmt(f)
    }
}

/// Declares a group of settings: a constant per setting, named as its
/// variable (`MAX_MESSAGE_BYTES` for `HERALD_MAX_MESSAGE_BYTES`), whose doc
/// comment is also its `--help`; and the group, the list a command reads.
///
/// ```ignore
/// settings! {
///     /// How sessions are held.
///     SESSIONS;
///     /// Largest client frame; a bigger one closes the connection with 1009.
///     MAX_MESSAGE_BYTES: usize = new("BYTES", "65536", whole::<usize, 256>);
///     /// Required aud claim of tokens.
///     JWT_AUDIENCE: String = optional("AUD", text);
///     /// Shared secret verifying HS256 tokens.
///     JWT_SECRET: String = secret("SECRET");
/// }
/// ```
///
/// `new`, `optional`, `optional_secret` and `secret` are [`Setting`]'s
/// constructors, given everything but the name and the doc.
macro_rules! settings {
    (
        $(#[doc = $group_doc:literal])*
        $group:ident;
        $(
            $(#[doc = $doc:literal])+
            $name:ident: $type:ty = $kind:ident($($arg:expr),* $(,)?);
        )+
    ) => {
        $(
            $(#[doc = $doc])+
            pub const $name: $crate::Setting<$type> =
                $crate::Setting::<$type>::$kind(stringify!($name), &[$($doc),+], $($arg),*);
        )+

        $(#[doc = $group_doc])*
        pub const $group: &[&$crate::Spec] = &[$(&$name.spec),+];

        /// The group's own test, so a setting added to it is tested too.
        #[cfg(test)]
        #[allow(non_snake_case, reason = "named as the group it tests")]
        mod $group {
            #[test]
            fn every_default_is_valid_and_every_doc_a_help_line() {
                $(
                    if let Some(default) = super::$name.spec.default {
                        if let Err(problem) = (super::$name.parse)(default) {
                            panic!("{}: the default {default:?} is bad: {problem}", stringify!($name));
                        }
                    }
                    let help = super::$name.spec.help();
                    assert!(!help.is_empty() && !help.contains('\n'), "{}: {help:?}", stringify!($name));
                )+
            }
        }
    };
}

pub(crate) use settings;
