//! `herald-examples`: runs the example handler services against NATS.
//!
//! ```sh
//! herald-examples                 # every example
//! herald-examples echo chat       # only these (echo, chat, expiry)
//! ```
//!
//! Its settings are `herald`'s, read the same way (`herald-settings`): a
//! flag, a `HERALD_*` variable or a key of the `--config` TOML file, for
//! `HERALD_NATS_URL`, `HERALD_NATS_NAME`, `HERALD_NATS_PING_INTERVAL_MS`, `HERALD_SUBJECT_PREFIX` and
//! `HERALD_LOG`; `--help` lists them with their defaults.
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
use herald_settings::logging::{self, LOG};
use herald_settings::nats::{self, NATS_NAME, NATS_PING_INTERVAL_MS, NATS_URL, SUBJECT_PREFIX};
use herald_settings::{ConfigFlag, Flags, SettingError, SettingList, Settings, Spec};
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
    /// The settings file.
    #[command(flatten)]
    config: ConfigFlag,
    /// A flag for each setting.
    #[command(flatten)]
    flags: Flags<ExamplesCommand>,
}

/// The settings `herald-examples` reads: what it logs, and NATS.
#[derive(Debug)]
struct ExamplesCommand;

impl SettingList for ExamplesCommand {
    const GROUPS: &'static [&'static [&'static Spec]] = &[logging::FILTER, nats::CONNECTION, nats::SUBJECTS];
}

/// Why `herald-examples` stopped with an error.
#[derive(Debug, Error)]
enum Failure {
    /// A bad or missing setting, found before any example started.
    #[error(transparent)]
    Settings(#[from] SettingError),
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
    /// 2 for a bad setting, as clap exits for a bad command line.
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Settings(_) => 2,
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

/// Reads the settings, sets up logging and the runtime, and runs.
fn start(cli: Cli) -> Result<(), Failure> {
    let settings = Settings::load(cli.flags, cli.config.path, |name| std::env::var(name).ok())?;
    let filter = settings.get_with(&LOG, |filter| {
        EnvFilter::try_new(filter).map_err(|e| format!("expected a tracing filter like info or warn,chat=debug ({e})"))
    })?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Failure::Runtime)?;
    let outcome = runtime.block_on(run(&settings, cli.examples));
    // Once the examples have stopped, blocking tasks still in flight (the
    // NATS client preparing a reconnect) must not hold up the exit.
    runtime.shutdown_background();
    outcome
}

/// Serves the `chosen` examples (all when none is) until a signal, then lets
/// them drain.
async fn run(settings: &Settings, chosen: Vec<Example>) -> Result<(), Failure> {
    let name = settings.given(&NATS_NAME)?.unwrap_or_else(|| "herald-examples".to_owned());
    let config = BusConfig {
        ping_interval: settings.get(&NATS_PING_INTERVAL_MS)?,
        ..BusConfig::new(settings.get(&NATS_URL)?, name)
    };
    let subjects = settings.get(&SUBJECT_PREFIX)?;
    let mut signals = Signals::listen().map_err(Failure::Signals)?;
    // What the bus client refuses as a NATS URL is a bad setting too.
    let bus = Bus::connect(&config).await.map_err(|e| match e {
        BusError::BadUrl { .. } => Failure::Settings(settings.refused(&NATS_URL, e.to_string())),
        e => Failure::Bus(e),
    })?;
    let chosen: Vec<Example> =
        Example::ALL.into_iter().filter(|example| chosen.is_empty() || chosen.contains(example)).collect();
    tracing::info!(examples = ?chosen, "starting");

    let stop = CancellationToken::new();
    let (bus, subjects) = (&bus, &subjects);
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
