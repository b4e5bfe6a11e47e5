//! `herald`: one binary, several roles, chosen by subcommand.
//!
//! # Layout
//!
//! - `main.rs`: the command line, and how failures become exit codes.
//!   Every setting is declared in `herald-settings`, which also reads them
//!   from flags, `HERALD_*` variables and the `--config` TOML file; each
//!   role module turns them into its library's typed config.
//! - [`telemetry`]: logging (`HERALD_LOG`, `HERALD_LOG_FORMAT`) and trace
//!   export (`OTEL_*`).
//! - [`nats`]: the NATS settings every role shares, and connecting.
//! - [`signal`]: SIGTERM and SIGINT, and serving until one arrives.
//! - [`edge`]: `herald edge`.
//! - [`router`]: `herald router`.
//! - [`pusher`]: the Pusher apps edges and routers both read.
//! - [`dev`]: `herald dev`, the edge, a router and the example handlers in
//!   one process, on an in-process bus.
//! - `allocator`: jemalloc as the process's allocator (the default feature
//!   `jemalloc`), and its background thread.
//!
//! A role is a module with the list of settings groups it reads, its `run`,
//! and a [`Command`] variant. Roles share groups (the edge's session
//! settings, say) rather than repeat them.
//!
//! # Exit codes
//!
//! 0 after a clean shutdown; 2 for a bad command line or a bad or missing
//! setting (as clap uses for bad arguments); 1 for anything else. Every
//! failure is one line on standard error, starting `herald: `.

#[cfg(feature = "jemalloc")]
mod allocator;
mod dev;
mod edge;
mod nats;
mod pusher;
mod router;
mod signal;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald_bus::BusError;
use herald_edge::EdgeError;
use herald_examples::Example;
use herald_router::RouterError;
use herald_settings::{ConfigFlag, Flags, SettingError, Settings};
use thiserror::Error;

use crate::dev::DevCommand;
use crate::edge::EdgeCommand;
use crate::router::RouterCommand;
use crate::signal::Abandoned;
use crate::telemetry::{Telemetry, TraceExport};

/// Herald: a real-time WebSocket gateway.
#[derive(Parser)]
#[command(name = "herald", version)]
struct Cli {
    /// The settings file.
    #[command(flatten)]
    config: ConfigFlag,
    /// The role to run.
    #[command(subcommand)]
    command: Command,
}

/// The roles.
#[derive(Subcommand)]
enum Command {
    /// Hold WebSocket sessions (/ws, /healthz, /readyz, /metrics) and deliver
    /// to them what backends publish on NATS.
    Edge(Flags<EdgeCommand>),
    /// Answer client actions with the handlers the routes file names, and
    /// serve the backend HTTP API (/api/*, /healthz, /readyz, /metrics).
    Router(Flags<RouterCommand>),
    /// Run an edge, a router, the example handlers (echo, chat, expiry) and
    /// the demo page in one process, on one port, without NATS: for trying
    /// Herald and developing against it, never for production.
    #[command(after_help = dev::help())]
    Dev(Flags<DevCommand>),
}

/// Why `herald` stopped with an error. The roles share it, as they share
/// most of the ways to fail.
#[derive(Debug, Error)]
enum Failure {
    /// A bad or missing setting, found before the role started serving.
    #[error(transparent)]
    Settings(#[from] SettingError),
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot catch signals: {0}")]
    Signals(std::io::Error),
    /// The NATS connection could not be set up.
    #[error("cannot connect to NATS: {0}")]
    Bus(BusError),
    /// The edge could not start, e.g. because its address is taken.
    #[error(transparent)]
    Edge(EdgeError),
    /// The router could not start, e.g. because its address is taken.
    #[error(transparent)]
    Router(RouterError),
    /// An example handler of `herald dev` stopped with an error.
    #[error("the {example} example failed: {source}")]
    Example {
        /// Which one.
        example: Example,
        /// Why.
        source: BusError,
    },
    /// Trace export was asked for in a way that cannot be done.
    #[error("traces: {0}")]
    Telemetry(String),
    /// The role did not stop by itself after a shutdown signal.
    #[error(transparent)]
    Stopped(Abandoned),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Settings(_) => 2,
            Failure::Runtime(_)
            | Failure::Signals(_)
            | Failure::Bus(_)
            | Failure::Edge(_)
            | Failure::Router(_)
            | Failure::Example { .. }
            | Failure::Stopped(_) => 1,
            Failure::Telemetry(_) => 2,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("herald: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let config = cli.config.path;
    match cli.command {
        Command::Edge(flags) => serve(Settings::load(flags, config, env)?, "herald-edge", edge::run),
        Command::Router(flags) => serve(Settings::load(flags, config, env)?, "herald-router", router::run),
        Command::Dev(flags) => serve(Settings::load(flags, config, env)?, "herald-dev", dev::run),
    }
}

/// Sets up logging, then runs `role` with `settings` on a multi-threaded
/// runtime.
fn serve(
    settings: Settings,
    service: &'static str,
    role: impl AsyncFnOnce(&Settings) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let traces = TraceExport::read(|name| std::env::var(name).ok(), service).map_err(Failure::Telemetry)?;
    let _telemetry = Telemetry::read(&settings)?.install(traces.as_ref()).map_err(Failure::Telemetry)?;
    #[cfg(feature = "jemalloc")]
    allocator::return_freed_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Failure::Runtime)?;
    let result = runtime.block_on(role(&settings));
    // A role returns once its work is done, drain included; blocking tasks
    // still in flight (the NATS client preparing a reconnect) must not hold
    // up the exit, as waiting for them would.
    runtime.shutdown_background();
    result
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// clap's own checks of the command line, which include that no command
    /// lists two settings of the same name (two groups both holding a
    /// `LISTEN`, say).
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
