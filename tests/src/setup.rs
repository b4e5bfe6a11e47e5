//! The bus under test.
//!
//! Herald's services talk over a [`Bus`]: NATS when deployed, the
//! in-process bus in `herald dev`, which must behave like NATS for
//! everything the contract says. So every test that needs no real server
//! runs twice, once on each bus: [`both_buses!`](crate::both_buses) turns one test body into
//! the tests `<name>::nats` and `<name>::local`.
//!
//! A [`BusSetup`] is what such a test owns: a `nats-server` of its own, or
//! one in-process bus. Every component of the test (edges, routers,
//! handlers, the test's own [`TestBus`](crate::TestBus)) gets its bus from
//! it through a [`BusSource`]: on NATS each component connects a client of
//! its own to the one server, as separate processes would; on the
//! in-process bus they all share one, as in `herald dev`.
//!
//! Tests that need a real server (an outage, `herald` processes, server
//! monitoring) take a [`NatsServer`] instead, which is a [`BusSource`] too.

use herald_bus::{Bus, BusConfig};

use crate::nats::NatsServer;

/// The bus a test runs on; see the module docs.
#[derive(Debug)]
pub enum BusSetup {
    /// A `nats-server` child process; each component connects to it.
    Nats(NatsServer),
    /// One in-process bus every component shares.
    Local(Bus),
}

impl BusSetup {
    /// A new `nats-server` on a port of its own.
    pub async fn nats() -> BusSetup {
        BusSetup::Nats(NatsServer::start().await)
    }

    /// A new, empty in-process bus.
    pub fn local() -> BusSetup {
        BusSetup::Local(Bus::local())
    }
}

/// Where a component gets its bus: cheap to clone, taken from a
/// [`BusSetup`] or a [`NatsServer`] (`(&setup).into()`).
#[derive(Debug, Clone)]
pub enum BusSource {
    /// A NATS server at this URL: each [`BusSource::connect`] is a new
    /// client connection.
    Nats(String),
    /// The shared in-process bus: each [`BusSource::connect`] is a clone.
    Local(Bus),
}

impl BusSource {
    /// The bus of one component, named `name` (the NATS connection name).
    /// A NATS client connects in the background: use [`Bus::sync`] or a
    /// readiness check before relying on it.
    pub async fn connect(&self, name: &str) -> Bus {
        match self {
            BusSource::Nats(url) => Bus::connect(&BusConfig::new(vec![url.clone()], name))
                .await
                .unwrap_or_else(|e| panic!("{name}: cannot connect to {url}: {e}")),
            BusSource::Local(bus) => bus.clone(),
        }
    }
}

impl From<&NatsServer> for BusSource {
    fn from(nats: &NatsServer) -> BusSource {
        BusSource::Nats(nats.url())
    }
}

impl From<&BusSetup> for BusSource {
    fn from(setup: &BusSetup) -> BusSource {
        match setup {
            BusSetup::Nats(nats) => nats.into(),
            BusSetup::Local(bus) => BusSource::Local(bus.clone()),
        }
    }
}

/// Runs a test on both buses: for each `name` given, a module `name` with
/// two `#[tokio::test]`s, `name::nats` (a `nats-server` of its own) and
/// `name::local` (one in-process bus), which call the test body, the
/// `async fn name(setup: BusSetup)` next to it, with their [`BusSetup`].
/// The body is plain Rust (rustfmt formats it), written once; a body no
/// `both_buses!` names is dead code, which the build refuses.
///
/// ```ignore
/// both_buses!(a_user_message_arrives);
/// /// A user message reaches the user.
/// async fn a_user_message_arrives(setup: BusSetup) {
///     let bus = TestBus::connect(&setup).await;
///     let edge = TestEdge::start(&setup).await;
///     let mut alice = edge.user("alice", &[]).await;
///     bus.to_user("alice", r#"{"action":"hi"}"#).await;
///     assert_eq!(alice.recv_raw().await, r#"{"action":"hi"}"#);
/// }
/// ```
///
/// One bus only: `cargo test -p herald-tests ::local`.
#[macro_export]
macro_rules! both_buses {
    ($($test:ident),+ $(,)?) => {$(
        #[doc = concat!("`", stringify!($test), "` on each bus.")]
        mod $test {
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                super::$test($crate::BusSetup::nats().await).await;
            }

            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$test($crate::BusSetup::local()).await;
            }
        }
    )+};
}
