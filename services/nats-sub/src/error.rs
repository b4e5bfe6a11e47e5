//! What the subscriber refuses.

use thiserror::Error;

/// Errors of the subscriber's API. Connection trouble is not among them:
/// the connection reconnects by itself and reports it as [`crate::Event`]s.
#[derive(Debug, Error)]
pub enum Error {
    #[error("bad NATS URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot subscribe to {subject:?}: {reason}")]
    BadSubject { subject: String, reason: String },
    /// Commands for the server are not being written (it does not read):
    /// see `Config::max_pending_commands`.
    #[error("cannot send: {pending} bytes of commands wait for a server that does not read them")]
    Backlog { pending: usize },
    #[error("cannot publish to {subject:?}: {reason}")]
    Publish { subject: String, reason: String },
}
