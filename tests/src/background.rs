//! Components that run as tasks of the test (edges, routers, handlers):
//! started with a future that resolves when they should stop, stopped
//! gracefully on request or on drop.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::RECV_TIMEOUT;

/// A task of the test that stops when told to. Dropping it tells it to
/// stop, without waiting.
#[derive(Debug)]
pub(crate) struct Background {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Background {
    /// Spawns what `run` returns; the future it is given resolves when the
    /// task is told to stop.
    pub(crate) fn spawn<F, Fut>(run: F) -> Background
    where
        F: FnOnce(BoxFuture<'static, ()>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(stop.clone().cancelled_owned().boxed()));
        Background { stop, task: Some(task) }
    }

    /// Tells it to stop and waits until it has, at most `timeout`; `what`
    /// names it in failures.
    pub(crate) async fn stop(&mut self, what: &str, timeout: Duration) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(timeout, task)
                .await
                .unwrap_or_else(|_| panic!("{what} did not stop within {timeout:?} of being told to"))
                .unwrap_or_else(|e| panic!("{what} failed: {e}"));
        }
    }

    /// Ends it at once, as a crash would.
    pub(crate) fn abort(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The next item of `items` within [`RECV_TIMEOUT`]; `what` names it in
/// failures.
pub(crate) async fn next_within<T>(items: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(RECV_TIMEOUT, items.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {RECV_TIMEOUT:?}"))
        .unwrap_or_else(|| panic!("no more {what}: the sender is gone"))
}
