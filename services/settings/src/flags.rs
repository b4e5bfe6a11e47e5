//! The command line: one flag per setting a command reads ([`Flags`]), and
//! `--config` ([`ConfigFlag`]).

use std::collections::HashMap;
use std::marker::PhantomData;

use crate::Spec;

/// A command's settings: the groups its flags, variables and file keys come
/// from. Commands share groups (logging, NATS) by listing them.
pub trait SettingList {
    /// Every group of settings the command reads.
    const GROUPS: &'static [&'static [&'static Spec]];
}

/// Every setting of `groups`.
pub(crate) fn specs(groups: &'static [&'static [&'static Spec]]) -> impl Iterator<Item = &'static Spec> {
    groups.iter().flat_map(|group| group.iter().copied())
}

/// The settings file, named by `--config` or `HERALD_CONFIG`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlag {
    /// The file's path, if one is named.
    #[arg(
        long = "config",
        global = true,
        value_name = "PATH",
        help = "TOML file of settings, keyed by name in lower snake case, at the top \
                (nats_url = \"nats://10.0.0.5:4222\") or in sections ([nats] then url = ...); \
                flags and HERALD_* variables win over it [env: HERALD_CONFIG]"
    )]
    pub path: Option<String>,
}

/// The flags given for one command, one per setting of `L`.
#[derive(Debug)]
pub struct Flags<L> {
    /// Flag values by setting name, exactly as typed.
    pub(crate) values: HashMap<&'static str, String>,
    /// The command whose settings these are.
    list: PhantomData<fn() -> L>,
}

impl<L> Default for Flags<L> {
    /// No flags given.
    fn default() -> Self {
        Flags { values: HashMap::new(), list: PhantomData }
    }
}

/// The setting's flag, with `--help` text naming its variable and default.
/// clap keeps the string exactly as given: defaults and the environment are
/// applied by [`Settings`](crate::Settings), so origins stay known, and a bad
/// value is reported as a setting rather than as a usage error.
fn arg(spec: &Spec) -> clap::Arg {
    let mut help = format!("{} [env: {}]", spec.help(), spec.env_var());
    if let Some(default) = spec.default {
        help.push_str(&format!(" [default: {default}]"));
    }
    clap::Arg::new(spec.name).long(spec.flag()).value_name(spec.value_name).allow_hyphen_values(true).help(help)
}

impl<L: SettingList> clap::Args for Flags<L> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        specs(L::GROUPS).fold(cmd, |cmd, spec| cmd.arg(arg(spec)))
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
        for spec in specs(L::GROUPS) {
            if let Some(value) = matches.get_one::<String>(spec.name) {
                self.values.insert(spec.name, value.clone());
            }
        }
        Ok(())
    }
}
