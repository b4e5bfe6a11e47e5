//! `herald-examples`: runs the example handler services against NATS.
//!
//! ```sh
//! herald-examples                 # every example
//! herald-examples echo chat       # only these (echo, chat, expiry)
//! ```
//!
//! Settings, each a flag or a variable: `HERALD_NATS_URL` (comma-separated,
//! default `nats://127.0.0.1:4222`), `HERALD_SUBJECT_PREFIX` (default
//! `herald`), `HERALD_LOG` (a tracing filter, default `info`).
//!
//! SIGTERM or SIGINT stops it gracefully: every example leaves its queue
//! group, so other copies take the new requests, finishes what it took, and
//! the process exits 0. A second signal exits at once, with 1, for someone
//! who will not wait. A bad command line or setting exits 2 (clap's
//! convention); any other failure 1, as one line on standard error.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use futures_util::future::try_join_all;
use herald_bus::{Bus, BusConfig, BusError};
use herald_examples::Example;
use herald_proto::subject::Subjects;
use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Herald's example handler services: echo, chat rooms, and a session-expiry
/// notifier.
#[derive(Parser)]
#[command(name = "herald-examples", version)]
struct Cli {
    /// Examples to run: echo, chat, expiry; all of them when none is named.
    #[arg(value_name = "EXAMPLE")]
    examples: Vec<Example>,
    /// NATS servers, comma-separated.
    #[arg(long, env = "HERALD_NATS_URL", default_value = "nats://127.0.0.1:4222", value_delimiter = ',')]
    nats_url: Vec<String>,
    /// First token(s) of every subject Herald uses (herald.user.<U>, ...).
    #[arg(long, env = "HERALD_SUBJECT_PREFIX", default_value = "herald", value_parser = Subjects::new)]
    subject_prefix: Subjects,
    /// What to log, as a tracing filter, e.g. info or warn,herald_examples=debug.
    #[arg(long, env = "HERALD_LOG", default_value = "info")]
    log: String,
}

/// Why `herald-examples` stopped with an error.
#[derive(Debug, Error)]
enum Failure {
    #[error("bad setting HERALD_LOG: {0}")]
    Log(tracing_subscriber::filter::ParseError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error("cannot catch shutdown signals: {0}")]
    Signals(io::Error),
    #[error("cannot connect to NATS: {0}")]
    Bus(BusError),
    #[error("{example} failed: {source}")]
    Example { example: Example, source: BusError },
    #[error("stopped by a second {0} before the examples finished")]
    Forced(&'static str),
}

impl Failure {
    /// 2 for a bad setting, as clap exits for the settings it checks itself.
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Log(_) => 2,
            _ => 1,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("herald-examples: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Sets up logging and the runtime, and runs.
fn start(cli: Cli) -> Result<(), Failure> {
    let filter = EnvFilter::try_new(&cli.log).map_err(Failure::Log)?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Failure::Runtime)?;
    let outcome = runtime.block_on(run(cli));
    // Once the examples have stopped, blocking tasks still in flight (the
    // NATS client preparing a reconnect) must not hold up the exit.
    runtime.shutdown_background();
    outcome
}

/// Serves the chosen examples until a signal, then lets them drain.
async fn run(cli: Cli) -> Result<(), Failure> {
    let mut signals = Signals::listen().map_err(Failure::Signals)?;
    let config = BusConfig { urls: cli.nats_url, name: "herald-examples".to_owned() };
    let bus = Bus::connect(&config).await.map_err(Failure::Bus)?;
    let chosen: Vec<Example> =
        Example::ALL.into_iter().filter(|example| cli.examples.is_empty() || cli.examples.contains(example)).collect();
    tracing::info!(examples = ?chosen, "starting");

    let stop = CancellationToken::new();
    let (bus, subjects) = (&bus, &cli.subject_prefix);
    let serving =
        try_join_all(
            chosen.into_iter().map(|example| {
                let stop = stop.cancelled();
                async move {
                    example.serve(bus, subjects, stop).await.map_err(|source| Failure::Example { example, source })
                }
            }),
        );
    tokio::pin!(serving);
    tokio::select! {
        outcome = &mut serving => return outcome.map(drop),
        name = signals.next() => tracing::info!("{name} received: draining; send it again to stop at once"),
    }
    stop.cancel();
    tokio::select! {
        outcome = serving => outcome.map(drop),
        name = signals.next() => Err(Failure::Forced(name)),
    }
}

/// SIGTERM (Kubernetes, systemd) and SIGINT (Ctrl-C), caught from
/// [`Signals::listen`] on, so one that comes during start-up still drains.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn listen() -> io::Result<Signals> {
        Ok(Signals { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
