//! Why a router could not start, or a reload was refused.

use std::net::SocketAddr;

use herald_bus::BusError;
use thiserror::Error;

use crate::routes::RoutesError;

#[derive(Debug, Error)]
pub enum RouterError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("routes call HTTP handlers but no webhook secret is set (HERALD_WEBHOOK_SECRET)")]
    MissingWebhookSecret,
    #[error(transparent)]
    Routes(#[from] RoutesError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("no routes file to reload")]
    NoRoutesFile,
}
