//! Why start-up cannot go on with the settings given: [`SettingError`],
//! whose every message is one line naming the setting, as an operator looks
//! for it (`HERALD_<NAME>`).

use std::path::PathBuf;

use thiserror::Error;

use crate::Setting;
use crate::reader::Origin;
use crate::setting::env_var;

/// Why start-up cannot go on with these settings. Every message is one line.
#[derive(Debug, Error)]
pub enum SettingError {
    /// A value that does not parse or is out of range.
    #[error("bad setting {}{} ({}): {problem}", env_var(name), shown(value.as_deref()), origin.describe(name))]
    Bad {
        /// The setting's name.
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
        /// The setting's name.
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
        /// One setting's name and where it came from.
        first: (&'static str, Origin),
        /// The other's.
        second: (&'static str, Origin),
    },
    /// A config file key that names no setting of this command.
    #[error("unknown setting {key:?} in config file {}", path.display())]
    UnknownKey {
        /// The key as written in the file, with its sections (`nats.ulr`).
        key: String,
        /// The file.
        path: PathBuf,
    },
    /// A config file that cannot be read, is not TOML, or says one setting
    /// twice.
    #[error("bad config file {}: {problem}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl SettingError {
    /// `setting` must be given, and `hint` says how.
    pub fn missing<T>(setting: &Setting<T>, hint: impl Into<String>) -> SettingError {
        SettingError::Missing { name: setting.spec.name, hint: hint.into() }
    }

    /// `first` and `second` were both given, from these origins.
    pub fn conflict<A, B>(first: (&Setting<A>, Origin), second: (&Setting<B>, Origin)) -> SettingError {
        SettingError::Conflict { first: (first.0.spec.name, first.1), second: (second.0.spec.name, second.1) }
    }
}

/// `="value"` for a shown value (quoted and escaped, so the message stays
/// on one line whatever the value holds), nothing for a secret.
fn shown(value: Option<&str>) -> String {
    value.map(|value| format!("={value:?}")).unwrap_or_default()
}
