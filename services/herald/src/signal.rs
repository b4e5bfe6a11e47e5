//! Shutdown signals.
//!
//! SIGTERM (Kubernetes, systemd) and SIGINT (Ctrl-C) both ask for a graceful
//! stop: the server stops taking connections, drains, and the process exits
//! 0. A second signal while draining stops at once, for an operator who will
//! not wait for the drain; and a server that overruns its own drain deadline
//! is abandoned too, so a stuck shutdown shows as an error here rather than
//! as a kill by the orchestrator long after. A signal that comes while a
//! server is still starting (waiting for NATS, say) stops the start, as
//! there is nothing to drain yet.

use std::future::Future;
use std::io;
use std::time::Duration;

use thiserror::Error;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How long past its drain limit a stopping server may take (to say goodbye
/// on the bus) before it is abandoned. Keep Kubernetes'
/// `terminationGracePeriodSeconds` above the drain limit plus this.
pub const STOP_MARGIN: Duration = Duration::from_secs(5);

/// SIGTERM and SIGINT, caught from the moment [`Signals::listen`] returns.
#[derive(Debug)]
pub struct Signals {
    /// SIGTERM: what Kubernetes sends when a pod is to stop.
    terminate: Signal,
    /// SIGINT: Ctrl-C.
    interrupt: Signal,
}

impl Signals {
    /// Starts catching the signals. Call it before serving: from here on a
    /// signal is queued for [`Signals::next`] instead of killing the process
    /// outright, so one that arrives during start-up still drains.
    pub fn listen() -> io::Result<Signals> {
        Ok(Signals { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Waits for the next signal and returns its name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Cancelled when the first signal arrives; given to the server to serve
/// until.
#[derive(Debug)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// Waits for the shutdown signal.
    pub async fn requested(self) {
        self.0.cancelled_owned().await;
    }
}

/// Waits for `starting` (a server binding, say, which may wait for NATS)
/// unless a signal comes first. Nothing is served yet, so there is nothing
/// to drain: the signal stops the start, and `None` says so.
pub async fn start_unless_signalled<F: Future>(signals: &mut Signals, starting: F) -> Option<F::Output> {
    tokio::select! {
        output = starting => Some(output),
        name = signals.next() => {
            tracing::info!("{name} received while starting: stopping");
            None
        }
    }
}

/// Why a signalled server was stopped before it finished by itself.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Abandoned {
    /// A second signal came before the server finished draining.
    #[error("stopped by a second signal before the drain finished")]
    Forced,
    /// The server had not finished this long after the first signal.
    #[error("still running {0:?} after the shutdown signal; stopped it anyway")]
    Overran(Duration),
}

/// Runs the server `serve` builds from a [`Shutdown`], which resolves on the
/// first signal, and returns what the server returns. The server is
/// abandoned on a second signal, or when it has not finished
/// `drain_limit` plus [`STOP_MARGIN`] after the first.
pub async fn serve_until_signalled<F, S>(
    mut signals: Signals,
    drain_limit: Duration,
    serve: S,
) -> Result<F::Output, Abandoned>
where
    S: FnOnce(Shutdown) -> F,
    F: Future,
{
    let stop = CancellationToken::new();
    let server = serve(Shutdown(stop.clone()));
    tokio::pin!(server);
    tokio::select! {
        output = &mut server => return Ok(output),
        name = signals.next() => tracing::info!("{name} received: draining; send it again to stop at once"),
    }
    stop.cancel();
    let stop_within = drain_limit + STOP_MARGIN;
    tokio::select! {
        output = server => Ok(output),
        name = signals.next() => {
            tracing::warn!("{name} received again: stopping without waiting for the drain");
            Err(Abandoned::Forced)
        }
        () = tokio::time::sleep(stop_within) => {
            tracing::error!("still not stopped {stop_within:?} after the signal; stopping anyway");
            Err(Abandoned::Overran(stop_within))
        }
    }
}
