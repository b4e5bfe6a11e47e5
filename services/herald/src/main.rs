//! `herald`: one binary, several roles, chosen by subcommand.
//!
//! # Layout
//!
//! - `main.rs`: the command line, and how failures become exit codes.
//! - [`settings`]: reads every setting from flags, `HERALD_*` variables and
//!   the `--config` TOML file, through one set of tables.
//! - [`telemetry`]: logging (`HERALD_LOG`, `HERALD_LOG_FORMAT`).
//! - [`signal`]: SIGTERM and SIGINT, and serving until one arrives.
//! - [`edge`]: `herald edge`.
//!
//! A later role (`herald router`, `herald dev`) is one more module with its
//! settings table and `run`, and one more [`Command`] variant.
//!
//! # Exit codes
//!
//! 0 after a clean shutdown; 2 for a bad command line or a bad or missing
//! setting (as clap uses for bad arguments); 1 for anything else. Every
//! failure is one line on standard error, starting `herald: `.

mod edge;
mod settings;
mod signal;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use thiserror::Error;

use crate::edge::EdgeCommand;
use crate::settings::{Flags, SettingError, Settings};
use crate::telemetry::Telemetry;

/// Herald: a real-time WebSocket gateway.
#[derive(Parser)]
#[command(name = "herald", version)]
struct Cli {
    /// TOML file of settings, with lower-snake keys (listen = "0.0.0.0:8080");
    /// flags and HERALD_* variables win over it [env: HERALD_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<String>,
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
}

/// Why `herald` stopped with an error.
#[derive(Debug, Error)]
enum Failure {
    /// A bad or missing setting found before the role started.
    #[error(transparent)]
    Settings(#[from] SettingError),
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// `herald edge` failed.
    #[error(transparent)]
    Edge(#[from] edge::Error),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Settings(_) | Failure::Edge(edge::Error::Settings(_)) => 2,
            Failure::Runtime(_) | Failure::Edge(_) => 1,
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
    match cli.command {
        Command::Edge(flags) => {
            let settings = Settings::load(flags, cli.config, env)?;
            Telemetry::read(&settings)?.install();
            block_on(edge::run(&settings))??;
        }
    }
    Ok(())
}

/// Runs a role on a multi-threaded runtime.
fn block_on<F: Future>(role: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Failure::Runtime)?;
    let output = runtime.block_on(role);
    // A role returns once its work is done, drain included; blocking tasks
    // still in flight (the NATS client preparing a reconnect) must not hold
    // up the exit, as waiting for them would.
    runtime.shutdown_background();
    Ok(output)
}
