//! Shutdown signals.
//!
//! SIGTERM (Kubernetes, systemd) and SIGINT (Ctrl-C) both ask for a graceful
//! stop: the server stops taking connections, drains, and the process exits
//! 0. A second signal while draining stops at once, for an operator who will
//! not wait for the drain; and a server that overruns its own drain deadline
//! is abandoned too, so a stuck shutdown shows as an error here rather than
//! as a kill by the orchestrator long after.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

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

/// Resolves when the first signal arrives; given to the server to serve
/// until.
#[derive(Debug)]
pub struct Shutdown(oneshot::Receiver<()>);

impl Shutdown {
    /// Waits for the shutdown signal.
    pub async fn requested(self) {
        // An error means the sender is gone, which only happens once the
        // server has stopped: nothing is left to wait for either way.
        let _ = self.0.await;
    }
}

/// How a signalled run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending<T> {
    /// The server returned by itself: after draining, or with an error.
    Finished(T),
    /// A second signal came before the server finished draining.
    Forced,
    /// The server had not finished this long after the first signal.
    Overran(Duration),
}

/// Runs the server `serve` builds from a [`Shutdown`], which resolves on the
/// first signal. The server is abandoned on a second signal, or when it has
/// not finished `stop_within` after the first.
pub async fn serve_until_signalled<F, S>(mut signals: Signals, stop_within: Duration, serve: S) -> Ending<F::Output>
where
    S: FnOnce(Shutdown) -> F,
    F: Future,
{
    let (stop, stopped) = oneshot::channel();
    let server = serve(Shutdown(stopped));
    tokio::pin!(server);
    tokio::select! {
        output = &mut server => return Ending::Finished(output),
        name = signals.next() => tracing::info!("{name} received: draining; send it again to stop at once"),
    }
    // Fails only if the server dropped its `Shutdown` without waiting on it,
    // in which case it is finishing on its own.
    let _ = stop.send(());
    tokio::select! {
        output = server => Ending::Finished(output),
        name = signals.next() => {
            tracing::warn!("{name} received again: stopping without waiting for the drain");
            Ending::Forced
        }
        () = tokio::time::sleep(stop_within) => {
            tracing::error!("still not stopped {stop_within:?} after the signal; stopping anyway");
            Ending::Overran(stop_within)
        }
    }
}
