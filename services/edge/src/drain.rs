//! What a drain needs to reach every session: a token cancelled when it
//! begins, and a tracker of every session and every upgrade on its way to
//! becoming one, which the drain waits on.
//!
//! Sessions are tracked from their upgrade request on, so one whose upgrade
//! was still waiting (on `$connect`, say) when the drain began is waited
//! for too: it is refused before its `101`, or closes itself as soon as it
//! exists (see `session::run`).

use std::future::Future;
use std::time::Duration;

use herald_proto::close;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handle::CloseRequest;

/// Shared by the HTTP surface (which tracks upgrades), sessions (which are
/// tracked, and close themselves once it began) and the edge (which begins
/// it and waits); cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    /// Cancelled once the drain begins.
    begun: CancellationToken,
    /// Every session and every upgrade in flight.
    sessions: TaskTracker,
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.begun.is_cancelled()
    }

    /// Resolves once the drain has begun: for a connection that waits on its
    /// client before it becomes a session (Socket.IO's CONNECT).
    pub async fn wait_begun(&self) {
        self.begun.cancelled().await;
    }

    /// Runs an upgrade request tracked with the sessions.
    pub async fn track_upgrade<T>(&self, upgrade: impl Future<Output = T>) -> T {
        self.sessions.track_future(upgrade).await
    }

    /// Starts a session's task, tracked.
    pub fn spawn_session(&self, session: impl Future<Output = ()> + Send + 'static) {
        self.sessions.spawn(session);
    }

    /// Begins the drain: from now on upgrades are refused and new sessions
    /// close themselves. The caller closes the sessions there already.
    pub fn begin(&self) {
        self.begun.cancel();
        self.sessions.close();
    }

    /// Waits, at most `timeout`, until every tracked session and upgrade is
    /// gone; how many are left.
    pub async fn wait(&self, timeout: Duration) -> usize {
        match tokio::time::timeout(timeout, self.sessions.wait()).await {
            Ok(()) => 0,
            Err(_) => self.sessions.len(),
        }
    }
}

/// How a drain closes a session.
pub(crate) fn restart() -> CloseRequest {
    CloseRequest::new(close::SERVICE_RESTART, "server restart")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_waits_for_upgrades_and_sessions_and_ends_when_they_are_gone() {
        let drain = Drain::default();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let watching = drain.clone();
        // An upgrade that starts its session just before it ends, after the
        // drain began.
        let upgrade = tokio::spawn(async move {
            watching
                .track_upgrade(async {
                    let _ = finished.await;
                    assert!(watching.is_draining());
                    watching.spawn_session(tokio::time::sleep(Duration::from_millis(50)));
                })
                .await;
        });
        tokio::task::yield_now().await;
        drain.begin();
        assert_eq!(drain.wait(Duration::from_millis(20)).await, 1, "the upgrade is waited for");
        finish.send(()).unwrap();
        assert_eq!(drain.wait(Duration::from_secs(5)).await, 0, "and then its session");
        upgrade.await.unwrap();
    }
}
