//! Reloading a running router's routes (on SIGHUP): the whole table is read
//! and checked, then swapped in at once; a bad file keeps the old table.

use std::path::PathBuf;
use std::sync::Arc;

use crate::dispatch::Dispatcher;
use crate::error::RouterError;
use crate::metrics::Metrics;
use crate::routes::RouteTable;

/// Reloads a running router's routes.
#[derive(Debug, Clone)]
pub struct RouteReloader {
    /// Whose routes are replaced.
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// Where the routes came from; `None`: nothing to reload.
    pub(crate) routes_file: Option<PathBuf>,
    /// Counts reloads and refused ones.
    pub(crate) metrics: Arc<Metrics>,
}

impl RouteReloader {
    /// Re-reads the routes file. A bad file keeps the old table; the error
    /// says why. Requests in flight finish with the table they started with.
    pub fn reload(&self) -> Result<(), RouterError> {
        let result = self.load();
        match &result {
            Ok(()) => self.metrics.route_reloads.inc(),
            Err(_) => self.metrics.route_reload_failures.inc(),
        };
        result
    }

    fn load(&self) -> Result<(), RouterError> {
        let path = self.routes_file.as_ref().ok_or(RouterError::NoRoutesFile)?;
        let table = RouteTable::load(path)?;
        check_webhook_secret(&table, self.dispatcher.has_webhook_secret())?;
        self.dispatcher.replace_routes(table);
        Ok(())
    }
}

/// Routes that call HTTP handlers need a secret to sign their requests.
pub(crate) fn check_webhook_secret(table: &RouteTable, has_secret: bool) -> Result<(), RouterError> {
    if table.has_http_routes() && !has_secret {
        return Err(RouterError::MissingWebhookSecret);
    }
    Ok(())
}
