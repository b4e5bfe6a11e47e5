//! Components that run as tasks of the test (edges, routers, handlers):
//! started with a future that resolves when they should stop, stopped
//! gracefully on request or on drop.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::RECV_TIMEOUT;

/// A task of the test that stops when told to. Dropping it tells it to
/// stop, without waiting.
#[derive(Debug)]
pub(crate) struct Background {
    stop: Option<oneshot::Sender<()>>,
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
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(stopped.map(|_| ()).boxed()));
        Background { stop: Some(stop), task: Some(task) }
    }

    /// Tells it to stop and waits until it has, at most `timeout`; `what`
    /// names it in failures.
    pub(crate) async fn stop(&mut self, what: &str, timeout: Duration) {
        self.tell_stop();
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

    fn tell_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.tell_stop();
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
