//! Example handler services, each a few lines on the handler SDK
//! ([`herald_handler`]), for people writing their own and for `herald dev`.
//!
//! Every example is a module with one entry point, `serve(bus, subjects,
//! stop)`: it serves until `stop` resolves, then drains (finishes what it
//! took, leaves the rest to other copies) and returns. Taking the bus rather
//! than a URL is what lets the `herald-examples` binary run them against NATS
//! and `herald dev` run them in-process. [`Example`] names them, so a caller
//! can run any of them by name.
//!
//! # Layout
//!
//! - [`echo`]: replies with what the client sent, or tells it who it is.
//! - [`chat`]: chat rooms on Herald's groups, with no state of its own, so
//!   any number of copies can share the load.
//! - [`expiry`]: a backend says a user's login expired; it tells every tab of
//!   that user, on whichever edge, and may disconnect them.
//! - `main.rs`: the `herald-examples` binary, which runs the examples named
//!   on its command line (all by default) until SIGTERM or SIGINT.

pub mod chat;
pub mod echo;
pub mod expiry;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use herald_bus::{Bus, BusError};
use herald_proto::subject::Subjects;
use thiserror::Error;

/// One of the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Example {
    Echo,
    Chat,
    Expiry,
}

/// A name that is not one of the examples'.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown example {0:?}: expected echo, chat or expiry")]
pub struct UnknownExample(pub String);

impl Example {
    /// Every example, in the order the binary starts them.
    pub const ALL: [Example; 3] = [Example::Echo, Example::Chat, Example::Expiry];

    /// The example's name, as the binary takes it.
    pub fn name(self) -> &'static str {
        match self {
            Example::Echo => "echo",
            Example::Chat => "chat",
            Example::Expiry => "expiry",
        }
    }

    /// Serves the example until `stop` resolves, then drains and returns.
    pub async fn serve(self, bus: &Bus, subjects: &Subjects, stop: impl Future<Output = ()>) -> Result<(), BusError> {
        match self {
            Example::Echo => echo::serve(bus, subjects, stop).await,
            Example::Chat => chat::serve(bus, subjects, stop).await,
            Example::Expiry => expiry::serve(bus, subjects, stop).await,
        }
    }
}

impl FromStr for Example {
    type Err = UnknownExample;

    fn from_str(name: &str) -> Result<Example, UnknownExample> {
        Example::ALL.into_iter().find(|example| example.name() == name).ok_or_else(|| UnknownExample(name.to_owned()))
    }
}

impl fmt::Display for Example {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for example in Example::ALL {
            assert_eq!(example.name().parse::<Example>(), Ok(example));
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let error = "Echo".parse::<Example>().unwrap_err();
        assert_eq!(error.to_string(), r#"unknown example "Echo": expected echo, chat or expiry"#);
    }
}
