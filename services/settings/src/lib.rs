//! Every setting Herald reads, each written once: a typed constant that
//! carries its name, its default and its doc, from which its flag
//! (`--max-message-bytes`), its environment variable
//! (`HERALD_MAX_MESSAGE_BYTES`), its config file key (`max_message_bytes`)
//! and its `--help` line all come. Reading one is `settings.get(&MAX_MESSAGE_BYTES)`:
//! a misspelt name does not compile, and the value comes back typed.
//!
//! The libraries build their own defaults from these constants
//! (`Limits::default()` is [`edge::MAX_MESSAGE_BYTES`]'s default, and so
//! on), so a default is written in one place; they depend on this crate
//! without its reader. The binaries (`herald`, `herald-examples`) read with
//! the `read` feature. Why it is a crate of its own, and how to add a
//! setting, is in `docs/adr/0002-settings-are-typed-constants.md`.
//!
//! # Layout
//!
//! - [`setting`]: what a setting is ([`Setting`], [`Spec`]), and the
//!   `settings!` macro that declares a group of them.
//! - [`value`]: how values are read from text (numbers with a minimum,
//!   milliseconds, booleans, addresses, lists).
//! - The catalogue, one module per part of Herald, each a few groups:
//!   [`logging`], [`nats`], [`edge`], [`history`], [`router`], [`pusher`],
//!   [`dev`].
//! - With `read`: `reader` ([`Settings`]: flags, then `HERALD_*` variables,
//!   then the config file, then defaults), `flags` (clap), `file` (the TOML
//!   file, with sections) and `error` ([`SettingError`], one line each).

pub mod setting;
pub mod value;

pub mod dev;
pub mod edge;
pub mod history;
pub mod logging;
pub mod nats;
pub mod pusher;
pub mod router;

#[cfg(feature = "read")]
mod error;
#[cfg(feature = "read")]
mod file;
#[cfg(feature = "read")]
mod flags;
#[cfg(feature = "read")]
mod reader;
#[cfg(all(test, feature = "read"))]
mod testing;

#[cfg(feature = "read")]
pub use crate::error::SettingError;
#[cfg(feature = "read")]
pub use crate::file::ConfigFile;
#[cfg(feature = "read")]
pub use crate::flags::{ConfigFlag, Flags, SettingList};
#[cfg(feature = "read")]
pub use crate::reader::{CONFIG_ENV, Origin, Raw, Settings, fixed_env};
pub use crate::setting::{Setting, Spec};
