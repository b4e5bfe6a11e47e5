//! A background task tied to the value that owns it.

use std::future::Future;

use tokio::task::JoinHandle;

/// Aborts its task when dropped: a subscription's reader, a topic's pump or
/// a heartbeat lives exactly as long as what it serves.
#[derive(Debug)]
pub struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    pub fn spawn(task: impl Future<Output = ()> + Send + 'static) -> AbortOnDrop {
        AbortOnDrop(tokio::spawn(task))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
